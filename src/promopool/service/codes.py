"""Codes: bulk import (streamed, batched; plain codes or rows that carry states), listing, lookup,
deletion."""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import IO, TypeVar

import msgspec

from promopool import metrics
from promopool.domain import Account, Code, CodeState, ImportReport
from promopool.domain.codes import check_description, has_control_characters, invalid_reason
from promopool.domain.errors import CodeNotFound, InvalidCode, InvalidInput
from promopool.domain.export import ExportRow, ImportRow, StateFields, imported_row
from promopool.domain.fallback import with_validity
from promopool.domain.idempotency import Keyed, Once, fingerprint, keyed
from promopool.domain.keys import check_writable
from promopool.service.claims import check_idempotency_key
from promopool.service.keylocks import KeyLocks
from promopool.service.paging import Page, check_limit, one_page
from promopool.service.pools import get_pool
from promopool.storage import Store

IMPORT_BATCH = 10_000

_import_keys = KeyLocks()  # (account id, Idempotency-Key) of the keyed imports running in this process

T = TypeVar("T")


Item = str | StateFields  # what an upload holds: a code, or a row that carries its state
Checked = str | ExportRow


async def _valid_values(
    values: AsyncIterable[Item] | Iterable[Item],
    report: ImportReport,
    now: datetime,
    *,
    ignore_blank: bool = False,
    digest: hashlib._Hash | None = None,
) -> AsyncIterator[Checked]:
    """The cleaned valid values and checked rows; every invalid one is counted in ``report`` with its
    1-based position (a row: its line). With ``ignore_blank``, blank entries (empty lines of a text file)
    are passed over silently. ``digest`` is fed every entry as read (a keyed import's fingerprint)."""
    position = 0
    if isinstance(values, AsyncIterable):
        source: AsyncIterable[Item] = values
    else:
        source = _aiter(values)
    async for raw in source:
        position += 1
        if digest is not None:
            digest.update(msgspec.json.encode(raw) + b"\n")  # JSON: no raw line break inside
        if isinstance(raw, StateFields):
            row = imported_row(raw, now)
            if isinstance(row, ExportRow):
                yield row
            else:
                report.add_invalid(raw.line, row)
            continue
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
    values: AsyncIterable[Item] | Iterable[Item],
    strict: bool = False,
    ignore_blank: bool = False,
    batch_size: int = IMPORT_BATCH,
    on_batch: Callable[[ImportReport], None] | None = None,
) -> ImportReport:
    """Add codes to a pool in batches, in constant memory: plain values as available codes, rows that carry
    a state (a CSV export read back) with that state, issued time, holder and uses. Duplicates (within the
    upload or already in the pool) are skipped and counted. Invalid values and rows are counted and
    skipped, or with ``strict`` refuse the whole upload before anything is stored. Each batch commits on
    its own, so an interrupted import keeps exactly what it had reported."""
    imported = await import_codes_once(
        store,
        account=account,
        pool_id=pool_id,
        values=values,
        strict=strict,
        ignore_blank=ignore_blank,
        batch_size=batch_size,
        on_batch=on_batch,
    )
    return imported.value


async def import_codes_once(
    store: Store,
    *,
    account: Account,
    pool_id: int,
    values: AsyncIterable[Item] | Iterable[Item],
    strict: bool = False,
    ignore_blank: bool = False,
    batch_size: int = IMPORT_BATCH,
    on_batch: Callable[[ImportReport], None] | None = None,
    idempotency_key: str | None = None,
) -> Once[ImportReport]:
    """``import_codes``, once per Idempotency-Key. A keyed upload is read whole (spooled) before anything
    is stored, its fingerprint taken from every entry; its key is reserved with the first batch and its
    report kept after the last. The same upload again gets that report, replayed, and stores nothing; a
    retry of an import that never finished (a crash, a broken upload) imports again: what the first
    attempt stored counts as duplicates, so each code is stored once."""
    check_writable(account)
    key = check_idempotency_key(idempotency_key)
    await get_pool(store, account=account, pool_id=pool_id)
    report = ImportReport()
    digest = None if key is None else hashlib.sha256()
    checked = _valid_values(values, report, store.clock(), ignore_blank=ignore_blank, digest=digest)
    if not strict and digest is None:
        return Once(await _insert_batches(store, pool_id, _batched(checked, batch_size), report, on_batch))
    with tempfile.TemporaryFile() as spool:
        spooled = [batch async for batch in _spooled(spool, _batched(checked, batch_size))]
        if strict and report.invalid:
            metrics.count_import(pool_id, report, refused=True)
            first = report.invalid_samples[0]
            where = "line" if ignore_blank else "item"  # a text or CSV upload, or a list
            raise InvalidCode(
                f"{report.invalid} invalid code(s) in the upload, the first at {where} {first.position}"
                f" ({first.reason.replace('_', ' ')}); nothing was imported",
                invalid=report.invalid,
                samples=[{"position": s.position, "reason": s.reason} for s in report.invalid_samples],
            )
        spool.seek(0)
        batches = _aiter(_unspool(spool, batch) for batch in spooled)
        if key is None or digest is None:
            return Once(await _insert_batches(store, pool_id, batches, report, on_batch))
        request = Keyed(key, fingerprint(digest.hexdigest(), strict, ignore_blank))
        async with _import_keys.held((account.id, key)):
            return await _insert_keyed(store, account, pool_id, request, batches, report, on_batch)


async def _insert_keyed(
    store: Store,
    account: Account,
    pool_id: int,
    request: Keyed,
    batches: AsyncIterator[list[Checked]],
    report: ImportReport,
    on_batch: Callable[[ImportReport], None] | None,
) -> Once[ImportReport]:
    first = await anext(batches, None)
    if first is not None:
        values, rows = _values_of(first)
        inserted = await store.insert_first_codes(
            account_id=account.id, pool_id=pool_id, values=values, request=request, states=rows
        )
        if isinstance(inserted, ImportReport):  # answered before: nothing stored now
            return Once(inserted, replayed=True)
        _count(report, pool_id, first, inserted, on_batch)
    report = await _insert_batches(store, pool_id, batches, report, on_batch)
    return await store.finish_import(account_id=account.id, pool_id=pool_id, request=request, report=report)


@dataclass(frozen=True, slots=True)
class _Spooled:
    size: int  # bytes
    rows: bool  # ImportRow JSON lines, not plain codes


_rows_encoder = msgspec.json.Encoder()
_rows_decoder = msgspec.json.Decoder(ImportRow)  # an upload's rows: states and descriptions


async def _spooled(spool: IO[bytes], batches: AsyncIterator[list[Checked]]) -> AsyncIterator[_Spooled]:
    """Write each batch to ``spool`` (one write per batch, not per code); where each one lies."""
    async for batch in batches:
        if isinstance(batch[0], str):
            # Checked and cleaned on the way in: a line each, as they are (no code holds a line break).
            data = "".join(f"{value}\n" for value in batch).encode("utf-8")
        else:
            data = _rows_encoder.encode_lines(batch)
        spool.write(data)
        yield _Spooled(len(data), rows=not isinstance(batch[0], str))


def _unspool(spool: IO[bytes], batch: _Spooled) -> list[Checked]:
    data = spool.read(batch.size)
    if batch.rows:
        return list(_rows_decoder.decode_lines(data))
    return list(data.decode("utf-8").split("\n")[:-1])


async def _batched(values: AsyncIterator[Checked], size: int) -> AsyncIterator[list[Checked]]:
    """Batches of ``size``; plain codes and rows are never in one batch (an upload holds one kind)."""
    batch: list[Checked] = []
    async for value in values:
        if batch and isinstance(value, str) != isinstance(batch[0], str):
            yield batch
            batch = []
        batch.append(value)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _values_of(batch: list[Checked]) -> tuple[list[str], list[ExportRow] | None]:
    """A batch's values, and its rows when it carries states."""
    rows = [row for row in batch if isinstance(row, ExportRow)]
    values = [row.code for row in rows] if rows else [value for value in batch if isinstance(value, str)]
    return values, rows or None


def _count(
    report: ImportReport,
    pool_id: int,
    batch: list[Checked],
    inserted: int,
    on_batch: Callable[[ImportReport], None] | None,
) -> None:
    report.inserted += inserted
    report.duplicates += len(batch) - inserted
    metrics.count_imported(pool_id, inserted=inserted, duplicates=len(batch) - inserted)
    if on_batch is not None:
        on_batch(report)


async def _insert_batches(
    store: Store,
    pool_id: int,
    batches: AsyncIterator[list[Checked]],
    report: ImportReport,
    on_batch: Callable[[ImportReport], None] | None,
) -> ImportReport:
    async def insert(batch: list[Checked]) -> None:
        values, rows = _values_of(batch)
        inserted = await store.insert_codes(
            pool_id=pool_id, values=values, expect_duplicates=report.duplicates > 0, states=rows
        )
        _count(report, pool_id, batch, inserted, on_batch)

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
    page = await list_codes_page(
        store, account=account, pool_id=pool_id, state=state, after=after, limit=limit
    )
    return page.items


async def list_codes_page(
    store: Store,
    *,
    account: Account,
    pool_id: int,
    state: CodeState | None = None,
    after: str | None = None,
    limit: int = 100,
) -> Page[Code]:
    """``list_codes`` with whether more codes follow."""
    check_limit(limit)
    if after is not None and has_control_characters(after):
        raise InvalidInput("invalid cursor", field="cursor")
    pool = await get_pool(store, account=account, pool_id=pool_id)

    async def fetch(n: int) -> list[Code]:
        codes = await store.list_codes(pool_id=pool_id, state=state, after=after, limit=n)
        return [with_validity(code, pool.settings) for code in codes]

    return await one_page(fetch, limit)


async def get_code(store: Store, *, account: Account, pool_id: int, value: str) -> Code:
    """One code of a pool, its expiry the earlier of its own and its pool's relative one; CodeNotFound
    otherwise."""
    pool = await get_pool(store, account=account, pool_id=pool_id)
    # A value no code could have is simply not there (and must not reach the database as a query).
    code = None if invalid_reason(value) else await store.get_code(pool_id=pool_id, value=value)
    if code is None:
        raise CodeNotFound(f"code {value!r} not found in pool {pool_id}", pool_id=pool_id)
    return with_validity(code, pool.settings)


async def set_code_description(
    store: Store,
    *,
    account: Account,
    pool_id: int,
    value: str,
    description: str,
    idempotency_key: str | None = None,
) -> Once[Code]:
    """Set (or with "" clear) one code's description, once per Idempotency-Key; CodeNotFound when the pool
    holds no such code."""
    check_writable(account)
    text = check_description(description)
    request = keyed(check_idempotency_key(idempotency_key), value, text)
    pool = await get_pool(store, account=account, pool_id=pool_id)
    if invalid_reason(value) is not None:
        raise CodeNotFound(f"code {value!r} not found in pool {pool_id}", pool_id=pool_id)
    changed = await store.set_description(
        account_id=account.id, pool_id=pool_id, value=value, description=text, request=request
    )
    return Once(with_validity(changed.value, pool.settings), changed.replayed)


async def delete_code(
    store: Store, *, account: Account, pool_id: int, value: str, idempotency_key: str | None = None
) -> bool:
    """Delete one code of a pool, once per Idempotency-Key; whether this was the first answer replayed."""
    check_writable(account)
    request = keyed(check_idempotency_key(idempotency_key), value)
    await get_pool(store, account=account, pool_id=pool_id)
    if invalid_reason(value):
        raise CodeNotFound(f"code {value!r} not found in pool {pool_id}", pool_id=pool_id)
    deleted = await store.delete_code_once(
        account_id=account.id, pool_id=pool_id, value=value, request=request
    )
    return deleted.replayed
