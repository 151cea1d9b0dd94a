"""Device codes: the PersonaClick front-end fetch, one code per (pool, did) until redeemed (sqlite engine).

The lookup, the claim and the binding are one write on the writer thread (one transaction, and the database's
write lock across processes), so concurrent first calls of one device take one code.
"""

from __future__ import annotations

import sqlite3

from promopool.domain import Claimed, CodeState
from promopool.domain.errors import PoolExhausted
from promopool.storage.sqlite.base import CODE_COLUMNS, code_of, ts
from promopool.storage.sqlite.claims import SQLiteClaims, claimable_cursor


class SQLiteDevices(SQLiteClaims):
    async def device_claim(self, *, account_id: int, pool_id: int, did: str) -> Claimed:
        now = ts(self.clock())

        def op(conn: sqlite3.Connection) -> Claimed:
            cursor = claimable_cursor(conn, account_id, pool_id, now)
            row = conn.execute(
                f"SELECT {CODE_COLUMNS} FROM codes WHERE id ="
                " (SELECT code_id FROM device_codes WHERE pool_id = ? AND did = ?)",
                (pool_id, did),
            ).fetchone()
            if row is not None:
                bound = code_of(row)
                if bound.usage_count == 0 and bound.state != CodeState.REDEEMED:
                    return Claimed(bound, replayed=True)
            codes = self._take(conn, pool_id, cursor, 1, now)
            if not codes:
                raise PoolExhausted(pool_id)
            conn.execute(
                "INSERT INTO device_codes (pool_id, did, code_id, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (pool_id, did) DO UPDATE SET code_id = excluded.code_id,"
                " created_at = excluded.created_at",
                (pool_id, did, codes[0].id, now),
            )
            return Claimed(codes[0])

        return await self._write(op)
