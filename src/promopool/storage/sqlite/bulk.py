"""Bulk removal: a pool's available codes, or many codes by value, counters adjusted (sqlite engine)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from promopool.storage.sqlite.base import SQLiteBase

CHUNK = 500  # values per `IN (…)`: well below SQLite's limit on host parameters


def _owned(conn: sqlite3.Connection, account_id: int, pool_id: int) -> bool:
    row = conn.execute("SELECT 1 FROM pools WHERE id = ? AND account_id = ?", (pool_id, account_id))
    return row.fetchone() is not None


class SQLiteBulk(SQLiteBase):
    async def purge_available(self, *, account_id: int, pool_id: int) -> int | None:
        def op(conn: sqlite3.Connection) -> int | None:
            if not _owned(conn, account_id, pool_id):
                return None
            deleted = conn.execute(
                "DELETE FROM codes WHERE pool_id = ? AND state = 'available'", (pool_id,)
            ).rowcount
            conn.execute("UPDATE pools SET n_available = n_available - ? WHERE id = ?", (deleted, pool_id))
            return deleted

        return await self._write(op)

    async def delete_codes(self, *, account_id: int, pool_id: int, values: Sequence[str]) -> int | None:
        def op(conn: sqlite3.Connection) -> int | None:
            if not _owned(conn, account_id, pool_id):
                return None
            by_state = {"available": 0, "issued": 0, "redeemed": 0}
            for start in range(0, len(values), CHUNK):
                chunk = values[start : start + CHUNK]
                marks = ",".join("?" * len(chunk))
                for (state,) in conn.execute(
                    f"DELETE FROM codes WHERE pool_id = ? AND value IN ({marks}) RETURNING state",
                    (pool_id, *chunk),
                ).fetchall():
                    by_state[state] += 1
            conn.execute(
                "UPDATE pools SET n_available = n_available - ?, n_issued = n_issued - ?,"
                " n_redeemed = n_redeemed - ? WHERE id = ?",
                (by_state["available"], by_state["issued"], by_state["redeemed"], pool_id),
            )
            return sum(by_state.values())

        return await self._write(op)
