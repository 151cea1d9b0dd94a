"""Claims: read forward from the pool's cursor, group-committed (sqlite engine)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from promopool.domain import Claimed, Code
from promopool.domain.errors import (
    CodeNotFound,
    PoolExpired,
    PoolNotFound,
)
from promopool.storage.base import (
    ClaimPlan,
    ClaimResult,
    claim_scope,
    key_reused,
    replays_claim,
)
from promopool.storage.sqlite.alerts import record_claims
from promopool.storage.sqlite.base import (
    CODE_COLUMNS,
    SQLiteBase,
    code_of,
    ts,
)


def claimable_cursor(conn: sqlite3.Connection, account_id: int, pool_id: int, now: str) -> int:
    """The cursor of the account's pool, for a claim in this write; PoolNotFound, PoolExpired. (The writer
    holds the database's write lock, as lock_claimable holds the pool row on PostgreSQL.)"""
    pool = conn.execute(
        "SELECT next_seq, expires_at FROM pools WHERE id = ? AND account_id = ?", (pool_id, account_id)
    ).fetchone()
    if pool is None:
        raise PoolNotFound(pool_id)
    if pool[1] is not None and pool[1] <= now:
        raise PoolExpired(pool_id)
    return int(pool[0])


class SQLiteClaims(SQLiteBase):
    async def claim_batch(
        self, account_id: int, pool_id: int, keys: Sequence[str | None]
    ) -> list[ClaimResult]:
        return await self._write(lambda conn: self._claim_batch(conn, account_id, pool_id, keys))

    def _claim_batch(
        self, conn: sqlite3.Connection, account_id: int, pool_id: int, keys: Sequence[str | None]
    ) -> list[ClaimResult]:
        now = ts(self.clock())
        cursor = claimable_cursor(conn, account_id, pool_id, now)
        scope = claim_scope(pool_id)
        plan = ClaimPlan(keys)
        for key in plan.keyed():
            found = conn.execute(
                "SELECT scope, result_id FROM idempotency_keys WHERE account_id = ? AND key = ?",
                (account_id, key),
            ).fetchone()
            if found is not None:
                plan.replay(key, self._replay(conn, scope, found[0], found[1], key))
        codes = self._take(conn, pool_id, cursor, plan.needed(), now)
        for key, code in plan.assign(codes, pool_id):
            conn.execute(
                "INSERT INTO idempotency_keys VALUES (?, ?, ?, ?, ?)", (account_id, key, scope, code.id, now)
            )
        return plan.results()

    def _take(self, conn: sqlite3.Connection, pool_id: int, cursor: int, wanted: int, now: str) -> list[Code]:
        """Issue up to ``wanted`` codes read forward from the cursor; move the cursor past all rows read
        (see take_codes in migrations/postgres/0008_claim_functions.sql: the same algorithm)."""
        taken: list[tuple[int, Code]] = []
        start = cursor
        while len(taken) < wanted:
            ahead = conn.execute(
                "SELECT id, seq, state, expires_at FROM codes WHERE pool_id = ? AND seq >= ?"
                " ORDER BY seq LIMIT ?",
                (pool_id, cursor, wanted - len(taken)),
            ).fetchall()
            if not ahead:  # nothing ahead of the cursor: the pool is drained
                break
            ids = [row[0] for row in ahead if row[2] == "available" and (row[3] is None or row[3] > now)]
            if ids:
                marks = ",".join("?" * len(ids))
                rows = conn.execute(
                    f"UPDATE codes SET state = 'issued', issued_at = ? WHERE id IN ({marks})"
                    f" RETURNING seq, {CODE_COLUMNS}",
                    (now, *ids),
                ).fetchall()
                taken += [(row[0], code_of(row[1:])) for row in rows]
            cursor = ahead[-1][1] + 1
        if cursor != start:
            # Counters, the hour's activity and a low-stock event if this batch crosses the threshold.
            record_claims(conn, pool_id=pool_id, cursor=cursor, taken=len(taken), now=now)
        return [code for _, code in sorted(taken, key=lambda pair: pair[0])]

    def _replay(
        self, conn: sqlite3.Connection, scope: str, used_scope: str, code_id: int | None, key: str
    ) -> ClaimResult:
        if used_scope != scope:
            return key_reused(key)
        row = conn.execute(f"SELECT {CODE_COLUMNS} FROM codes WHERE id = ?", (code_id,)).fetchone()
        code = None if row is None else code_of(row)
        if code is None or not replays_claim(scope, code):
            return CodeNotFound("the code claimed with this Idempotency-Key has since been deleted", key=key)
        return Claimed(code, replayed=True)

    async def purge_idempotency_keys(self, *, older_than: datetime) -> int:
        cutoff = ts(older_than)

        def op(conn: sqlite3.Connection) -> int:
            return conn.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (cutoff,)).rowcount

        return await self._write(op)
