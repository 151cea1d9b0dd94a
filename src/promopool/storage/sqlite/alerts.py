"""Low-stock alerts, webhook secrets and deliveries, pool activity (sqlite engine).

``record_claims`` and ``record_redemptions`` run inside the transactions of the claim and redemption paths:
the counters, the hourly activity and the low-stock event change together or not at all.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any

from promopool.domain.alerts import (
    LOW_STOCK_EVENT,
    ActivityPoint,
    Delivery,
    DeliveryState,
    InventoryRow,
    PoolAlert,
)
from promopool.storage.sqlite.base import SQLiteBase, ts

DELIVERY_COLUMNS = (
    "id, account_id, pool_id, event, url, data, state, attempts, next_attempt_at, last_attempt_at,"
    " last_status, last_error, created_at, delivered_at"
)

# The crossing rule, in the claim's transaction: available went from above the threshold (before the batch:
# available + claimed) to at or below it. Pools without a webhook URL get no delivery row.
LOW_STOCK_SQL = f"""
INSERT INTO webhook_deliveries (account_id, pool_id, event, url, data, next_attempt_at, created_at)
SELECT :account_id, a.pool_id, '{LOW_STOCK_EVENT}', a.webhook_url,
       json_object('pool_id', a.pool_id, 'pool_name', :pool_name, 'available', :available,
                   'threshold', a.threshold),
       :now, :now
FROM pool_alerts a
WHERE a.pool_id = :pool_id AND a.webhook_url IS NOT NULL
  AND :available <= a.threshold AND :available + :claimed > a.threshold
"""


def _hour(now: str) -> str:
    return now[:13] + ":00:00.000000Z"  # `now` is ts() text: fixed width


def _when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def record_claims(conn: sqlite3.Connection, *, pool_id: int, cursor: int, taken: int, now: str) -> int:
    """After a claim batch took ``taken`` codes and read up to ``cursor``: move the cursor and counters,
    count the hour's claims, enqueue a low-stock event on a crossing. Returns the new available count."""
    account_id, pool_name, available = conn.execute(
        "UPDATE pools SET next_seq = ?, n_available = n_available - ?, n_issued = n_issued + ?"
        " WHERE id = ? RETURNING account_id, name, n_available",
        (cursor, taken, taken, pool_id),
    ).fetchone()
    if taken:
        conn.execute(
            "INSERT INTO pool_activity (pool_id, hour, claims) VALUES (?, ?, ?)"
            " ON CONFLICT (pool_id, hour) DO UPDATE SET claims = claims + excluded.claims",
            (pool_id, _hour(now), taken),
        )
        conn.execute(
            LOW_STOCK_SQL,
            {
                "account_id": account_id,
                "pool_id": pool_id,
                "pool_name": pool_name,
                "available": available,
                "claimed": taken,
                "now": now,
            },
        )
    return int(available)


def record_redemptions(conn: sqlite3.Connection, *, pool_id: int, count: int, now: str) -> None:
    """For the redemption path, in its transaction: count ``count`` redemptions (negative: rollbacks) in
    the hour's activity of the pool."""
    conn.execute(
        "INSERT INTO pool_activity (pool_id, hour, redemptions) VALUES (?, ?, ?)"
        " ON CONFLICT (pool_id, hour) DO UPDATE SET redemptions = redemptions + excluded.redemptions",
        (pool_id, _hour(now), count),
    )


def delivery_of(row: Any, secret: str | None = None) -> Delivery:
    return Delivery(
        id=row[0],
        account_id=row[1],
        pool_id=row[2],
        event=row[3],
        url=row[4],
        data=json.loads(row[5]),
        state=DeliveryState(row[6]),
        attempts=row[7],
        next_attempt_at=_when(row[8]),
        last_attempt_at=_when(row[9]),
        last_status=row[10],
        last_error=row[11],
        created_at=datetime.fromisoformat(row[12]),
        delivered_at=_when(row[13]),
        secret=secret,
    )


class SQLiteAlerts(SQLiteBase):
    async def get_pool_alert(self, *, pool_id: int) -> PoolAlert | None:
        row = await self._read(
            lambda conn: conn.execute(
                "SELECT pool_id, threshold, webhook_url FROM pool_alerts WHERE pool_id = ?", (pool_id,)
            ).fetchone()
        )
        return None if row is None else PoolAlert(pool_id=row[0], threshold=row[1], webhook_url=row[2])

    async def set_pool_alert(self, *, pool_id: int, threshold: int | None, webhook_url: str | None) -> None:
        def op(conn: sqlite3.Connection) -> None:
            if threshold is None:
                conn.execute("DELETE FROM pool_alerts WHERE pool_id = ?", (pool_id,))
                return
            conn.execute(
                "INSERT INTO pool_alerts VALUES (?, ?, ?) ON CONFLICT (pool_id) DO UPDATE"
                " SET threshold = excluded.threshold, webhook_url = excluded.webhook_url",
                (pool_id, threshold, webhook_url),
            )

        await self._write(op)

    async def webhook_secret(self, *, account_id: int, new_secret: str) -> str:
        now = ts(self.clock())

        def op(conn: sqlite3.Connection) -> str:
            conn.execute(
                "INSERT INTO webhook_secrets VALUES (?, ?, ?) ON CONFLICT (account_id) DO NOTHING",
                (account_id, new_secret, now),
            )
            row = conn.execute(
                "SELECT secret FROM webhook_secrets WHERE account_id = ?", (account_id,)
            ).fetchone()
            return str(row[0])

        return await self._write(op)

    async def replace_webhook_secret(self, *, account_id: int, secret: str) -> None:
        now = ts(self.clock())
        await self._write(
            lambda conn: conn.execute(
                "INSERT INTO webhook_secrets VALUES (?, ?, ?) ON CONFLICT (account_id) DO UPDATE"
                " SET secret = excluded.secret, created_at = excluded.created_at",
                (account_id, secret, now),
            )
        )

    async def list_deliveries(self, *, pool_id: int, limit: int) -> list[Delivery]:
        sql = f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE pool_id = ? ORDER BY id DESC LIMIT ?"
        rows = await self._read(lambda conn: conn.execute(sql, (pool_id, limit)).fetchall())
        return [delivery_of(row) for row in rows]

    async def lease_deliveries(self, *, now: datetime, lease_until: datetime, limit: int) -> list[Delivery]:
        at, until = ts(now), ts(lease_until)
        due_sql = "SELECT 1 FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= ? LIMIT 1"
        # Asked of a reader first: the common answer is "nothing due", which should not queue a write.
        if await self._read(lambda conn: conn.execute(due_sql, (at,)).fetchone()) is None:
            return []

        def op(conn: sqlite3.Connection) -> list[Delivery]:
            rows = conn.execute(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = ?,"
                " last_attempt_at = ? WHERE id IN (SELECT id FROM webhook_deliveries"
                " WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?)"
                f" RETURNING {DELIVERY_COLUMNS}",
                (until, at, at, limit),
            ).fetchall()
            if not rows:
                return []
            accounts = sorted({row[1] for row in rows})
            marks = ",".join("?" * len(accounts))
            secrets = dict(
                conn.execute(
                    f"SELECT account_id, secret FROM webhook_secrets WHERE account_id IN ({marks})", accounts
                ).fetchall()
            )
            return sorted((delivery_of(row, secrets.get(row[1])) for row in rows), key=lambda d: d.id)

        return await self._write(op)

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
        await self._write(
            lambda conn: conn.execute(
                "UPDATE webhook_deliveries SET state = ?, last_status = ?, last_error = ?,"
                " next_attempt_at = COALESCE(?, next_attempt_at), delivered_at = ? WHERE id = ?",
                (
                    state,
                    status,
                    error,
                    None if retry_at is None else ts(retry_at),
                    ts(now) if delivered else None,
                    delivery_id,
                ),
            )
        )

    async def purge_deliveries(self, *, older_than: datetime) -> int:
        cutoff = ts(older_than)
        return await self._write(
            lambda conn: (
                conn.execute(
                    "DELETE FROM webhook_deliveries WHERE created_at < ? AND state <> 'pending'", (cutoff,)
                ).rowcount
            )
        )

    async def pool_activity(self, *, pool_id: int, since: datetime) -> list[ActivityPoint]:
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT hour, claims, redemptions FROM pool_activity WHERE pool_id = ? AND hour >= ?"
                " ORDER BY hour",
                (pool_id, ts(since)),
            ).fetchall()
        )
        return [ActivityPoint(datetime.fromisoformat(r[0]), r[1], r[2]) for r in rows]

    async def pool_inventory(self) -> list[InventoryRow]:
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT a.name, p.id, p.name, p.n_available, p.n_issued, p.n_redeemed"
                " FROM pools p JOIN accounts a ON a.id = p.account_id ORDER BY p.id"
            ).fetchall()
        )
        return [InventoryRow(*row) for row in rows]
