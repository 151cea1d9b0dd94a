"""Codes: bulk insert, listing, lookup, deletion (sqlite engine)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from promopool.domain import Code, CodeState
from promopool.domain.errors import (
    PoolNotFound,
)
from promopool.domain.normalization import Normalization, new_values
from promopool.storage.sqlite.base import (
    CODE_COLUMNS,
    SQLiteBase,
    code_of,
    ts,
)
from promopool.storage.sqlite.lookup import stored_alike


def insert_values(conn: sqlite3.Connection, pool_id: int, values: Sequence[str], now: str) -> int:
    """Insert ``values`` into the pool as available codes numbered in their order, skipping any the pool
    already holds; return how many were inserted. Runs inside the caller's write."""
    row = conn.execute(
        "SELECT last_seq, case_insensitive, ignore_separators FROM pools WHERE id = ?", (pool_id,)
    ).fetchone()
    if row is None:
        raise PoolNotFound(pool_id)
    base = row[0] + 1
    normalization = Normalization(bool(row[1]), bool(row[2]))
    if normalization.folds:  # a value equal to a stored code under the pool's settings is a duplicate
        fresh = new_values(values, stored_alike(conn, pool_id, values), normalization)
    else:
        fresh = list(enumerate(values))
    before = conn.total_changes
    # Rows go in value order, which keeps the (pool_id, value) index's inserts local; their seq keeps the
    # order given (the sort is stable, so of two equal values the first still wins). OR IGNORE skips values
    # the pool already holds; their seq numbers stay unused, which costs a claim nothing (it seeks along the
    # index, it does not count through numbers).
    numbered = sorted(((base + i, value) for i, value in fresh), key=itemgetter(1))
    conn.executemany(
        "INSERT OR IGNORE INTO codes (pool_id, seq, value, created_at) VALUES (?, ?, ?, ?)",
        ((pool_id, seq, value, now) for seq, value in numbered),
    )
    inserted = conn.total_changes - before
    conn.execute(
        "UPDATE pools SET last_seq = last_seq + ?, n_available = n_available + ? WHERE id = ?",
        (len(values), inserted, pool_id),
    )
    return inserted


class SQLiteCodes(SQLiteBase):
    async def insert_codes(
        self, *, pool_id: int, values: Sequence[str], expect_duplicates: bool = False
    ) -> int:
        # INSERT OR IGNORE costs SQLite nothing over a plain INSERT: the hint is of no use here.
        now = ts(self.clock())
        return await self._write(lambda conn: insert_values(conn, pool_id, values, now))

    async def list_codes(
        self, *, pool_id: int, state: CodeState | None, after: str | None, limit: int
    ) -> list[Code]:
        where = ["pool_id = ?"]
        params: list[Any] = [pool_id]
        if state is not None:
            where.append("state = ?")
            params.append(state.value)
        if after is not None:
            where.append("value > ?")
            params.append(after)
        sql = f"SELECT {CODE_COLUMNS} FROM codes WHERE {' AND '.join(where)} ORDER BY value LIMIT ?"
        params.append(limit)
        rows = await self._read(lambda conn: conn.execute(sql, params).fetchall())
        return [code_of(row) for row in rows]

    async def get_code(self, *, pool_id: int, value: str) -> Code | None:
        sql = f"SELECT {CODE_COLUMNS} FROM codes WHERE pool_id = ? AND value = ?"
        row = await self._read(lambda conn: conn.execute(sql, (pool_id, value)).fetchone())
        return None if row is None else code_of(row)

    async def delete_code(self, *, pool_id: int, value: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "DELETE FROM codes WHERE pool_id = ? AND value = ? RETURNING state", (pool_id, value)
            ).fetchone()
            if row is None:
                return False
            column = {"available": "n_available", "issued": "n_issued", "redeemed": "n_redeemed"}[row[0]]
            conn.execute(f"UPDATE pools SET {column} = {column} - 1 WHERE id = ?", (pool_id,))
            return True

        return await self._write(op)
