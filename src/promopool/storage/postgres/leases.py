"""Leases: a claim that reserves its code; confirm, release, and the sweep that ends run-out leases (postgres
engine). A code given back gets a new seq at its pool's tail, so the claim cursor never looks behind itself.
Lock order as in redemptions.py: the pool's row first."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from promopool.domain import Claimed, Lease, LeaseState
from promopool.domain.errors import LeaseNotFound, PoolExhausted
from promopool.domain.leases import replayable, settled
from promopool.storage.base import key_reused, lease_scope, replays_lease
from promopool.storage.postgres.claims import PostgresClaims, lock_claimable
from promopool.storage.postgres.redemptions import _code, lock_pool

LEASE_COLUMNS = "l.id, l.code_id, l.state, l.expires_at, l.created_at, l.ended_at"
LEASE_SELECT = (
    f"SELECT {LEASE_COLUMNS}, c.pool_id"
    " FROM leases l JOIN codes c ON c.id = l.code_id JOIN pools p ON p.id = c.pool_id"
)
SWEEP_POOLS = 100

# Codes still issued go back at the pool's tail, each with its own new seq ($2 = last_seq).
REQUEUE_SQL = """
WITH back AS (
    UPDATE codes c SET state = 'available', issued_at = NULL, seq = $2 + v.n
    FROM unnest($1::bigint[]) WITH ORDINALITY AS v(id, n)
    WHERE c.id = v.id AND c.state = 'issued'
    RETURNING c.seq
)
SELECT count(*), max(seq) FROM back
"""


def lease_of(row: asyncpg.Record) -> Lease:
    return Lease(
        id=row["id"],
        code_id=row["code_id"],
        state=LeaseState(row["state"]),
        expires_at=row["expires_at"],
        created_at=row["created_at"],
        ended_at=row["ended_at"],
    )


async def _lease(conn: asyncpg.Connection, account_id: int, lease_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"{LEASE_SELECT} WHERE l.id = $1 AND p.account_id = $2", lease_id, account_id)


async def requeue(conn: asyncpg.Connection, pool_id: int, last_seq: int, code_ids: list[int]) -> int:
    """Make the pool's still-issued codes among ``code_ids`` available again at its tail (pool row held)."""
    back, top = await conn.fetchrow(REQUEUE_SQL, code_ids, last_seq)
    if back:
        await conn.execute(
            "UPDATE pools SET last_seq = $2, n_issued = n_issued - $3, n_available = n_available + $3"
            " WHERE id = $1",
            pool_id,
            top,
            back,
        )
    return int(back)


class PostgresLeases(PostgresClaims):
    async def lease(
        self, *, account_id: int, pool_id: int, seconds: int, idempotency_key: str | None
    ) -> Claimed:
        now = self.clock()
        scope = lease_scope(pool_id)
        async with self._tx() as conn:
            cursor = await lock_claimable(conn, account_id, pool_id, now)
            if idempotency_key is not None:
                # A twin on this pool waited for our row lock, so it sees our record; one on another pool
                # meets it at the insert below.
                found = await conn.fetchrow(
                    "SELECT scope, result_id FROM idempotency_keys WHERE account_id = $1 AND key = $2",
                    account_id,
                    idempotency_key,
                )
                if found is not None:
                    if found["scope"] != scope:
                        raise key_reused(idempotency_key)
                    earlier = await _lease(conn, account_id, found["result_id"])
                    if earlier is None or not replays_lease(scope, earlier["pool_id"]):
                        raise LeaseNotFound(found["result_id"])
                    lease = replayable(lease_of(earlier), now)
                    return Claimed(await _code(conn, lease.code_id), replayed=True, lease=lease)
            taken = await self._take(conn, pool_id, cursor, 1, now)
            if not taken:
                raise PoolExhausted(pool_id)
            row = await conn.fetchrow(
                "INSERT INTO leases (code_id, expires_at, created_at) VALUES ($1, $2, $3)"
                " RETURNING id, code_id, state, expires_at, created_at, ended_at",
                taken[0].id,
                now + timedelta(seconds=seconds),
                now,
            )
            if idempotency_key is not None:
                recorded = await conn.fetchval(
                    "INSERT INTO idempotency_keys (account_id, key, scope, result_id, created_at)"
                    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true",
                    account_id,
                    idempotency_key,
                    scope,
                    row["id"],
                    now,
                )
                if not recorded:  # raising undoes the claim
                    raise key_reused(idempotency_key)
        return Claimed(taken[0], lease=lease_of(row))

    async def confirm_lease(self, *, account_id: int, lease_id: int) -> Lease:
        now = self.clock()
        async with self._tx() as conn:
            found = await _lease(conn, account_id, lease_id)
            if found is None:
                raise LeaseNotFound(lease_id)
            # Only the lease changes, not the code: no pool row needed. A sweep ending it concurrently
            # updates the same row, so exactly one of the two conditional updates wins.
            row = await conn.fetchrow(
                "UPDATE leases SET state = 'confirmed', ended_at = $2"
                " WHERE id = $1 AND state = 'active' AND expires_at > $2"
                " RETURNING id, code_id, state, expires_at, created_at, ended_at",
                lease_id,
                now,
            )
            if row is None:
                return settled(lease_of(await _lease(conn, account_id, lease_id)), LeaseState.CONFIRMED, now)
        return lease_of(row)

    async def release_lease(self, *, account_id: int, lease_id: int) -> Lease:
        now = self.clock()
        async with self._tx() as conn:
            found = await _lease(conn, account_id, lease_id)
            if found is None:
                raise LeaseNotFound(lease_id)
            last_seq = await lock_pool(conn, found["pool_id"])
            row = await conn.fetchrow(
                "UPDATE leases SET state = 'released', ended_at = $2"
                " WHERE id = $1 AND state = 'active' AND expires_at > $2"
                " RETURNING id, code_id, state, expires_at, created_at, ended_at",
                lease_id,
                now,
            )
            if row is None:
                return settled(lease_of(await _lease(conn, account_id, lease_id)), LeaseState.RELEASED, now)
            await requeue(conn, found["pool_id"], last_seq, [row["code_id"]])
        return lease_of(row)

    async def get_lease(self, *, account_id: int, lease_id: int) -> Lease | None:
        async with self._conn() as conn:
            row = await _lease(conn, account_id, lease_id)
        return None if row is None else lease_of(row)

    async def expire_leases(self) -> int:
        now = self.clock()
        pools = await self._fetch(
            "SELECT DISTINCT c.pool_id FROM leases l JOIN codes c ON c.id = l.code_id"
            " WHERE l.state = 'active' AND l.expires_at <= $1 LIMIT $2",
            now,
            SWEEP_POOLS,
        )
        ended = 0
        for pool in pools:
            async with self._tx() as conn:  # one pool per transaction: its row is held briefly
                last_seq = await lock_pool(conn, pool["pool_id"])
                rows = await conn.fetch(
                    "UPDATE leases l SET state = 'expired', ended_at = $2 FROM codes c"
                    " WHERE c.id = l.code_id AND c.pool_id = $1 AND l.state = 'active' AND l.expires_at <= $2"
                    " RETURNING l.code_id",
                    pool["pool_id"],
                    now,
                )
                await requeue(conn, pool["pool_id"], last_seq, [row["code_id"] for row in rows])
                ended += len(rows)
        return ended
