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
from promopool.domain.export import ExportRow, holder_keys
from promopool.domain.normalization import Normalization, new_values
from promopool.storage.sqlite.base import (
    CODE_COLUMNS,
    SQLiteBase,
    code_of,
    ts,
)
from promopool.storage.sqlite.lookup import stored_alike
from promopool.storage.sqlite.redemptions import _profile_id


def insert_values(
    conn: sqlite3.Connection,
    pool_id: int,
    values: Sequence[str],
    now: str,
    states: Sequence[ExportRow] | None = None,
) -> int:
    """Insert ``values`` into the pool as available codes numbered in their order, skipping any the pool
    already holds, then give them the ``states`` their rows carry, if given; return how many were
    inserted. Runs inside the caller's write."""
    row = conn.execute(
        "SELECT last_seq, case_insensitive, ignore_separators, account_id FROM pools WHERE id = ?", (pool_id,)
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
    if states is not None:
        carry_states(conn, pool_id, row[3], base, states, now)
    return inserted


def carry_states(
    conn: sqlite3.Connection,
    pool_id: int,
    account_id: int,
    first_seq: int,
    rows: Sequence[ExportRow],
    now: str,
) -> None:
    """Give the codes just inserted the state, issued_at, uses and holder their rows carry, and move the
    pool's counters with them. The code of ``rows[i]`` has seq ``first_seq + i``; a row skipped as a
    duplicate has no code there, and changes nothing."""
    holders = {key: _profile_id(conn, account_id, key, create_at=now) for key in holder_keys(rows)}
    moved = {CodeState.AVAILABLE: 0, CodeState.ISSUED: 0, CodeState.REDEEMED: 0}
    for i, carried in enumerate(rows):
        if carried.state is CodeState.AVAILABLE and carried.profile is None:
            continue  # as inserted
        changed = conn.execute(
            "UPDATE codes SET state = ?, issued_at = ?, usage_count = ?, profile_id = ?"
            " WHERE pool_id = ? AND seq = ?",
            (
                carried.state.value,
                None if carried.issued_at is None else ts(carried.issued_at),
                carried.usage_count,
                None if carried.profile is None else holders[carried.profile],
                pool_id,
                first_seq + i,
            ),
        ).rowcount
        moved[carried.state] += changed
    issued, redeemed = moved[CodeState.ISSUED], moved[CodeState.REDEEMED]
    conn.execute(
        "UPDATE pools SET n_available = n_available - ?, n_issued = n_issued + ?, n_redeemed = n_redeemed + ?"
        " WHERE id = ?",
        (issued + redeemed, issued, redeemed, pool_id),
    )


class SQLiteCodes(SQLiteBase):
    async def insert_codes(
        self,
        *,
        pool_id: int,
        values: Sequence[str],
        expect_duplicates: bool = False,
        states: Sequence[ExportRow] | None = None,
    ) -> int:
        # INSERT OR IGNORE costs SQLite nothing over a plain INSERT: the hint is of no use here.
        now = ts(self.clock())
        return await self._write(lambda conn: insert_values(conn, pool_id, values, now, states))

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
