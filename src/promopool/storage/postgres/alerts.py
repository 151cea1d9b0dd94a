"""Low-stock alerts, webhook secrets and deliveries, pool activity (postgres engine).

``record_redemptions`` runs inside the transactions of the redemption path. The claim path's counterpart,
the counters, the hourly activity and the low-stock event of a claim batch, is part of the ``take_codes``
function (migration 0008_claim_functions.sql): they change together with the claim or not at all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from promopool.domain.alerts import (
    ActivityPoint,
    Delivery,
    DeliveryState,
    InventoryRow,
    PoolAlert,
    hour_of,
)
from promopool.storage.postgres.base import PostgresBase

DELIVERY_COLUMNS = (
    "id, account_id, pool_id, event, url, data, state, attempts, next_attempt_at, last_attempt_at,"
    " last_status, last_error, created_at, delivered_at"
)


async def record_redemptions(conn: asyncpg.Connection, *, pool_id: int, count: int, now: datetime) -> None:
    """For the redemption path, in its transaction: count ``count`` redemptions (negative: rollbacks) in
    the hour's activity of the pool."""
    await conn.execute(
        "INSERT INTO pool_activity (pool_id, hour, redemptions) VALUES ($1, $2, $3)"
        " ON CONFLICT (pool_id, hour) DO UPDATE"
        " SET redemptions = pool_activity.redemptions + excluded.redemptions",
        pool_id,
        hour_of(now),
        count,
    )


def delivery_of(row: Any) -> Delivery:
    return Delivery(
        id=row["id"],
        account_id=row["account_id"],
        pool_id=row["pool_id"],
        event=row["event"],
        url=row["url"],
        data=row["data"],
        state=DeliveryState(row["state"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_attempt_at=row["last_attempt_at"],
        last_status=row["last_status"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        delivered_at=row["delivered_at"],
        secret=row.get("secret"),
    )


class PostgresAlerts(PostgresBase):
    async def get_pool_alert(self, *, pool_id: int) -> PoolAlert | None:
        row = await self._fetchrow(
            "SELECT pool_id, threshold, webhook_url FROM pool_alerts WHERE pool_id = $1", pool_id
        )
        return None if row is None else PoolAlert(row["pool_id"], row["threshold"], row["webhook_url"])

    async def set_pool_alert(self, *, pool_id: int, threshold: int | None, webhook_url: str | None) -> None:
        async with self._conn() as conn:
            if threshold is None:
                await conn.execute("DELETE FROM pool_alerts WHERE pool_id = $1", pool_id)
                return
            await conn.execute(
                "INSERT INTO pool_alerts VALUES ($1, $2, $3) ON CONFLICT (pool_id) DO UPDATE"
                " SET threshold = excluded.threshold, webhook_url = excluded.webhook_url",
                pool_id,
                threshold,
                webhook_url,
            )

    async def webhook_secret(self, *, account_id: int, new_secret: str) -> str:
        async with self._tx() as conn:
            await conn.execute(
                "INSERT INTO webhook_secrets VALUES ($1, $2, $3) ON CONFLICT (account_id) DO NOTHING",
                account_id,
                new_secret,
                self.clock(),
            )
            secret = await conn.fetchval(
                "SELECT secret FROM webhook_secrets WHERE account_id = $1", account_id
            )
        return str(secret)

    async def replace_webhook_secret(self, *, account_id: int, secret: str) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "INSERT INTO webhook_secrets VALUES ($1, $2, $3) ON CONFLICT (account_id) DO UPDATE"
                " SET secret = excluded.secret, created_at = excluded.created_at",
                account_id,
                secret,
                self.clock(),
            )

    async def list_deliveries(self, *, pool_id: int, limit: int) -> list[Delivery]:
        rows = await self._fetch(
            f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE pool_id = $1 ORDER BY id DESC LIMIT $2",
            pool_id,
            limit,
        )
        return [delivery_of(row) for row in rows]

    async def lease_deliveries(self, *, now: datetime, lease_until: datetime, limit: int) -> list[Delivery]:
        # SKIP LOCKED: several workers and servers lease disjoint deliveries; moving next_attempt_at to the
        # lease's end hides a leased delivery until then, and brings it back if its sender died.
        rows = await self._fetch(
            "WITH due AS (SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= $1"
            " ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED),"
            " leased AS (UPDATE webhook_deliveries d SET attempts = d.attempts + 1, next_attempt_at = $2,"
            " last_attempt_at = $1 FROM due WHERE d.id = due.id RETURNING d.*)"
            " SELECT leased.*, s.secret FROM leased"
            " LEFT JOIN webhook_secrets s ON s.account_id = leased.account_id ORDER BY leased.id",
            now,
            lease_until,
            limit,
        )
        return [delivery_of(row) for row in rows]

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
        state = "delivered" if delivered else "pending" if retry_at is not None else "failed"
        async with self._conn() as conn:
            await conn.execute(
                "UPDATE webhook_deliveries SET state = $2, last_status = $3, last_error = $4,"
                " next_attempt_at = COALESCE($5, next_attempt_at), delivered_at = $6 WHERE id = $1",
                delivery_id,
                state,
                status,
                error,
                retry_at,
                now if delivered else None,
            )

    async def purge_deliveries(self, *, older_than: datetime) -> int:
        async with self._conn() as conn:
            status = await conn.execute(
                "DELETE FROM webhook_deliveries WHERE created_at < $1 AND state <> 'pending'", older_than
            )
        return int(status.split()[-1])

    async def pool_activity(self, *, pool_id: int, since: datetime) -> list[ActivityPoint]:
        rows = await self._fetch(
            "SELECT hour, claims, redemptions FROM pool_activity WHERE pool_id = $1 AND hour >= $2"
            " ORDER BY hour",
            pool_id,
            since,
        )
        return [ActivityPoint(r["hour"], r["claims"], r["redemptions"]) for r in rows]

    async def pool_inventory(self) -> list[InventoryRow]:
        rows = await self._fetch(
            "SELECT a.name, p.id, p.name, p.n_available, p.n_issued, p.n_redeemed"
            " FROM pools p JOIN accounts a ON a.id = p.account_id ORDER BY p.id"
        )
        return [InventoryRow(*row) for row in rows]
