"""Bulk removal: a pool's available codes, or many codes by value, counters adjusted (postgres engine).

Both take the pool's row first, as every transaction changing its codes does (docs/design.md, lock order).
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from promopool.storage.postgres.base import PostgresBase


async def _lock_pool(conn: asyncpg.Connection, account_id: int, pool_id: int) -> bool:
    found = await conn.fetchval(
        "SELECT id FROM pools WHERE id = $1 AND account_id = $2 FOR UPDATE", pool_id, account_id
    )
    return found is not None


class PostgresBulk(PostgresBase):
    async def purge_available(self, *, account_id: int, pool_id: int) -> int | None:
        async with self._tx() as conn:
            if not await _lock_pool(conn, account_id, pool_id):
                return None
            status = await conn.execute(
                "DELETE FROM codes WHERE pool_id = $1 AND state = 'available'", pool_id
            )
            deleted = int(status.split()[-1])
            await conn.execute(
                "UPDATE pools SET n_available = n_available - $2 WHERE id = $1", pool_id, deleted
            )
        return deleted

    async def delete_codes(self, *, account_id: int, pool_id: int, values: Sequence[str]) -> int | None:
        async with self._tx() as conn:
            if not await _lock_pool(conn, account_id, pool_id):
                return None
            rows = await conn.fetch(
                "WITH gone AS (DELETE FROM codes WHERE pool_id = $1 AND value = ANY($2::text[])"
                " RETURNING state) SELECT state, count(*) AS n FROM gone GROUP BY state",
                pool_id,
                list(values),
            )
            by_state = {row["state"]: int(row["n"]) for row in rows}
            await conn.execute(
                "UPDATE pools SET n_available = n_available - $2, n_issued = n_issued - $3,"
                " n_redeemed = n_redeemed - $4 WHERE id = $1",
                pool_id,
                by_state.get("available", 0),
                by_state.get("issued", 0),
                by_state.get("redeemed", 0),
            )
        return sum(by_state.values())
