"""Any number of codes claimed into a file, resumably:
``promopool claim POOL --count N -o FILE --idempotency-key K``.

The file gets one code per line (UTF-8, ``\\n``; a code holds no control character, so a line is always one
whole code). The run claims chunks of at most 10,000 codes, each a bulk claim with its own Idempotency-Key,
``K/i`` for chunk i, and appends each chunk to the file, flushed and fsynced, before it claims the next; so
memory stays constant whatever N is.

A run that stops anywhere — killed, the database away, the machine down — is continued by the same command
with the same K: the file is read to its last whole chunk (a chunk partly written, or a line cut off, is
truncated away) and the run goes on from there. The chunk that follows is claimed with its key again: if its
claim had committed before its lines reached the file, the key replays the same codes, so they land in the
file instead of being lost; otherwise it is a fresh claim. Before it goes on, the run checks (reading only)
that the file's last whole chunk is what its key claimed, so another run's file is refused rather than
continued. Nothing is ever claimed twice, and every code the run claimed ends in the file — as long as the
re-run comes within the keys' lifetime (``PROMOPOOL_IDEMPOTENCY_TTL_HOURS``, 24 h), with the same N and chunk
size (another N changes the last chunk's count: its key then answers ``idempotency_key_reused`` rather than
a different chunk).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from promopool import service
from promopool.domain import Account
from promopool.domain.claims import MAX_BULK_CLAIM
from promopool.domain.errors import InvalidInput
from promopool.storage import Store


def chunk_key(key: str, index: int) -> str:
    """The Idempotency-Key of chunk ``index`` of the run keyed ``key``."""
    return f"{key}/{index}"


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a run goes on: after ``lines`` codes, the first ``size`` bytes of the file, whose last whole
    chunk is ``last`` (at most one chunk is held in memory)."""

    lines: int
    size: int
    last: list[str] = field(default_factory=list)


def resume_point(path: Path, count: int, chunk: int, *, wanted: str = "") -> Resume:
    """The file's whole chunks (all of it once it holds ``count`` lines), read in constant memory; ``wanted``
    names the run's size in the refusal of a file holding more lines than it (``--count N`` by default)."""
    if not path.exists():
        return Resume(0, 0)
    lines = size = 0
    kept = Resume(0, 0)
    current: list[str] = []
    with path.open("rb") as existing:
        for line in existing:
            if not line.endswith(b"\n"):
                break  # cut off mid-line: that chunk is written again
            lines, size = lines + 1, size + len(line)
            current.append(line[:-1].decode())
            if lines % chunk == 0 or lines == count:
                kept, current = Resume(lines, size, current), []
    if lines > count:
        raise InvalidInput(
            f"{path} holds {lines} lines, more than {wanted or f'--count {count}'}: is it another run's?"
        )
    return kept


async def check_owner(
    store: Store, *, account: Account, pool_id: int, key: str, chunk: int, path: Path, start: Resume
) -> None:
    """Refuse a file whose last whole chunk is not what this run's key claimed: another run's file (its codes
    would be mixed with these), or keys forgotten since (a chunk claimed but never written could then not be
    told from one never claimed). Reads only: nothing is claimed."""
    if not start.last:
        return
    index = (start.lines - len(start.last)) // chunk
    recorded = await service.recorded_claim_many(
        store, account=account, pool_id=pool_id, count=len(start.last), idempotency_key=chunk_key(key, index)
    )
    if recorded is None or [code.value for code in recorded.codes] != start.last:
        raise InvalidInput(
            f"{path} does not end with the codes this run (--idempotency-key {key!r}, pool {pool_id})"
            " claimed: another run's file, or a run older than the keys' lifetime; use another file"
        )


def check_run(key: str, count: int, chunk: int) -> None:
    if not 1 <= chunk <= MAX_BULK_CLAIM:
        raise InvalidInput(f"the chunk size must be 1-{MAX_BULK_CLAIM}", field="chunk_size")
    if count < 1:
        raise InvalidInput("count must be at least 1", field="count")
    last = chunk_key(key, (count - 1) // chunk)
    if len(last) > service.MAX_IDEMPOTENCY_KEY:
        longest = service.MAX_IDEMPOTENCY_KEY - len(last) + len(key)
        raise InvalidInput(f"the Idempotency-Key must be at most {longest} characters for this count")
    service.check_idempotency_key(last)


async def claim_into(
    store: Store,
    *,
    account: Account,
    pool_id: int,
    count: int,
    key: str,
    path: Path,
    chunk: int = MAX_BULK_CLAIM,
    on_codes: Callable[[int], None] = lambda codes: None,
) -> Resume:
    """Claim ``count`` codes into ``path``, or the rest of them after an earlier run with ``key``; return
    where this run started. ``on_codes`` hears how many codes the file holds so far, then each chunk's."""
    check_run(key, count, chunk)
    start = resume_point(path, count, chunk)
    await check_owner(store, account=account, pool_id=pool_id, key=key, chunk=chunk, path=path, start=start)
    on_codes(start.lines)

    async def next_chunk(done: int) -> list[str]:
        claimed = await service.claim_many(
            store,
            account=account,
            pool_id=pool_id,
            count=min(chunk, count - done),
            idempotency_key=chunk_key(key, done // chunk),
        )
        return [f"{code.value}\n" for code in claimed.codes]

    await write_chunks(path, start=start, total=count, next_chunk=next_chunk, on_lines=on_codes)
    return start


async def write_chunks(
    path: Path,
    *,
    start: Resume,
    total: int,
    next_chunk: Callable[[int], Awaitable[list[str]]],
    on_lines: Callable[[int], None],
) -> None:
    """Append to ``path``, after ``start``, the lines ``next_chunk(done)`` claims (each ending in a newline)
    until the file holds ``total``: each chunk written, flushed and fsynced before the next is claimed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    with os.fdopen(fd, "wb") as out:
        _sync_directory(path)  # the file itself survives a crash, not only its contents
        done, size = start.lines, start.size
        while done < total:
            lines = await next_chunk(done)
            # Cut what follows the last whole chunk only now: a run refused before it claimed anything (the
            # database away, another --count) leaves the file as it found it.
            out.seek(size)
            out.truncate()
            size += out.write("".join(lines).encode())
            out.flush()
            os.fsync(out.fileno())
            done += len(lines)
            on_lines(len(lines))


def _sync_directory(path: Path) -> None:
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
