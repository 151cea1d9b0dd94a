"""Pools and their settings; ``lock_pool``, which every write changing a pool's codes runs first."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from promopool.domain import Pool, PoolSettings
from promopool.domain.alerts import Delivery, PoolAlert
from promopool.domain.errors import PoolNotFound
from promopool.domain.fallback import FALLBACK_EVENT, fallback_refusal
from promopool.domain.idempotency import Keyed, Once
from promopool.domain.normalization import Normalization, collision_error, collisions
from promopool.storage.core import StoreCore
from promopool.storage.driver import Execute, Fetch, FetchRow, FetchVal, Op
from promopool.storage.ops import idempotency
from promopool.storage.ops.alerts import enqueue_delivery, get_pool_alert, set_pool_alert
from promopool.storage.rows import POOL_COLUMNS, POOL_SETTINGS, Row, normalization_of, pool_of

T = TypeVar("T")


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


def once_in_pool(
    account_id: int,
    pool_id: int,
    request: Keyed | None,
    scope: str,
    now: datetime,
    write: Op[T],
    kind: Any,
) -> Op[Once[T]]:
    """``idempotency.once`` for a write on a pool: the pool's row first (the lock order), then the key."""
    if request is not None and not (yield from lock_pool(pool_id, account_id)):
        raise PoolNotFound(pool_id)
    return (yield from idempotency.once(account_id, request, scope, now, write, kind))


def create_pool(
    account_id: int, name: str, settings: PoolSettings, now: datetime, request: Keyed | None
) -> Op[tuple[Pool, bool]]:
    """A new pool and False; with a key used before to create this pool, that pool and True (replayed)."""
    if request is not None:
        scope = idempotency.CREATE_POOL_SCOPE
        earlier = yield from idempotency.reserve_request(account_id, request, scope, now)
        if earlier is not None:
            pool = yield from get_pool(account_id, earlier.result_id or 0)
            if pool is None:
                raise PoolNotFound(earlier.result_id or 0)
            return pool, True
    yield from check_fallback_pool(account_id, None, settings.fallback_pool_id)
    row = yield FetchRow(
        f"INSERT INTO pools (account_id, name, created_at, {', '.join(POOL_SETTINGS)})"
        f" VALUES ($1, $2, $3, {', '.join(f'${i}' for i, _ in enumerate(POOL_SETTINGS, 4))})"
        f" RETURNING {POOL_COLUMNS}",
        account_id,
        name,
        now,
        *_settings(settings),
    )
    if request is not None:
        yield from idempotency.record(account_id, [(request.key, row["id"])])
    return pool_of(row), False


def account_turn(account_id: int) -> Op[None]:
    """Take the account's row: fallback changes take turns on it. Not FOR UPDATE, so that the key share lock
    a new pool or a claim's event takes on it does not wait (as in ``duplicate_code``)."""
    yield FetchVal("SELECT id FROM accounts WHERE id = $1 FOR NO KEY UPDATE", account_id)


def fallback_turn_first(account_id: int, settings: PoolSettings | None, write: Op[T]) -> Op[T]:
    """``write`` after the account's row when it sets a fallback pool: the lock order is the account's row,
    then the pool's, and a keyed change takes the pool's row before it reaches ``update_pool``."""
    if settings is not None and settings.fallback_pool_id is not None:
        yield from account_turn(account_id)
    return (yield from write)


def check_fallback_pool(account_id: int, pool_id: int | None, target: int | None) -> Op[None]:
    """Refuse ``target`` as the fallback of ``pool_id`` (None: a pool being created) unless it is a pool of
    the account whose own fallbacks never lead back. The account's row is taken first, so two changes that
    would close a cycle together take turns (SQLite: its writer already runs one write at a time)."""
    if target is None:
        return
    yield from account_turn(account_id)
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


def list_pools(account_id: int, after: int | None = None, limit: int | None = None) -> Op[list[Pool]]:
    sql = f"SELECT {POOL_COLUMNS} FROM pools WHERE account_id = $1 AND id > $2 ORDER BY id"
    args: list[object] = [account_id, after or 0]
    if limit is not None:
        sql += " LIMIT $3"
        args.append(limit)
    return [pool_of(row) for row in (yield Fetch(sql, *args))]


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
    # The account's row first (fallback changes take turns on it, as in ``duplicate_code``), then the pool's:
    # the row lock keeps imports (which take it too) out while the codes are checked for collisions.
    yield from check_fallback_pool(account_id, pool_id, settings.fallback_pool_id)
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


AlertChange = tuple[int | None, str | None]  # a pool's new low-stock threshold and webhook URL


def change_pool(
    account_id: int, pool_id: int, name: str | None, settings: PoolSettings | None, alert: AlertChange | None
) -> Op[tuple[Pool, PoolAlert | None]]:
    """Change the pool's name and settings (when given) and its alert (when given), in one transaction;
    the pool and its alert as they now are."""
    if name is None or settings is None:
        yield from lock_pool(pool_id, account_id)  # the alert is changed under the pool's row
        pool = yield from get_pool(account_id, pool_id)
    else:
        pool = yield from update_pool(account_id, pool_id, name, settings)
    if pool is None:
        raise PoolNotFound(pool_id)
    if alert is not None:
        yield from set_pool_alert(pool_id, *alert)
    return pool, (yield from get_pool_alert(pool_id))


PoolChange = tuple[Pool, PoolAlert | None]


def earlier_pool_change(account_id: int, pool_id: int, request: Keyed) -> Op[Once[PoolChange] | None]:
    """The first answer of this keyed change of the pool, replayed; None when it has none yet. A read ahead of
    the change, for the checks a replay must skip: they read the pool as it is now (a fallback code set since
    would refuse the replay of a change that set a fallback pool)."""
    earlier = yield from idempotency.earlier_request(
        account_id, request, idempotency.update_pool_scope(pool_id)
    )
    if earlier is None or earlier.answer is None:
        return None
    return Once(idempotency.decode(earlier.answer, PoolChange), replayed=True)


def delete_pool(account_id: int, pool_id: int) -> Op[bool]:
    """Delete the pool; PoolNotFound when there is none (raised, so that a keyed delete keeps no key)."""
    if not (yield Execute("DELETE FROM pools WHERE id = $1 AND account_id = $2", pool_id, account_id)):
        raise PoolNotFound(pool_id)
    return True


class Pools(StoreCore):
    async def create_pool(
        self, *, account_id: int, name: str, settings: PoolSettings, request: Keyed | None = None
    ) -> tuple[Pool, bool]:
        """A new pool, and False; with a key used before to create a pool, that pool and True (replayed),
        PoolNotFound when it has been deleted since, IdempotencyKeyReused when the key was used for
        another kind of request. The key is recorded in the pool's transaction."""
        op = create_pool(account_id, name, settings, self.clock(), request)
        return await self._driver.write(op)

    async def list_pools(
        self, *, account_id: int, after: int | None = None, limit: int | None = None
    ) -> list[Pool]:
        """The account's pools in id order, those after the id ``after`` only, at most ``limit``."""
        return await self._driver.read(list_pools(account_id, after, limit), paged=limit is not None)

    async def get_pool(self, *, account_id: int, pool_id: int) -> Pool | None:
        return await self._driver.read(get_pool(account_id, pool_id))

    async def update_pool(
        self, *, account_id: int, pool_id: int, name: str, settings: PoolSettings
    ) -> Pool | None:
        return await self._driver.write(update_pool(account_id, pool_id, name, settings))

    async def start_fallback(self, *, pool_id: int) -> bool:
        """The pool starts serving its fallback: True (and its event queued) for the first call only."""
        return await self._driver.write(start_fallback(pool_id, self.clock()))

    async def change_pool(
        self,
        *,
        account_id: int,
        pool_id: int,
        name: str | None = None,
        settings: PoolSettings | None = None,
        alert: AlertChange | None = None,
        request: Keyed | None = None,
    ) -> Once[tuple[Pool, PoolAlert | None]]:
        """Change the pool's name and settings (both or neither) and its alert, in one transaction, once
        per keyed request (the same request again gets the first answer); PoolNotFound."""
        now = self.clock()
        op = change_pool(account_id, pool_id, name, settings, alert)
        kind = tuple[Pool, PoolAlert | None]
        scope = idempotency.update_pool_scope(pool_id)
        write = once_in_pool(account_id, pool_id, request, scope, now, op, kind)
        return await self._driver.write(fallback_turn_first(account_id, settings, write))

    async def earlier_pool_change(
        self, *, account_id: int, pool_id: int, request: Keyed
    ) -> Once[PoolChange] | None:
        """The first answer of this keyed change (``change_pool``), replayed, or None; IdempotencyKeyReused
        when the key was used for another request."""
        return await self._driver.read(earlier_pool_change(account_id, pool_id, request))

    async def enqueue_test_event(
        self,
        *,
        account_id: int,
        pool_id: int,
        event: str,
        url: str,
        data: dict[str, Any],
        request: Keyed | None,
    ) -> Once[Delivery]:
        """``enqueue_delivery`` of a test event, once per keyed request (the first delivery answered
        again, replayed)."""
        now = self.clock()
        write = enqueue_delivery(account_id, pool_id, event, url, data, now)
        scope = idempotency.webhook_test_scope(pool_id)
        return await self._driver.write(
            once_in_pool(account_id, pool_id, request, scope, now, write, Delivery)
        )

    async def delete_pool(self, *, account_id: int, pool_id: int, request: Keyed | None = None) -> Once[bool]:
        """Delete the pool with its codes, once per keyed request; PoolNotFound."""
        scope = idempotency.delete_pool_scope(pool_id)
        op = idempotency.once(
            account_id, request, scope, self.clock(), delete_pool(account_id, pool_id), bool
        )
        return await self._driver.write(op)
