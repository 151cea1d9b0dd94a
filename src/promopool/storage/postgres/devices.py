"""Device codes: the PersonaClick front-end fetch, one code per (pool, did) until redeemed (postgres engine).

The binding is written in the claim's own transaction, under the pool's row lock (the lock every claim batch
takes first): two concurrent first calls of one device take turns, and the second, reading after the first
committed (READ COMMITTED: each statement sees the latest commits), finds the binding and replays its code.
"""

from __future__ import annotations

from promopool.domain import Claimed, CodeState
from promopool.domain.errors import PoolExhausted
from promopool.storage.postgres.base import CODE_COLUMNS, code_of
from promopool.storage.postgres.claims import PostgresClaims, lock_claimable


class PostgresDevices(PostgresClaims):
    async def device_claim(self, *, account_id: int, pool_id: int, did: str) -> Claimed:
        now = self.clock()
        async with self._tx() as conn:
            cursor = await lock_claimable(conn, account_id, pool_id, now)
            row = await conn.fetchrow(
                f"SELECT {CODE_COLUMNS} FROM codes WHERE id ="
                " (SELECT code_id FROM device_codes WHERE pool_id = $1 AND did = $2)",
                pool_id,
                did,
            )
            if row is not None:
                bound = code_of(row)
                if bound.usage_count == 0 and bound.state != CodeState.REDEEMED:
                    return Claimed(bound, replayed=True)
            codes = await self._take(conn, pool_id, cursor, 1, now)
            if not codes:
                raise PoolExhausted(pool_id)
            await conn.execute(
                "INSERT INTO device_codes (pool_id, did, code_id, created_at) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (pool_id, did) DO UPDATE SET code_id = excluded.code_id,"
                " created_at = excluded.created_at",
                pool_id,
                did,
                codes[0].id,
                now,
            )
        return Claimed(codes[0])
