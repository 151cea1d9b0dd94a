"""Pools and their settings; ``lock_pool``, which every write changing a pool's codes runs first."""

from __future__ import annotations

from datetime import datetime

from promopool.domain import Pool, PoolSettings
from promopool.domain.errors import PoolNotFound
from promopool.domain.normalization import Normalization, collision_error, collisions
from promopool.storage.core import StoreCore
from promopool.storage.driver import Execute, Fetch, FetchRow, Op
from promopool.storage.ops import idempotency
from promopool.storage.rows import POOL_COLUMNS, POOL_SETTINGS, Row, normalization_of, pool_of


def _settings(settings: PoolSettings) -> tuple[object, ...]:
    return tuple(getattr(settings, name) for name in POOL_SETTINGS)


def locked_pool(pool_id: int, account_id: int | None = None, columns: str = "id") -> Op[Row | None]:
    """Take the pool's row (of the account, when given) for this transaction: its ``columns``, or None when
    there is no such pool.

    The lock order (docs/design.md): a transaction that changes a code's state takes its pool's row before any
    code row, as claim batches do; the other order deadlocks against a claim batch. (SQLite: the writer holds
    the database's write lock already.)"""
    row = yield FetchRow(
        f"SELECT {columns} FROM pools WHERE id = $1 AND ($2::bigint IS NULL OR account_id = $2) FOR UPDATE",
        pool_id,
        account_id,
    )
    return row


def lock_pool(pool_id: int, account_id: int | None = None) -> Op[bool]:
    """Take the pool's row (of the account, when given) for this transaction (``locked_pool``); whether it
    exists."""
    return (yield from locked_pool(pool_id, account_id)) is not None


def create_pool(
    account_id: int, name: str, settings: PoolSettings, now: datetime, key: str | None
) -> Op[tuple[Pool, bool]]:
    """A new pool and False; with a key used before to create a pool, that pool and True (replayed)."""
    if key is not None:
        earlier = yield from idempotency.reserve_one(account_id, key, idempotency.CREATE_POOL_SCOPE, now)
        if earlier is not None:
            if earlier.scope != idempotency.CREATE_POOL_SCOPE:
                raise idempotency.key_reused(key)
            pool = yield from get_pool(account_id, earlier.result_id or 0)
            if pool is None:
                raise PoolNotFound(earlier.result_id or 0)
            return pool, True
    row = yield FetchRow(
        f"INSERT INTO pools (account_id, name, created_at, {', '.join(POOL_SETTINGS)})"
        f" VALUES ($1, $2, $3, {', '.join(f'${i}' for i, _ in enumerate(POOL_SETTINGS, 4))})"
        f" RETURNING {POOL_COLUMNS}",
        account_id,
        name,
        now,
        *_settings(settings),
    )
    if key is not None:
        yield from idempotency.record(account_id, [(key, row["id"])])
    return pool_of(row), False


def list_pools(account_id: int) -> Op[list[Pool]]:
    rows = yield Fetch(f"SELECT {POOL_COLUMNS} FROM pools WHERE account_id = $1 ORDER BY id", account_id)
    return [pool_of(row) for row in rows]


def get_pool(account_id: int, pool_id: int) -> Op[Pool | None]:
    row = yield FetchRow(
        f"SELECT {POOL_COLUMNS} FROM pools WHERE id = $1 AND account_id = $2", pool_id, account_id
    )
    return None if row is None else pool_of(row)


def refuse_collisions(pool_id: int, old: Normalization, new: Normalization) -> Op[None]:
    """Raise NormalizationCollision when switching the pool from ``old`` to ``new`` would make codes one."""
    if not new.folds_more_than(old):
        return
    rows = yield Fetch(
        "SELECT value FROM codes WHERE pool_id = $1 AND lookup_key IN"
        " (SELECT lookup_key FROM codes WHERE pool_id = $1 GROUP BY lookup_key HAVING count(*) > 1)",
        pool_id,
    )
    groups = collisions((row["value"] for row in rows), new)
    if groups:
        raise collision_error(groups, new)


def update_pool(account_id: int, pool_id: int, name: str, settings: PoolSettings) -> Op[Pool | None]:
    # The row lock keeps imports (which take it too) out while the codes are checked for collisions.
    old = yield from locked_pool(pool_id, account_id, "case_insensitive, ignore_separators")
    if old is None:
        return None
    yield from refuse_collisions(pool_id, normalization_of(old), settings.normalization)
    row = yield FetchRow(
        f"UPDATE pools SET name = $3, {', '.join(f'{n} = ${i}' for i, n in enumerate(POOL_SETTINGS, 4))}"
        f" WHERE id = $1 AND account_id = $2 RETURNING {POOL_COLUMNS}",
        pool_id,
        account_id,
        name,
        *_settings(settings),
    )
    return None if row is None else pool_of(row)


def delete_pool(account_id: int, pool_id: int) -> Op[bool]:
    deleted = yield Execute("DELETE FROM pools WHERE id = $1 AND account_id = $2", pool_id, account_id)
    return bool(deleted)


class Pools(StoreCore):
    async def create_pool(
        self, *, account_id: int, name: str, settings: PoolSettings, idempotency_key: str | None = None
    ) -> tuple[Pool, bool]:
        """A new pool, and False; with a key used before to create a pool, that pool and True (replayed),
        PoolNotFound when it has been deleted since, IdempotencyKeyReused when the key was used for
        another kind of request. The key is recorded in the pool's transaction."""
        op = create_pool(account_id, name, settings, self.clock(), idempotency_key)
        return await self._driver.write(op)

    async def list_pools(self, *, account_id: int) -> list[Pool]:
        return await self._driver.read(list_pools(account_id))

    async def get_pool(self, *, account_id: int, pool_id: int) -> Pool | None:
        return await self._driver.read(get_pool(account_id, pool_id))

    async def update_pool(
        self, *, account_id: int, pool_id: int, name: str, settings: PoolSettings
    ) -> Pool | None:
        return await self._driver.write(update_pool(account_id, pool_id, name, settings))

    async def delete_pool(self, *, account_id: int, pool_id: int) -> bool:
        return await self._driver.write(delete_pool(account_id, pool_id))
