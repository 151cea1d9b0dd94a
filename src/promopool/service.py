"""The use cases. Every dialect, the CLI and the admin pages call these; business rules live here only.

Functions are keyword-only and take the store first. Each checks the caller's account owns what it touches:
another account's pool is indistinguishable from a missing one.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import replace
from datetime import timedelta

from promopool.domain import Account, Claimed, Code, CodeState, ImportReport, NewAccount, Pool, PoolSettings
from promopool.domain.codes import has_control_characters, invalid_reason
from promopool.domain.errors import CodeNotFound, InvalidCode, InvalidInput, PoolNotFound, Unauthenticated
from promopool.domain.keys import hash_api_key, new_api_key, new_public_key
from promopool.storage import Store

IMPORT_BATCH = 10_000
MAX_POOL_NAME = 200
MAX_IDEMPOTENCY_KEY = 255
MAX_PAGE = 1000
DEFAULT_ACCOUNT_NAME = "default"


# -- accounts ----------------------------------------------------------------------------------------------
async def create_account(store: Store, *, name: str) -> NewAccount:
    """Create an account; its API key is returned here once and stored only hashed."""
    name = _check_name(name, "account")
    api_key = new_api_key()
    account = await store.create_account(
        name=name, public_key=new_public_key(), key_hash=hash_api_key(api_key)
    )
    return NewAccount(account=account, api_key=api_key)


async def create_api_key(store: Store, *, account: Account) -> str:
    """Add another API key to the account and return it (once)."""
    api_key = new_api_key()
    await store.add_api_key(account_id=account.id, key_hash=hash_api_key(api_key))
    return api_key


async def ensure_default_account(store: Store) -> NewAccount | None:
    """On an empty database, create the ``default`` account so a newcomer can start at once."""
    if await store.count_accounts() > 0:
        return None
    return await create_account(store, name=DEFAULT_ACCOUNT_NAME)


async def authenticate(store: Store, *, api_key: str) -> Account:
    """The account an API key belongs to; Unauthenticated for an unknown key."""
    account = await store.account_by_key_hash(hash_api_key(api_key))
    if account is None:
        raise Unauthenticated("unknown API key")
    return account


# -- pools -------------------------------------------------------------------------------------------------
def _check_name(name: str, what: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_POOL_NAME or has_control_characters(name):
        raise InvalidInput(
            f"{what} name must be 1-{MAX_POOL_NAME} characters, no control characters", field="name"
        )
    return name


def _check_pool(name: str, settings: PoolSettings) -> str:
    name = _check_name(name, "pool")
    if settings.max_uses < 1:
        raise InvalidInput("max_uses must be at least 1", field="max_uses")
    if settings.per_profile_limit is not None and settings.per_profile_limit < 1:
        raise InvalidInput(
            "per_profile_limit must be at least 1 (or null for no limit)", field="per_profile_limit"
        )
    return name


async def create_pool(store: Store, *, account: Account, name: str, settings: PoolSettings) -> Pool:
    """Create an empty pool in the account."""
    return await store.create_pool(account_id=account.id, name=_check_pool(name, settings), settings=settings)


async def list_pools(store: Store, *, account: Account) -> list[Pool]:
    """The account's pools with their available / issued / redeemed counts."""
    return await store.list_pools(account_id=account.id)


async def get_pool(store: Store, *, account: Account, pool_id: int) -> Pool:
    """One pool of the account; PoolNotFound otherwise."""
    pool = await store.get_pool(account_id=account.id, pool_id=pool_id)
    if pool is None:
        raise PoolNotFound(pool_id)
    return pool


async def update_pool(
    store: Store, *, account: Account, pool_id: int, name: str | None = None, **changes: object
) -> Pool:
    """Change a pool's name and/or settings (fields of PoolSettings given by keyword)."""
    pool = await get_pool(store, account=account, pool_id=pool_id)
    unknown = set(changes) - set(PoolSettings.__dataclass_fields__)
    if unknown:
        raise InvalidInput(f"unknown pool setting(s): {', '.join(sorted(unknown))}")
    settings = replace(pool.settings, **changes)  # type: ignore[arg-type]
    new_name = _check_pool(pool.name if name is None else name, settings)
    updated = await store.update_pool(
        account_id=account.id, pool_id=pool_id, name=new_name, settings=settings
    )
    if updated is None:
        raise PoolNotFound(pool_id)
    return updated


async def delete_pool(store: Store, *, account: Account, pool_id: int) -> None:
    """Delete a pool with all its codes."""
    if not await store.delete_pool(account_id=account.id, pool_id=pool_id):
        raise PoolNotFound(pool_id)


# -- codes -------------------------------------------------------------------------------------------------
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
            async for value in _valid_values(values, report, ignore_blank=ignore_blank):
                spool.write(value.encode("utf-8") + b"\n")
            if report.invalid:
                raise InvalidCode(
                    f"{report.invalid} invalid code(s) in the upload; nothing was imported",
                    invalid=report.invalid,
                    samples=[{"position": s.position, "reason": s.reason} for s in report.invalid_samples],
                )
            spool.seek(0)
            lines = (line.decode("utf-8").removesuffix("\n") for line in spool)
            return await _insert_all(
                store, pool_id, _valid_values(lines, report), report, batch_size, on_batch
            )
    valid = _valid_values(values, report, ignore_blank=ignore_blank)
    return await _insert_all(store, pool_id, valid, report, batch_size, on_batch)


async def _insert_all(
    store: Store,
    pool_id: int,
    values: AsyncIterator[str],
    report: ImportReport,
    batch_size: int,
    on_batch: Callable[[ImportReport], None] | None,
) -> ImportReport:
    batch: list[str] = []

    async def flush() -> None:
        inserted = await store.insert_codes(pool_id=pool_id, values=batch)
        report.inserted += inserted
        report.duplicates += len(batch) - inserted
        batch.clear()
        if on_batch is not None:
            on_batch(report)

    async for value in values:
        batch.append(value)
        if len(batch) >= batch_size:
            await flush()
    if batch:
        await flush()
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


# -- claims ------------------------------------------------------------------------------------------------
def check_idempotency_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise InvalidInput(
            f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} printable characters", field="Idempotency-Key"
        )
    return key


async def claim(
    store: Store, *, account: Account, pool_id: int, idempotency_key: str | None = None
) -> Claimed:
    """Hand out the pool's next available code, exactly once, committed before it returns.

    With an idempotency key, a retry gets the code of the first claim back (``replayed``).
    """
    return await store.claim(
        account_id=account.id, pool_id=pool_id, idempotency_key=check_idempotency_key(idempotency_key)
    )


IDEMPOTENCY_TTL = timedelta(hours=24)


async def purge_idempotency_keys(store: Store, *, ttl: timedelta = IDEMPOTENCY_TTL) -> int:
    """Forget Idempotency-Key records older than ``ttl``; return how many."""
    return await store.purge_idempotency_keys(older_than=store.clock() - ttl)
