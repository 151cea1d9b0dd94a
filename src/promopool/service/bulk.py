"""Pools selected by the vendors' filters, and bulk removal: a pool's free codes, or many codes by value."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from promopool.domain import Account, Pool
from promopool.domain.codes import invalid_reason
from promopool.domain.errors import InvalidInput, PoolNotFound
from promopool.domain.keys import check_writable
from promopool.storage import Store


async def select_pools(
    store: Store,
    *,
    account: Account,
    active: bool = False,
    include: Collection[int] | None = None,
    exclude: Collection[int] = (),
    offset: int = 0,
    limit: int | None = None,
) -> list[Pool]:
    """The account's pools in id order: with ``active`` only those with an available code, with ``include``
    only those listed, never those in ``exclude``; ``offset`` skipped, at most ``limit``."""
    if offset < 0 or (limit is not None and limit < 0):
        raise InvalidInput("offset and limit must not be negative")
    pools = sorted(await store.list_pools(account_id=account.id), key=lambda pool: pool.id)
    chosen = [
        pool
        for pool in pools
        if (not active or pool.counts.available > 0)
        and (include is None or pool.id in include)
        and pool.id not in exclude
    ]
    return chosen[offset:] if limit is None else chosen[offset : offset + limit]


async def purge_pool(store: Store, *, account: Account, pool_id: int) -> int:
    """Delete the pool's codes that are not handed out (``available``); return how many."""
    check_writable(account)
    deleted = await store.purge_available(account_id=account.id, pool_id=pool_id)
    if deleted is None:
        raise PoolNotFound(pool_id)
    return deleted


async def delete_codes(
    store: Store, *, account: Account, pool_id: int, values: Iterable[str]
) -> tuple[int, int]:
    """Delete the pool's codes with these values (whatever their state): (deleted, not found). A value given
    twice counts once; a value no code could have is not found."""
    check_writable(account)
    wanted = dict.fromkeys(value.strip() for value in values)
    valid = [value for value in wanted if invalid_reason(value) is None]
    deleted = await store.delete_codes(account_id=account.id, pool_id=pool_id, values=valid)
    if deleted is None:
        raise PoolNotFound(pool_id)
    return deleted, len(wanted) - deleted
