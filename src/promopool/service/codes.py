"""Codes: bulk import (streamed, batched), listing, lookup, deletion."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from typing import IO, TypeVar

from promopool import metrics
from promopool.domain import Account, Code, CodeState, ImportReport
from promopool.domain.codes import has_control_characters, invalid_reason
from promopool.domain.errors import CodeNotFound, InvalidCode, InvalidInput
from promopool.service.pools import get_pool
from promopool.storage import Store

IMPORT_BATCH = 10_000
MAX_PAGE = 1000

T = TypeVar("T")


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


async def _aiter(items: Iterable[T]) -> AsyncIterator[T]:
    for item in items:
        yield item


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
            sizes: list[int] = []  # of each spooled batch, in bytes
            checked: list[str] = []
            async for value in _valid_values(values, report, ignore_blank=ignore_blank):
                checked.append(value)
                if len(checked) == batch_size:  # one write per batch, not per code
                    sizes.append(_spool(spool, checked))
            if checked:
                sizes.append(_spool(spool, checked))
            if report.invalid:
                metrics.count_import(pool_id, report, refused=True)
                raise InvalidCode(
                    f"{report.invalid} invalid code(s) in the upload; nothing was imported",
                    invalid=report.invalid,
                    samples=[{"position": s.position, "reason": s.reason} for s in report.invalid_samples],
                )
            spool.seek(0)
            # Checked and cleaned on the way in: read back a batch at a time, as they are (no code holds
            # a line break).
            batches = (spool.read(size).decode("utf-8").split("\n")[:-1] for size in sizes)
            return await _insert_batches(store, pool_id, _aiter(batches), report, on_batch)
    valid = _valid_values(values, report, ignore_blank=ignore_blank)
    return await _insert_batches(store, pool_id, _batched(valid, batch_size), report, on_batch)


def _spool(spool: IO[bytes], values: list[str]) -> int:
    """Write ``values`` a line each and clear the list; the bytes written."""
    values.append("")  # a newline after the last one too
    data = "\n".join(values).encode("utf-8")
    values.clear()
    spool.write(data)
    return len(data)


async def _batched(values: AsyncIterator[str], size: int) -> AsyncIterator[list[str]]:
    batch: list[str] = []
    async for value in values:
        batch.append(value)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def _insert_batches(
    store: Store,
    pool_id: int,
    batches: AsyncIterator[list[str]],
    report: ImportReport,
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
    try:
        async for batch in batches:
            if storing is not None:
                await storing
            storing = asyncio.create_task(insert(batch))
        if storing is not None:
            await storing
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
