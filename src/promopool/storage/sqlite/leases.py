"""Leases: a claim that reserves its code; confirm, release, and the sweep that ends run-out leases
(sqlite engine). A code given back gets a new seq at its pool's tail: the claim cursor never looks back."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from datetime import datetime, timedelta

from promopool.domain import Claimed, Lease, LeaseState
from promopool.domain.errors import LeaseNotFound, PoolExhausted
from promopool.domain.leases import replayable, settled
from promopool.storage.base import key_reused, lease_scope, replays_lease
from promopool.storage.sqlite.base import _dt, ts
from promopool.storage.sqlite.claims import SQLiteClaims, claimable_cursor
from promopool.storage.sqlite.lookup import qualified
from promopool.storage.sqlite.redemptions import _code

LEASE_COLUMNS = "id, code_id, state, expires_at, created_at, ended_at"
LEASE_SELECT = (
    f"SELECT {qualified(LEASE_COLUMNS, 'l')}"
    " FROM leases l JOIN codes c ON c.id = l.code_id JOIN pools p ON p.id = c.pool_id"
)
SWEEP_BATCH = 1000


def lease_of(row: sqlite3.Row) -> Lease:
    return Lease(
        id=row[0],
        code_id=row[1],
        state=LeaseState(row[2]),
        expires_at=datetime.fromisoformat(row[3]),
        created_at=datetime.fromisoformat(row[4]),
        ended_at=_dt(row[5]),
    )


def _lease(conn: sqlite3.Connection, account_id: int, lease_id: int) -> Lease | None:
    row = conn.execute(
        f"{LEASE_SELECT} WHERE l.id = ? AND p.account_id = ?", (lease_id, account_id)
    ).fetchone()
    return None if row is None else lease_of(row)


def _end(conn: sqlite3.Connection, lease_id: int, state: LeaseState, at: str) -> Lease | None:
    """Move an active lease that has not run out to ``state``; None when it is not such a lease."""
    row = conn.execute(
        "UPDATE leases SET state = ?, ended_at = ? WHERE id = ? AND state = 'active' AND expires_at > ?"
        f" RETURNING {LEASE_COLUMNS}",
        (state.value, at, lease_id, at),
    ).fetchone()
    return None if row is None else lease_of(row)


def requeue(conn: sqlite3.Connection, pool_id: int, code_ids: list[int]) -> int:
    """Make the pool's still-issued codes among ``code_ids`` available again at the pool's tail."""
    last_seq = conn.execute("SELECT last_seq FROM pools WHERE id = ?", (pool_id,)).fetchone()[0]
    back = 0
    for code_id in code_ids:
        moved = conn.execute(
            "UPDATE codes SET state = 'available', issued_at = NULL, seq = ?"
            " WHERE id = ? AND state = 'issued'",
            (last_seq + back + 1, code_id),
        )
        back += moved.rowcount
    if back:
        conn.execute(
            "UPDATE pools SET last_seq = last_seq + ?, n_issued = n_issued - ?, n_available = n_available + ?"
            " WHERE id = ?",
            (back, back, back, pool_id),
        )
    return back


class SQLiteLeases(SQLiteClaims):
    async def lease(
        self, *, account_id: int, pool_id: int, seconds: int, idempotency_key: str | None
    ) -> Claimed:
        now = self.clock()
        at, until = ts(now), ts(now + timedelta(seconds=seconds))

        def op(conn: sqlite3.Connection) -> Claimed:
            cursor = claimable_cursor(conn, account_id, pool_id, at)
            scope = lease_scope(pool_id)
            if idempotency_key is not None:
                found = conn.execute(
                    "SELECT scope, result_id FROM idempotency_keys WHERE account_id = ? AND key = ?",
                    (account_id, idempotency_key),
                ).fetchone()
                if found is not None:
                    if found[0] != scope:
                        raise key_reused(idempotency_key)
                    earlier = _lease(conn, account_id, found[1])
                    if earlier is None:
                        raise LeaseNotFound(found[1])
                    code = _code(conn, earlier.code_id)
                    if not replays_lease(scope, code.pool_id):
                        raise LeaseNotFound(found[1])
                    return Claimed(code, replayed=True, lease=replayable(earlier, now))
            taken = self._take(conn, pool_id, cursor, 1, at)
            if not taken:
                raise PoolExhausted(pool_id)
            lease = lease_of(
                conn.execute(
                    "INSERT INTO leases (code_id, expires_at, created_at) VALUES (?, ?, ?)"
                    f" RETURNING {LEASE_COLUMNS}",
                    (taken[0].id, until, at),
                ).fetchone()
            )
            if idempotency_key is not None:
                conn.execute(
                    "INSERT INTO idempotency_keys VALUES (?, ?, ?, ?, ?)",
                    (account_id, idempotency_key, scope, lease.id, at),
                )
            return Claimed(taken[0], lease=lease)

        return await self._write(op)

    async def confirm_lease(self, *, account_id: int, lease_id: int) -> Lease:
        now = self.clock()

        def op(conn: sqlite3.Connection) -> Lease:
            lease = _lease(conn, account_id, lease_id)
            if lease is None:
                raise LeaseNotFound(lease_id)
            confirmed = _end(conn, lease_id, LeaseState.CONFIRMED, ts(now))
            return confirmed or settled(lease, LeaseState.CONFIRMED, now)

        return await self._write(op)

    async def release_lease(self, *, account_id: int, lease_id: int) -> Lease:
        now = self.clock()

        def op(conn: sqlite3.Connection) -> Lease:
            lease = _lease(conn, account_id, lease_id)
            if lease is None:
                raise LeaseNotFound(lease_id)
            released = _end(conn, lease_id, LeaseState.RELEASED, ts(now))
            if released is None:
                return settled(lease, LeaseState.RELEASED, now)
            pool_id = conn.execute("SELECT pool_id FROM codes WHERE id = ?", (lease.code_id,)).fetchone()[0]
            requeue(conn, pool_id, [lease.code_id])
            return released

        return await self._write(op)

    async def get_lease(self, *, account_id: int, lease_id: int) -> Lease | None:
        return await self._read(lambda conn: _lease(conn, account_id, lease_id))

    async def expire_leases(self) -> int:
        at = ts(self.clock())
        due_sql = (
            "SELECT l.id, l.code_id, c.pool_id FROM leases l JOIN codes c ON c.id = l.code_id"
            " WHERE l.state = 'active' AND l.expires_at <= ? ORDER BY l.expires_at, l.id LIMIT ?"
        )
        # The sweep runs every second: it asks a reader first and takes the writer only when there is work.
        if not await self._read(lambda conn: conn.execute(due_sql, (at, 1)).fetchone()):
            return 0

        def op(conn: sqlite3.Connection) -> int:
            due = conn.execute(due_sql, (at, SWEEP_BATCH)).fetchall()
            by_pool: defaultdict[int, list[int]] = defaultdict(list)
            for lease_id, code_id, pool_id in due:
                conn.execute("UPDATE leases SET state = 'expired', ended_at = ? WHERE id = ?", (at, lease_id))
                by_pool[pool_id].append(code_id)
            for pool_id, code_ids in by_pool.items():
                requeue(conn, pool_id, code_ids)
            return len(due)

        return await self._write(op)
