"""Claims: read forward from the pool's cursor, group-committed (postgres engine)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

import asyncpg

from promopool.domain import Claimed, Code
from promopool.domain.alerts import hour_of
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
from promopool.storage.postgres.base import (
    CODE_COLUMNS,
    PostgresBase,
    code_of,
)

# The claim algorithm lives in the database (migration 0008_claim_functions.sql): a batch without
# Idempotency-Keys is this one statement, its own transaction, instead of five round trips.
CLAIM_SQL = f"SELECT seq, {CODE_COLUMNS} FROM claim_codes($1, $2, $3, $4, $5)"
TAKE_SQL = f"SELECT seq, {CODE_COLUMNS} FROM take_codes($1, $2, $3, $4, $5)"

# The SQLSTATEs with which those functions refuse a pool.
_REFUSALS: dict[str, type[PoolNotFound | PoolExpired]] = {"PP404": PoolNotFound, "PP410": PoolExpired}


@contextmanager
def _pool_refusals(pool_id: int) -> Iterator[None]:
    try:
        yield
    except asyncpg.PostgresError as exc:
        refusal = _REFUSALS.get(exc.sqlstate)
        if refusal is None:
            raise
        raise refusal(pool_id) from None


async def lock_claimable(conn: asyncpg.Connection, account_id: int, pool_id: int, now: datetime) -> int:
    """Lock the account's pool row for a claim and return its cursor; PoolNotFound, PoolExpired."""
    with _pool_refusals(pool_id):
        return int(await conn.fetchval("SELECT lock_claimable_pool($1, $2, $3)", account_id, pool_id, now))


def _in_order(rows: Sequence[asyncpg.Record]) -> list[Code]:
    return [code_of(row) for row in sorted(rows, key=lambda row: row["seq"])]


class PostgresClaims(PostgresBase):
    async def claim_batch(
        self, account_id: int, pool_id: int, keys: Sequence[str | None]
    ) -> list[ClaimResult]:
        now = self.clock()
        scope = claim_scope(pool_id)
        plan = ClaimPlan(keys)
        if not plan.keyed():
            async with self._conn() as conn:
                with _pool_refusals(pool_id):
                    rows = await conn.fetch(CLAIM_SQL, account_id, pool_id, plan.needed(), now, hour_of(now))
            plan.assign(_in_order(rows), pool_id)
            return plan.results()
        async with self._tx() as conn:
            cursor = await lock_claimable(conn, account_id, pool_id, now)
            await self._reserve_keys(conn, plan, account_id, scope, now)
            codes = await self._take(conn, pool_id, cursor, plan.needed(), now)
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
        code = None if row is None else code_of(row)
        if code is None or not replays_claim(scope, code):
            return CodeNotFound("the code claimed with this Idempotency-Key has since been deleted", key=key)
        return Claimed(code, replayed=True)

    async def _take(
        self, conn: asyncpg.Connection, pool_id: int, cursor: int, wanted: int, now: datetime
    ) -> list[Code]:
        """Up to ``wanted`` codes from the cursor on, in queue order, counted; the pool row must be held."""
        if wanted == 0:  # every claim of the batch was a replay
            return []
        return _in_order(await conn.fetch(TAKE_SQL, pool_id, cursor, wanted, now, hour_of(now)))

    async def purge_idempotency_keys(self, *, older_than: datetime) -> int:
        async with self._conn() as conn:
            status = await conn.execute("DELETE FROM idempotency_keys WHERE created_at < $1", older_than)
        return int(status.split()[-1])
