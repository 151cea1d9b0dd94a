"""Low-stock alerts, webhook secrets and deliveries, pool activity and inventory (operators: admin, metrics).

A claim batch's counters, hourly activity and low-stock event are the driver's ``TakeCodes``;
``record_redemptions`` is the redemption path's counterpart, run in its transaction.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from promopool.domain.alerts import ActivityPoint, Delivery, InventoryRow, PoolAlert, hour_of
from promopool.storage.core import StoreCore
from promopool.storage.driver import Execute, Fetch, FetchRow, FetchVal, Op
from promopool.storage.rows import DELIVERY_COLUMNS, at, delivery_of, leased_delivery_of

COUNT_IMPORTS = (
    "INSERT INTO pool_activity (pool_id, hour, imports) VALUES ($1, $2, $3) ON CONFLICT (pool_id, hour)"
    " DO UPDATE SET imports = pool_activity.imports + excluded.imports"
)
COUNT_REDEMPTIONS = (
    "INSERT INTO pool_activity (pool_id, hour, redemptions) VALUES ($1, $2, $3) ON CONFLICT (pool_id, hour)"
    " DO UPDATE SET redemptions = pool_activity.redemptions + excluded.redemptions"
)
SET_ALERT = (
    "INSERT INTO pool_alerts VALUES ($1, $2, $3) ON CONFLICT (pool_id) DO UPDATE"
    " SET threshold = excluded.threshold, webhook_url = excluded.webhook_url"
)
ADD_SIGNING_KEY = "INSERT INTO webhook_secrets VALUES ($1, $2, $3) ON CONFLICT (account_id) DO NOTHING"
REPLACE_SIGNING_KEY = (
    "INSERT INTO webhook_secrets VALUES ($1, $2, $3) ON CONFLICT (account_id)"
    " DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at"
)
ENQUEUE = (
    "INSERT INTO webhook_deliveries (account_id, pool_id, event, url, data, next_attempt_at, created_at)"
    f" VALUES ($1, $2, $3, $4, $5::text::jsonb, $6, $6) RETURNING {DELIVERY_COLUMNS}"
)
DUE = "FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= $1"
# SKIP LOCKED: several workers and servers lease disjoint deliveries; moving next_attempt_at to the lease's
# end hides a leased delivery until then, and brings it back if its sender died.
LEASE = (
    "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = $2, last_attempt_at = $1"
    f" WHERE id IN (SELECT id {DUE} ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)"
    f" RETURNING {DELIVERY_COLUMNS},"
    " (SELECT secret FROM webhook_secrets s WHERE s.account_id = webhook_deliveries.account_id) AS secret"
)
FINISH = (
    "UPDATE webhook_deliveries SET state = $2, last_status = $3, last_error = $4,"
    " next_attempt_at = COALESCE($5, next_attempt_at), delivered_at = $6 WHERE id = $1"
)


def record_redemptions(pool_id: int, count: int, now: datetime) -> Op[None]:
    """Count ``count`` redemptions (negative: rollbacks) in the pool's activity of ``now``'s hour."""
    yield Execute(COUNT_REDEMPTIONS, pool_id, hour_of(now), count)


def record_imports(pool_id: int, count: int, now: datetime) -> Op[None]:
    """Count ``count`` codes added to the pool in the pool's activity of ``now``'s hour."""
    yield Execute(COUNT_IMPORTS, pool_id, hour_of(now), count)


def get_pool_alert(pool_id: int) -> Op[PoolAlert | None]:
    row = yield FetchRow("SELECT threshold, webhook_url FROM pool_alerts WHERE pool_id = $1", pool_id)
    return None if row is None else PoolAlert(pool_id, row["threshold"], row["webhook_url"])


def set_pool_alert(pool_id: int, threshold: int | None, webhook_url: str | None) -> Op[None]:
    if threshold is None:
        yield Execute("DELETE FROM pool_alerts WHERE pool_id = $1", pool_id)
    else:
        yield Execute(SET_ALERT, pool_id, threshold, webhook_url)


def list_pool_alerts(account_id: int) -> Op[list[PoolAlert]]:
    rows = yield Fetch(
        "SELECT a.pool_id, a.threshold, a.webhook_url FROM pool_alerts a JOIN pools p ON p.id = a.pool_id"
        " WHERE p.account_id = $1",
        account_id,
    )
    return [PoolAlert(row["pool_id"], row["threshold"], row["webhook_url"]) for row in rows]


def enqueue_delivery(
    account_id: int, pool_id: int, event: str, url: str, data: dict[str, Any], now: datetime
) -> Op[Delivery]:
    row = yield FetchRow(ENQUEUE, account_id, pool_id, event, url, json.dumps(data), now)
    return delivery_of(row)


def webhook_secret(account_id: int, new_secret: str, now: datetime) -> Op[str]:
    yield Execute(ADD_SIGNING_KEY, account_id, new_secret, now)
    return str((yield FetchVal("SELECT secret FROM webhook_secrets WHERE account_id = $1", account_id)))


def replace_webhook_secret(account_id: int, secret: str, now: datetime) -> Op[None]:
    yield Execute(REPLACE_SIGNING_KEY, account_id, secret, now)


def list_deliveries(pool_id: int, limit: int) -> Op[list[Delivery]]:
    sql = f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE pool_id = $1 ORDER BY id DESC LIMIT $2"
    return [delivery_of(row) for row in (yield Fetch(sql, pool_id, limit))]


def any_due(now: datetime) -> Op[bool]:
    return (yield FetchVal(f"SELECT 1 {DUE} LIMIT 1", now)) is not None


def lease_deliveries(now: datetime, lease_until: datetime, limit: int) -> Op[list[Delivery]]:
    rows = yield Fetch(LEASE, now, lease_until, limit)
    return sorted(map(leased_delivery_of, rows), key=lambda d: d.id)


def finish_attempt(
    delivery_id: int,
    now: datetime,
    delivered: bool,
    status: int | None,
    error: str | None,
    retry: datetime | None,
) -> Op[None]:
    state = "delivered" if delivered else "pending" if retry is not None else "failed"
    yield Execute(FINISH, delivery_id, state, status, error, retry, now if delivered else None)


def purge_deliveries(older_than: datetime) -> Op[int]:
    sql = "DELETE FROM webhook_deliveries WHERE created_at < $1 AND state <> 'pending'"
    purged: int = yield Execute(sql, older_than)
    return purged


def pool_activity(pool_id: int, since: datetime) -> Op[list[ActivityPoint]]:
    sql = (
        "SELECT hour, claims, redemptions, imports FROM pool_activity WHERE pool_id = $1 AND hour >= $2"
        " ORDER BY hour"
    )
    rows = yield Fetch(sql, pool_id, since)
    return [ActivityPoint(at(row["hour"]), row["claims"], row["redemptions"], row["imports"]) for row in rows]


def pool_inventory(limit: int) -> Op[tuple[list[InventoryRow], int]]:
    rows = yield Fetch(
        "SELECT a.name, p.id, p.name, p.n_available, p.n_issued, p.n_redeemed"
        " FROM pools p JOIN accounts a ON a.id = p.account_id ORDER BY p.id LIMIT $1",
        limit,
    )
    total = yield FetchVal("SELECT count(*) FROM pools")
    return [InventoryRow(*row) for row in rows], total


class Alerts(StoreCore):
    async def get_pool_alert(self, *, pool_id: int) -> PoolAlert | None:
        return await self._driver.read(get_pool_alert(pool_id))

    async def set_pool_alert(self, *, pool_id: int, threshold: int | None, webhook_url: str | None) -> None:
        """Set the pool's low-stock threshold and webhook URL; ``threshold=None`` removes the alert."""
        await self._driver.write(set_pool_alert(pool_id, threshold, webhook_url))

    async def list_pool_alerts(self, *, account_id: int) -> list[PoolAlert]:
        """The alerts of the account's pools (pools without one are left out)."""
        return await self._driver.read(list_pool_alerts(account_id))

    async def enqueue_delivery(
        self, *, account_id: int, pool_id: int, event: str, url: str, data: dict[str, Any]
    ) -> Delivery:
        """Add a pending delivery of ``event``, due now; the webhook senders send it like any other."""
        now = self.clock()
        return await self._driver.write(enqueue_delivery(account_id, pool_id, event, url, data, now))

    async def webhook_secret(self, *, account_id: int, new_secret: str) -> str:
        """The account's webhook signing secret, stored as ``new_secret`` if it has none yet."""
        return await self._driver.write(webhook_secret(account_id, new_secret, self.clock()))

    async def replace_webhook_secret(self, *, account_id: int, secret: str) -> None:
        await self._driver.write(replace_webhook_secret(account_id, secret, self.clock()))

    async def list_deliveries(self, *, pool_id: int, limit: int) -> list[Delivery]:
        """The pool's webhook deliveries, newest first."""
        return await self._driver.read(list_deliveries(pool_id, limit))

    async def lease_deliveries(self, *, now: datetime, lease_until: datetime, limit: int) -> list[Delivery]:
        """Take up to ``limit`` pending deliveries due at ``now`` for sending, with their account's secret:
        each counts one more attempt and is hidden from other senders until ``lease_until``."""
        # Read first: the common answer, nothing due, then costs no write (SQLite: no turn of the writer).
        if not await self._driver.read(any_due(now)):
            return []
        return await self._driver.write(lease_deliveries(now, lease_until, limit))

    async def finish_attempt(
        self,
        *,
        delivery_id: int,
        now: datetime,
        delivered: bool,
        status: int | None,
        error: str | None,
        retry_at: datetime | None,
    ) -> None:
        """Record an attempt's outcome: delivered, to be retried at ``retry_at``, or (neither) failed."""
        await self._driver.write(finish_attempt(delivery_id, now, delivered, status, error, retry_at))

    async def purge_deliveries(self, *, older_than: datetime) -> int:
        return await self._driver.write(purge_deliveries(older_than))

    async def pool_activity(self, *, pool_id: int, since: datetime) -> list[ActivityPoint]:
        """Hourly claims and redemptions of the pool from ``since`` on, oldest first (hours with any)."""
        return await self._driver.read(pool_activity(pool_id, since))

    async def pool_inventory(self, *, limit: int) -> tuple[list[InventoryRow], int]:
        """The counters of the first ``limit`` pools by id, across accounts (cheap: the counters live in the
        pool row), and how many pools there are."""
        return await self._driver.read(pool_inventory(limit))
