"""Pools and their settings; ``lock_pool``, which every write changing a pool's codes runs first."""

from __future__ import annotations

from datetime import datetime

from promopool.domain import Pool, PoolSettings
from promopool.domain.errors import PoolNotFound
from promopool.domain.fallback import FALLBACK_EVENT, fallback_refusal
from promopool.domain.normalization import Normalization, collision_error, collisions
from promopool.storage.core import StoreCore
from promopool.storage.driver import Execute, Fetch, FetchRow, FetchVal, Op
from promopool.storage.ops import idempotency
from promopool.storage.ops.alerts import enqueue_delivery
from promopool.storage.rows import POOL_COLUMNS, pool_of

SETTINGS = (
    "max_uses, per_profile_limit, expires_at, public_fetch, case_insensitive, ignore_separators, holder_only,"
    " fallback_code, fallback_pool_id, valid_for_seconds"
)


def _settings(settings: PoolSettings) -> tuple[object, ...]:
    return (
        settings.max_uses,
        settings.per_profile_limit,
        settings.expires_at,
        settings.public_fetch,
        settings.case_insensitive,
        settings.ignore_separators,
        settings.holder_only,
        settings.fallback_code,
        settings.fallback_pool_id,
        settings.valid_for_seconds,
    )


def lock_pool(pool_id: int, account_id: int | None = None) -> Op[bool]:
    """Take the pool's row (of the account, when given) for this transaction; whether it exists.

    The lock order (docs/design.md): a transaction that changes a code's state takes its pool's row before any
    code row, as claim batches do; the other order deadlocks against a claim batch. (SQLite: the writer holds
    the database's write lock already.)"""
    found = yield FetchVal(
        "SELECT id FROM pools WHERE id = $1 AND ($2::bigint IS NULL OR account_id = $2) FOR UPDATE",
        pool_id,
        account_id,
    )
    return found is not None


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
    yield from check_fallback_pool(account_id, None, settings.fallback_pool_id)
    row = yield FetchRow(
        f"INSERT INTO pools (account_id, name, created_at, {SETTINGS})"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING {POOL_COLUMNS}",
        account_id,
        name,
        now,
        *_settings(settings),
    )
    if key is not None:
        yield from idempotency.record(account_id, [(key, row["id"])])
    return pool_of(row), False


def check_fallback_pool(account_id: int, pool_id: int | None, target: int | None) -> Op[None]:
    """Refuse ``target`` as the fallback of ``pool_id`` (None: a pool being created) unless it is a pool of
    the account whose own fallbacks never lead back. The account's row is taken first, so two changes that
    would close a cycle together take turns (SQLite: its writer already runs one write at a time)."""
    if target is None:
        return
    yield FetchVal("SELECT id FROM accounts WHERE id = $1 FOR NO KEY UPDATE", account_id)
    rows = yield Fetch("SELECT id, fallback_pool_id FROM pools WHERE account_id = $1", account_id)
    refusal = fallback_refusal(pool_id or 0, target, {row["id"]: row["fallback_pool_id"] for row in rows})
    if refusal is not None:
        raise refusal


def start_fallback(pool_id: int, now: datetime) -> Op[bool]:
    """Mark the pool as serving its fallback and queue its ``pool.fallback`` event (to the low-stock alert's
    webhook URL, if any) in the same transaction; True only for the call that starts it, so one event per
    start however many claims find the pool empty. An import that adds codes ends it (``insert_codes``)."""
    row = yield FetchRow(
        "UPDATE pools SET fallback_since = $2 WHERE id = $1 AND fallback_since IS NULL"
        " RETURNING account_id, name, n_available, fallback_code, fallback_pool_id",
        pool_id,
        now,
    )
    if row is None:
        return False
    url = yield FetchVal(
        "SELECT webhook_url FROM pool_alerts WHERE pool_id = $1 AND webhook_url IS NOT NULL", pool_id
    )
    if url is not None:
        data = {
            "pool_id": pool_id,
            "pool_name": row["name"],
            "available": row["n_available"],
            "fallback_code": row["fallback_code"] is not None,
            "fallback_pool_id": row["fallback_pool_id"],
        }
        yield from enqueue_delivery(row["account_id"], pool_id, FALLBACK_EVENT, url, data, now)
    return True


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
    # The account's row first (fallback changes take turns on it), then the pool's: the row lock keeps imports
    # (which take it too) out while the codes are checked for collisions.
    yield from check_fallback_pool(account_id, pool_id, settings.fallback_pool_id)
    old = yield FetchRow(
        "SELECT case_insensitive, ignore_separators FROM pools WHERE id = $1 AND account_id = $2 FOR UPDATE",
        pool_id,
        account_id,
    )
    if old is None:
        return None
    was = Normalization(bool(old["case_insensitive"]), bool(old["ignore_separators"]))
    yield from refuse_collisions(pool_id, was, settings.normalization)
    row = yield FetchRow(
        "UPDATE pools SET name = $3, max_uses = $4, per_profile_limit = $5, expires_at = $6,"
        " public_fetch = $7, case_insensitive = $8, ignore_separators = $9, holder_only = $10,"
        " fallback_code = $11, fallback_pool_id = $12, valid_for_seconds = $13"
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

    async def start_fallback(self, *, pool_id: int) -> bool:
        """The pool starts serving its fallback: True (and its event queued) for the first call only."""
        return await self._driver.write(start_fallback(pool_id, self.clock()))

    async def delete_pool(self, *, account_id: int, pool_id: int) -> bool:
        return await self._driver.write(delete_pool(account_id, pool_id))
