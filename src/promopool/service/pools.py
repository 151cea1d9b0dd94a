"""Pools: create, list with counts, change settings, delete."""

from __future__ import annotations

from dataclasses import replace

from promopool.domain import Account, Pool, PoolSettings
from promopool.domain.codes import check_expiry, check_name
from promopool.domain.errors import InvalidInput, PoolNotFound
from promopool.domain.fallback import check_fallback
from promopool.domain.idempotency import keyed
from promopool.domain.keys import check_writable
from promopool.service.claims import check_idempotency_key
from promopool.service.paging import Page, one_page
from promopool.storage import Store


def _check_pool(name: str, settings: PoolSettings, pool_id: int | None = None) -> str:
    name = check_name(name, "pool")
    if settings.max_uses < 1:
        raise InvalidInput("max_uses must be at least 1", field="max_uses")
    if settings.per_profile_limit is not None and settings.per_profile_limit < 1:
        raise InvalidInput(
            "per_profile_limit must be at least 1 (or null for no limit)", field="per_profile_limit"
        )
    if settings.expires_at is not None:
        check_expiry(settings.expires_at)
    check_fallback(settings, pool_id)
    return name


async def create_pool(store: Store, *, account: Account, name: str, settings: PoolSettings) -> Pool:
    """Create an empty pool in the account."""
    pool, _ = await create_pool_once(store, account=account, name=name, settings=settings)
    return pool


async def create_pool_once(
    store: Store, *, account: Account, name: str, settings: PoolSettings, idempotency_key: str | None = None
) -> tuple[Pool, bool]:
    """Create an empty pool in the account, once per Idempotency-Key: a retry with the key gets the pool it
    created, and True (replayed)."""
    check_writable(account)
    name = _check_pool(name, settings)
    return await store.create_pool(
        account_id=account.id,
        name=name,
        settings=settings,
        request=keyed(check_idempotency_key(idempotency_key), name, settings),
    )


async def list_pools(store: Store, *, account: Account) -> list[Pool]:
    """The account's pools with their available / issued / redeemed counts."""
    return await store.list_pools(account_id=account.id)


async def list_pools_page(
    store: Store, *, account: Account, after: int | None = None, limit: int = 100
) -> Page[Pool]:
    """A page of the account's pools in id order (a new pool joins the end), those after the id ``after``."""

    async def fetch(n: int) -> list[Pool]:
        return await store.list_pools(account_id=account.id, after=after, limit=n)

    return await one_page(fetch, limit)


async def get_pool(store: Store, *, account: Account, pool_id: int) -> Pool:
    """One pool of the account; PoolNotFound otherwise."""
    pool = await store.get_pool(account_id=account.id, pool_id=pool_id)
    if pool is None:
        raise PoolNotFound(pool_id)
    return pool


async def changed_pool(
    store: Store, *, account: Account, pool_id: int, name: str | None = None, **changes: object
) -> tuple[str, PoolSettings]:
    """The pool's name and settings with ``changes`` (fields of PoolSettings by keyword), checked."""
    pool = await get_pool(store, account=account, pool_id=pool_id)
    unknown = set(changes) - set(PoolSettings.__dataclass_fields__)
    if unknown:
        raise InvalidInput(f"unknown pool setting(s): {', '.join(sorted(unknown))}")
    settings = replace(pool.settings, **changes)  # type: ignore[arg-type]
    return _check_pool(pool.name if name is None else name, settings, pool_id), settings


async def update_pool(
    store: Store, *, account: Account, pool_id: int, name: str | None = None, **changes: object
) -> Pool:
    """Change a pool's name and/or settings (fields of PoolSettings given by keyword)."""
    check_writable(account)
    new_name, settings = await changed_pool(store, account=account, pool_id=pool_id, name=name, **changes)
    updated = await store.update_pool(
        account_id=account.id, pool_id=pool_id, name=new_name, settings=settings
    )
    if updated is None:
        raise PoolNotFound(pool_id)
    return updated


async def delete_pool(
    store: Store, *, account: Account, pool_id: int, idempotency_key: str | None = None
) -> bool:
    """Delete a pool with all its codes, once per Idempotency-Key; whether this was the first answer
    replayed."""
    check_writable(account)
    request = keyed(check_idempotency_key(idempotency_key))
    return (await store.delete_pool(account_id=account.id, pool_id=pool_id, request=request)).replayed
