"""Claims that follow a pool's fallback when it is empty (the native API's claim; the dialects ignore it).

A single claim the pool cannot serve answers its ``fallback_code`` (``fallback: true``, nothing marked
issued) or continues from its ``fallback_pool_id``, and so on down the chain (cycles are refused when the
setting is made; a deleted or expired fallback pool ends the chain). A bulk claim is served whole by one
pool: the first of the chain that can serve ``count`` (with ``partial``, the first that has any codes left,
which then gives what it has, as without a fallback); a ``fallback_code`` answers ``count`` copies of it.
The first time a pool falls back, its ``pool.fallback`` event is queued (``Store.start_fallback``).
Leased claims never fall back: a shared code cannot be leased, and a lease names its pool. Nor do recipient
claims (single or ``recipients``): a recipient's code is bound to the pool asked, and the same recipient must
get the same code again; a recipient claim on an empty pool answers its 409.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

from promopool.domain import Account, BulkClaimed, Claimed, Pool
from promopool.domain.claims import check_count
from promopool.domain.errors import PoolExhausted, PoolExpired, PoolNotFound
from promopool.domain.fallback import fallback_code, fallback_key
from promopool.domain.keys import check_writable
from promopool.service.claims import check_idempotency_key, claim_checked, claim_many_checked
from promopool.service.claims import claim as service_claim
from promopool.service.pools import get_pool
from promopool.storage import Store

T = TypeVar("T", Claimed, BulkClaimed)


async def _follow(
    store: Store,
    account: Account,
    pool_id: int,
    key: str | None,
    claim: Callable[[int, str | None], Awaitable[T]],
    shared: Callable[[Pool, str], T],
) -> T:
    """``claim`` from ``pool_id``, then down its fallback chain while each pool is empty."""
    try:
        return await claim(pool_id, key)
    except PoolExhausted as exhausted:
        first = exhausted
    at, seen = pool_id, {pool_id}
    while True:
        pool = await get_pool(store, account=account, pool_id=at)
        settings = pool.settings
        if settings.fallback_code is None and settings.fallback_pool_id is None:
            raise first
        if pool.fallback_since is None:
            await store.start_fallback(pool_id=at)
        if settings.fallback_code is not None:
            return shared(pool, settings.fallback_code)
        key, at = fallback_key(key, at), settings.fallback_pool_id or 0
        if at in seen:  # a cycle cannot be set, but a chain is read one pool at a time
            raise first
        seen.add(at)
        try:
            return await claim(at, key)
        except PoolExhausted:
            continue  # that pool is empty too: its own fallback, if it has one
        except (PoolExpired, PoolNotFound):  # expired, or deleted meanwhile: the caller hears of its own pool
            raise first from None


async def claim_with_fallback(
    store: Store,
    *,
    account: Account,
    pool_id: int,
    idempotency_key: str | None = None,
    lease_seconds: int | None = None,
    recipient: str | None = None,
) -> Claimed:
    """``claim``, and when the pool is empty its fallback (``Claimed.fallback``); leased and recipient
    claims are ``claim``'s alone."""
    if lease_seconds is not None or recipient is not None:
        return await service_claim(
            store,
            account=account,
            pool_id=pool_id,
            idempotency_key=idempotency_key,
            lease_seconds=lease_seconds,
            recipient=recipient,
        )
    check_writable(account)
    key = check_idempotency_key(idempotency_key)

    async def claim(at: int, key: str | None) -> Claimed:
        claimed = await claim_checked(
            store, account=account, pool_id=at, idempotency_key=key, lease_seconds=None
        )
        return claimed if at == pool_id else replace(claimed, fallback=True)

    def shared(pool: Pool, value: str) -> Claimed:
        return Claimed(fallback_code(pool.id, value, store.clock()), fallback=True)

    return await _follow(store, account, pool_id, key, claim, shared)


async def claim_many_with_fallback(
    store: Store,
    *,
    account: Account,
    pool_id: int,
    count: int,
    partial: bool = False,
    idempotency_key: str | None = None,
) -> BulkClaimed:
    """``claim_many``, and when the pool cannot serve it its fallback, whole (``BulkClaimed.fallback``)."""
    check_writable(account)
    wanted, key = check_count(count), check_idempotency_key(idempotency_key)

    async def claim(at: int, key: str | None) -> BulkClaimed:
        claimed = await claim_many_checked(
            store, account=account, pool_id=at, count=wanted, partial=partial, idempotency_key=key
        )
        return claimed if at == pool_id else replace(claimed, fallback=True)

    def shared(pool: Pool, value: str) -> BulkClaimed:
        return BulkClaimed(pool.id, [fallback_code(pool.id, value, store.clock())] * wanted, fallback=True)

    return await _follow(store, account, pool_id, key, claim, shared)
