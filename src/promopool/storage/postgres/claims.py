"""Claims: read forward from the pool's cursor, group-committed (postgres engine)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

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
)
from promopool.storage.postgres.alerts import record_claims
from promopool.storage.postgres.base import (
    CODE_COLUMNS,
    PostgresBase,
    code_of,
)

# Claims read forward from the pool's cursor along (pool_id, seq): rows behind the cursor, and the dead
# index entries their updates leave, are never visited again, so the cost does not grow as the pool drains.
# `ahead` deliberately filters on nothing but the index columns: with a state filter in it, the planner's
# guess for that filter (before ANALYZE has run on freshly imported codes) can make it scan and sort the
# whole pool instead. The state is checked in the UPDATE, on the latest row version, so a code changed
# concurrently by another path (attach, delete) is skipped, never handed out twice. The cursor moves past
# every row scanned (`scanned_to`), taken or not.
TAKE_SQL = f"""
WITH ahead AS (
    SELECT id, seq FROM codes WHERE pool_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3
), taken AS (
    UPDATE codes SET state = 'issued', issued_at = $4
    FROM ahead
    WHERE codes.id = ahead.id AND codes.state = 'available'
      AND (codes.expires_at IS NULL OR codes.expires_at > $4)
    RETURNING codes.seq, {", ".join("codes." + c.strip() for c in CODE_COLUMNS.split(","))}
)
SELECT scanned.scanned_to, taken.*
FROM (SELECT max(seq) AS scanned_to FROM ahead) AS scanned LEFT JOIN taken ON true
"""


class PostgresClaims(PostgresBase):
    async def claim_batch(
        self, account_id: int, pool_id: int, keys: Sequence[str | None]
    ) -> list[ClaimResult]:
        now = self.clock()
        scope = claim_scope(pool_id)
        plan = ClaimPlan(keys)
        async with self._tx() as conn:
            # The pool row lock orders claim batches of one pool across processes and servers; the
            # cursor read under it is therefore the latest.
            pool = await conn.fetchrow(
                "SELECT next_seq, expires_at FROM pools WHERE id = $1 AND account_id = $2 FOR UPDATE",
                pool_id,
                account_id,
            )
            if pool is None:
                raise PoolNotFound(pool_id)
            if pool["expires_at"] is not None and pool["expires_at"] <= now:
                raise PoolExpired(pool_id)
            if plan.keyed():
                await self._reserve_keys(conn, plan, account_id, scope, now)
            codes = await self._take(conn, pool_id, pool["next_seq"], plan.needed(), now)
            recorded = plan.assign(codes, pool_id)
            if recorded:
                await conn.execute(
                    "UPDATE idempotency_keys k SET result_id = v.id"
                    " FROM unnest($2::text[], $3::bigint[]) AS v(key, id)"
                    " WHERE k.account_id = $1 AND k.key = v.key",
                    account_id,
                    [key for key, _ in recorded],
                    [code.id for _, code in recorded],
                )
            if unserved := plan.unserved_keys():
                await conn.execute(
                    "DELETE FROM idempotency_keys WHERE account_id = $1 AND key = ANY($2::text[])",
                    account_id,
                    unserved,
                )
        return plan.results()

    async def _reserve_keys(
        self, conn: asyncpg.Connection, plan: ClaimPlan, account_id: int, scope: str, now: datetime
    ) -> None:
        """Replay keys seen before; record the new ones now, so a concurrent twin waits for us."""
        rows = await conn.fetch(
            "SELECT key, scope, result_id FROM idempotency_keys WHERE account_id = $1 AND key = ANY($2)",
            account_id,
            plan.keyed(),
        )
        for row in rows:
            plan.replay(
                row["key"], await self._replay(conn, scope, row["scope"], row["result_id"], row["key"])
            )
        new = [key for key in plan.keyed() if not plan.decided(key)]
        if not new:
            return
        inserted = {
            row[0]
            for row in await conn.fetch(
                "INSERT INTO idempotency_keys (account_id, key, scope, created_at)"
                " SELECT $1, key, $3, $4 FROM unnest($2::text[]) AS key ON CONFLICT DO NOTHING RETURNING key",
                account_id,
                new,
                scope,
                now,
            )
        }
        for key in new:
            if key not in inserted:  # taken meanwhile by a claim on another pool
                plan.replay(key, key_reused(key))

    async def _replay(
        self, conn: asyncpg.Connection, scope: str, used_scope: str, code_id: int | None, key: str
    ) -> ClaimResult:
        if used_scope != scope:
            return key_reused(key)
        row = await conn.fetchrow(f"SELECT {CODE_COLUMNS} FROM codes WHERE id = $1", code_id)
        if row is None:
            return CodeNotFound("the code claimed with this Idempotency-Key has since been deleted", key=key)
        return Claimed(code_of(row), replayed=True)

    async def _take(
        self, conn: asyncpg.Connection, pool_id: int, cursor: int, wanted: int, now: datetime
    ) -> list[Code]:
        taken: list[asyncpg.Record] = []
        start = cursor
        while len(taken) < wanted:
            rows = await conn.fetch(TAKE_SQL, pool_id, cursor, wanted - len(taken), now)
            scanned_to = rows[0]["scanned_to"]
            if scanned_to is None:  # nothing ahead of the cursor: the pool is drained
                break
            taken.extend(row for row in rows if row["id"] is not None)
            cursor = scanned_to + 1
        if cursor != start:
            # Counters, the hour's activity and a low-stock event if this batch crosses the threshold.
            await record_claims(conn, pool_id=pool_id, cursor=cursor, taken=len(taken), now=now)
        taken.sort(key=lambda row: row["seq"])
        return [code_of(row) for row in taken]

    async def purge_idempotency_keys(self, *, older_than: datetime) -> int:
        async with self._conn() as conn:
            status = await conn.execute("DELETE FROM idempotency_keys WHERE created_at < $1", older_than)
        return int(status.split()[-1])
