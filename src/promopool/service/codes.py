"""Codes: bulk import (streamed, batched), listing, lookup, deletion."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from typing import IO

from promopool import metrics
from promopool.domain import Account, Code, CodeState, ImportReport
from promopool.domain.codes import has_control_characters, invalid_reason
from promopool.domain.errors import CodeNotFound, InvalidCode, InvalidInput
from promopool.service.pools import get_pool
from promopool.storage import Store

IMPORT_BATCH = 10_000
MAX_PAGE = 1000


async def _valid_values(
    values: AsyncIterable[str] | Iterable[str], report: ImportReport, *, ignore_blank: bool = False
) -> AsyncIterator[str]:
    """The cleaned valid values; every invalid one is counted in ``report`` with its 1-based position.
    With ``ignore_blank``, blank entries (empty lines of a text file) are passed over silently."""
    position = 0
    if isinstance(values, AsyncIterable):
        source: AsyncIterable[str] = values
    else:
        source = _aiter(values)
    async for raw in source:
        position += 1
        value = raw.strip()
        reason = invalid_reason(value)
        if reason is None:
            yield value
        elif reason == "empty" and ignore_blank:
            continue
        else:
            report.add_invalid(position, reason)


async def _aiter(values: Iterable[str]) -> AsyncIterator[str]:
    for value in values:
        yield value


async def import_codes(
    store: Store,
    *,
    account: Account,
    pool_id: int,
    values: AsyncIterable[str] | Iterable[str],
    strict: bool = False,
    ignore_blank: bool = False,
    batch_size: int = IMPORT_BATCH,
    on_batch: Callable[[ImportReport], None] | None = None,
) -> ImportReport:
    """Add codes to a pool in batches, in constant memory. Duplicates (within the upload or already in the
    pool) are skipped and counted. Invalid values are counted and skipped, or with ``strict`` refuse the
    whole upload before anything is stored. Each batch commits on its own, so an interrupted import keeps
    exactly what it had reported."""
    await get_pool(store, account=account, pool_id=pool_id)
    report = ImportReport()
    if strict:
        with tempfile.TemporaryFile() as spool:
            checked: list[str] = []
            async for value in _valid_values(values, report, ignore_blank=ignore_blank):
                checked.append(value)
                if len(checked) == batch_size:  # one write per batch, not per code
                    _spool(spool, checked)
            _spool(spool, checked)
            if report.invalid:
                metrics.count_import(pool_id, report, refused=True)
                raise InvalidCode(
                    f"{report.invalid} invalid code(s) in the upload; nothing was imported",
                    invalid=report.invalid,
                    samples=[{"position": s.position, "reason": s.reason} for s in report.invalid_samples],
                )
            spool.seek(0)
            # Checked and cleaned on the way in: read back as they are.
            lines = (line.decode("utf-8").removesuffix("\n") for line in spool)
            return await _insert_all(store, pool_id, _aiter(lines), report, batch_size, on_batch)
    valid = _valid_values(values, report, ignore_blank=ignore_blank)
    return await _insert_all(store, pool_id, valid, report, batch_size, on_batch)


def _spool(spool: IO[bytes], values: list[str]) -> None:
    if values:
        values.append("")  # a newline after the last one too
        spool.write("\n".join(values).encode("utf-8"))
        values.clear()


async def _insert_all(
    store: Store,
    pool_id: int,
    values: AsyncIterator[str],
    report: ImportReport,
    batch_size: int,
    on_batch: Callable[[ImportReport], None] | None,
) -> ImportReport:
    async def insert(batch: list[str]) -> None:
        inserted = await store.insert_codes(
            pool_id=pool_id, values=batch, expect_duplicates=report.duplicates > 0
        )
        report.inserted += inserted
        report.duplicates += len(batch) - inserted
        metrics.count_imported(pool_id, inserted=inserted, duplicates=len(batch) - inserted)
        if on_batch is not None:
            on_batch(report)

    # One batch is stored while the next is read and checked: the database and this process work side by
    # side (the reading was ~10% of an import of 1M codes on PostgreSQL). Batches still commit one after
    # the other, in upload order, so seq follows the upload and the report is exact after each.
    storing: asyncio.Task[None] | None = None
    batch: list[str] = []
    try:
        async for value in values:
            batch.append(value)
            if len(batch) >= batch_size:
                if storing is not None:
                    await storing
                storing, batch = asyncio.create_task(insert(batch)), []
        if storing is not None:
            await storing
        if batch:
            await insert(batch)
    except BaseException:
        # The upload broke off (or the import is cancelled): the batch on its way still commits or fails
        # on its own; wait for it, so that what is stored is what was reported, then give the cause.
        if storing is not None and not storing.done():
            await asyncio.wait([storing])
        raise
    metrics.count_import(pool_id, report)
    return report


async def list_codes(
    store: Store,
    *,
    account: Account,
    pool_id: int,
    state: CodeState | None = None,
    after: str | None = None,
    limit: int = 100,
) -> list[Code]:
    """A page of the pool's codes in value order, starting after the cursor ``after``."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    if after is not None and has_control_characters(after):
        raise InvalidInput("invalid cursor", field="cursor")
    await get_pool(store, account=account, pool_id=pool_id)
    return await store.list_codes(pool_id=pool_id, state=state, after=after, limit=limit)


async def get_code(store: Store, *, account: Account, pool_id: int, value: str) -> Code:
    """One code of a pool; CodeNotFound otherwise."""
    await get_pool(store, account=account, pool_id=pool_id)
    # A value no code could have is simply not there (and must not reach the database as a query).
    code = None if invalid_reason(value) else await store.get_code(pool_id=pool_id, value=value)
    if code is None:
        raise CodeNotFound(f"code {value!r} not found in pool {pool_id}", pool_id=pool_id)
    return code


async def delete_code(store: Store, *, account: Account, pool_id: int, value: str) -> None:
    """Delete one code of a pool."""
    await get_pool(store, account=account, pool_id=pool_id)
    if invalid_reason(value) or not await store.delete_code(pool_id=pool_id, value=value):
        raise CodeNotFound(f"code {value!r} not found in pool {pool_id}", pool_id=pool_id)
