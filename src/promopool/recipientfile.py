"""Each recipient of a list its code, into a file, resumably:
``promopool claim POOL --recipients LIST -o FILE --idempotency-key K``.

LIST holds one recipient per line (UTF-8; blank lines are skipped). It is read through once before anything
is claimed, so a bad line refuses the run, naming it, with nothing claimed. FILE gets one CSV row
``recipient,code`` per recipient, in LIST's order, no header (a recipient or code holds no control character,
so a line is always one whole row). The run claims chunks of at most 10,000 recipients, each one
``claim_for_recipients`` with the Idempotency-Key ``K/i`` for chunk i, and appends and fsyncs each chunk
before it claims the next — claimfile.py's machinery, so a stopped run is continued by the same command in the
same way: the file is cut to its last whole chunk and the run goes on from there. A recipient's code is
stable anyway, so a chunk claimed again gives the same codes. LIST is streamed on both passes: memory stays
constant whatever its length.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Callable, Generator, Iterator
from itertools import islice
from pathlib import Path

from promopool import service
from promopool.claimfile import Resume, check_run, chunk_key, resume_point, write_chunks
from promopool.domain import Account
from promopool.domain.errors import InvalidInput
from promopool.domain.models import Claimed
from promopool.domain.recipients import MAX_RECIPIENTS, check_recipient
from promopool.storage import Store


def read_recipients(path: Path) -> Generator[str, None, None]:
    """The recipients of ``path``, checked, streamed; blank lines skipped. InvalidInput names a bad line."""
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, 1):
            try:
                text = raw.decode().removesuffix("\n").removesuffix("\r")
                if text.strip():
                    yield check_recipient(text)
            except (UnicodeDecodeError, InvalidInput) as exc:
                why = exc.message if isinstance(exc, InvalidInput) else "not UTF-8"
                raise InvalidInput(f"{path} line {number}: {why}", field="recipients") from None


def count_recipients(path: Path) -> int:
    """How many recipients ``path`` lists, every line checked: the pass that refuses a bad list up front."""
    total = sum(1 for _ in read_recipients(path))
    if total == 0:
        raise InvalidInput(f"{path} lists no recipient", field="recipients")
    return total


def rows(claimed: list[tuple[str, Claimed]]) -> list[str]:
    """The CSV rows ``recipient,code`` (quoted where CSV needs it), one per line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    out: list[str] = []
    for who, got in claimed:  # a row at a time: str.splitlines would also split at U+2028 and the like
        writer.writerow((who, got.code.value))
        out.append(buffer.getvalue())
        buffer.seek(0)
        buffer.truncate()
    return out


def skip_written(recipients: Iterator[str], start: Resume, *, source: Path, path: Path) -> None:
    """Advance ``recipients`` past those the file already holds, checking that its last whole chunk names
    the same recipients in the same places: a file of another list is refused, not continued."""
    for _ in islice(recipients, start.lines - len(start.last)):
        pass
    for line, expected in zip(start.last, recipients, strict=False):
        row = next(csv.reader([line]), [])
        if len(row) != 2 or row[0] != expected:
            raise InvalidInput(
                f"{path} does not end with the recipients of {source} this run claimed for: another"
                " run's file; use another file"
            )


async def claim_for_recipients_into(
    store: Store,
    *,
    account: Account,
    pool_id: int,
    recipients: Path,
    key: str,
    path: Path,
    chunk: int = MAX_RECIPIENTS,
    on_total: Callable[[int], None] = lambda total: None,
    on_rows: Callable[[int], None] = lambda rows: None,
) -> Resume:
    """Claim each recipient of ``recipients`` its code into ``path``, or the rest of them after an earlier
    run with ``key``; return where this run started. ``on_total`` hears how many recipients the list holds,
    ``on_rows`` how many rows the file holds so far, then each chunk's."""
    total = count_recipients(recipients)
    on_total(total)
    check_run(key, total, chunk)
    start = resume_point(path, total, chunk, wanted=f"the {total} recipients of {recipients}")
    with contextlib.closing(read_recipients(recipients)) as remaining:
        skip_written(remaining, start, source=recipients, path=path)
        on_rows(start.lines)

        async def next_chunk(done: int) -> list[str]:
            claimed = await service.claim_for_recipients(
                store,
                account=account,
                pool_id=pool_id,
                recipients=list(islice(remaining, min(chunk, total - done))),
                idempotency_key=chunk_key(key, done // chunk),
            )
            return rows(claimed)

        await write_chunks(path, start=start, total=total, next_chunk=next_chunk, on_lines=on_rows)
    return start
