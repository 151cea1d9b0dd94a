"""Redemptions: validate's read, redeem and rollback (postgres engine).

Every transaction that changes a code's state (claims, redeems, rollbacks, lease releases and expiry) takes
its pool's row first; then the Idempotency-Key record, the code, the profile's use count. A claim batch holds
its pool's row while it updates codes: a redeem that locked a code first and the pool second could wait on
such a batch while the batch waits on it. A redeem creates its profile before it takes the pool's row (a
twin creating the same profile waits for our commit; no one holding a pool's row ever waits for a profile).
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from promopool.domain import Code, CodeState, Redeemed, Redemption
from promopool.domain.errors import AlreadyRolledBack, PoolNotFound, RedemptionNotFound
from promopool.domain.redemptions import (
    DEFAULT_PROFILE_DATABASE,
    CodeUse,
    NewRedemption,
    Refusal,
    refusal_after,
    refused,
)
from promopool.storage.base import key_reused, redeem_scope, replays_redemption, rollback_scope
from promopool.storage.ops.alerts import record_redemptions
from promopool.storage.postgres.base import CODE_COLUMNS, PostgresBase, code_of
from promopool.storage.postgres.driver import run
from promopool.storage.postgres.lookup import find_code, qualified

REDEMPTION_SELECT = (
    "SELECT r.id, r.code_id, c.pool_id, c.value AS code, r.created_at, r.profile_id,"
    " pr.external_id AS profile, r.order_ref, r.amount, r.metadata, r.rolled_back_at"
    " FROM redemptions r JOIN codes c ON c.id = r.code_id JOIN pools p ON p.id = c.pool_id"
    " LEFT JOIN profiles pr ON pr.id = r.profile_id"
)

# One use, if the rules allow it (domain.redemptions.refusal lists the same rules). The WHERE clause is
# evaluated on the row's latest version, under its lock: the check and the count are one step.
REDEEM_SQL = f"""
UPDATE codes c SET usage_count = c.usage_count + 1, state = 'redeemed'
FROM pools p
WHERE c.id = $1 AND p.id = c.pool_id
  AND c.usage_count < p.max_uses
  AND (c.expires_at IS NULL OR c.expires_at > $2)
  AND (p.expires_at IS NULL OR p.expires_at > $2)
  AND NOT (p.holder_only AND c.profile_id IS NOT NULL AND c.profile_id IS DISTINCT FROM $3::bigint)
RETURNING {qualified(CODE_COLUMNS, "c")}
"""

# One more use by the profile, if below the pool's per-profile limit (the upsert re-checks the latest row).
PROFILE_USE_SQL = """
INSERT INTO profile_uses AS u (pool_id, profile_id, uses) VALUES ($1, $2, 1)
ON CONFLICT (pool_id, profile_id) DO UPDATE SET uses = u.uses + 1
WHERE u.uses < coalesce((SELECT per_profile_limit FROM pools WHERE id = $1), u.uses + 1)
RETURNING uses
"""

# The use given back. A code left with no use is issued again, or, if it was never handed out, claimable
# again at the pool's tail ($2 = last_seq + 1).
GIVE_BACK_SQL = f"""
UPDATE codes SET usage_count = usage_count - 1,
    state = CASE WHEN usage_count > 1 THEN 'redeemed'
                 WHEN issued_at IS NOT NULL THEN 'issued'
                 ELSE 'available' END,
    seq = CASE WHEN usage_count = 1 AND issued_at IS NULL THEN $2 ELSE seq END
WHERE id = $1 AND usage_count > 0
RETURNING {CODE_COLUMNS}
"""

PROFILE_SQL = (
    "SELECT pr.id FROM profiles pr JOIN profile_databases d ON d.id = pr.database_id"
    " WHERE d.account_id = $1 AND d.name = $2 AND pr.external_id = $3"
)


def redemption_of(row: asyncpg.Record) -> Redemption:
    return Redemption(**dict(row.items()))


async def _redemption(conn: asyncpg.Connection, redemption_id: int, account_id: int) -> Redemption | None:
    row = await conn.fetchrow(
        f"{REDEMPTION_SELECT} WHERE r.id = $1 AND p.account_id = $2", redemption_id, account_id
    )
    return None if row is None else redemption_of(row)


async def _code(conn: asyncpg.Connection, code_id: int) -> Code:
    return code_of(await conn.fetchrow(f"SELECT {CODE_COLUMNS} FROM codes WHERE id = $1", code_id))


async def _profile_id(
    conn: asyncpg.Connection, account_id: int, profile: str, *, create_at: datetime | None = None
) -> int | None:
    """The profile named ``profile`` in the account's default profile database; created (at ``create_at``)
    when given a time and missing. A concurrent creator of the same profile makes the insert wait for its
    commit and then do nothing; the second read sees its row."""
    found = await conn.fetchval(PROFILE_SQL, account_id, DEFAULT_PROFILE_DATABASE, profile)
    if found is not None or create_at is None:
        return None if found is None else int(found)
    await conn.execute(
        "INSERT INTO profile_databases (account_id, name, created_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (account_id, name) DO NOTHING",
        account_id,
        DEFAULT_PROFILE_DATABASE,
        create_at,
    )
    database_id = await conn.fetchval(
        "SELECT id FROM profile_databases WHERE account_id = $1 AND name = $2",
        account_id,
        DEFAULT_PROFILE_DATABASE,
    )
    created = await conn.fetchval(
        "INSERT INTO profiles (database_id, external_id, created_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (database_id, external_id) WHERE external_id IS NOT NULL DO NOTHING RETURNING id",
        database_id,
        profile,
        create_at,
    )
    if created is None:
        created = await conn.fetchval(PROFILE_SQL, account_id, DEFAULT_PROFILE_DATABASE, profile)
    return int(created)


async def _code_use(conn: asyncpg.Connection, account_id: int, request: NewRedemption) -> CodeUse | None:
    found = await find_code(conn, account_id, request.value, request.pool_id)
    if found is None:
        return None
    code, pool = found
    profile_id = request.holder_id
    if profile_id is None and request.profile is not None:
        profile_id = await _profile_id(conn, account_id, request.profile)
    uses = await conn.fetchval(
        "SELECT uses FROM profile_uses WHERE pool_id = $1 AND profile_id = $2", pool.id, profile_id
    )
    return CodeUse(code, pool, request.profile, profile_id, uses or 0)


async def _reserve_key(
    conn: asyncpg.Connection, account_id: int, key: str, scope: str, now: datetime
) -> Redeemed | None:
    """Record ``key`` for this transaction (a concurrent twin waits for our commit), or return the result it
    already stands for (IdempotencyKeyReused when that was something else)."""
    reserved = await conn.fetchval(
        "INSERT INTO idempotency_keys (account_id, key, scope, created_at) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT DO NOTHING RETURNING true",
        account_id,
        key,
        scope,
        now,
    )
    if reserved:
        return None
    found = await conn.fetchrow(
        "SELECT scope, result_id FROM idempotency_keys WHERE account_id = $1 AND key = $2", account_id, key
    )
    if found is None or found["scope"] != scope:
        raise key_reused(key)
    redemption = await _redemption(conn, found["result_id"], account_id)
    if redemption is None or not replays_redemption(scope, redemption):
        raise RedemptionNotFound(found["result_id"])
    return Redeemed(redemption, await _code(conn, redemption.code_id), replayed=True)


async def _record_key(conn: asyncpg.Connection, account_id: int, key: str | None, result_id: int) -> None:
    if key is not None:
        await conn.execute(
            "UPDATE idempotency_keys SET result_id = $3 WHERE account_id = $1 AND key = $2",
            account_id,
            key,
            result_id,
        )


async def lock_pool(conn: asyncpg.Connection, pool_id: int) -> int:
    """Take the pool's row (see the lock order above); return its last_seq."""
    last_seq = await conn.fetchval("SELECT last_seq FROM pools WHERE id = $1 FOR UPDATE", pool_id)
    if last_seq is None:  # deleted meanwhile
        raise PoolNotFound(pool_id)
    return int(last_seq)


class PostgresRedemptions(PostgresBase):
    async def code_use(self, *, account_id: int, request: NewRedemption) -> CodeUse | None:
        async with self._conn() as conn:
            return await _code_use(conn, account_id, request)

    async def redeem(
        self, *, account_id: int, request: NewRedemption, idempotency_key: str | None
    ) -> Redeemed:
        now = self.clock()
        async with self._tx() as conn:
            found = await find_code(conn, account_id, request.value, request.pool_id)
            if found is None:
                raise refused(Refusal.NOT_FOUND, holder=False)
            code, pool = found
            profile_id = request.holder_id
            if (
                profile_id is None and request.profile is not None
            ):  # before the pool's row: it may wait on a twin creating it
                profile_id = await _profile_id(conn, account_id, request.profile, create_at=now)
            await lock_pool(conn, pool.id)
            if idempotency_key is not None:
                replay = await _reserve_key(conn, account_id, idempotency_key, redeem_scope(code.id), now)
                if replay is not None:
                    return replay
            row = await conn.fetchrow(REDEEM_SQL, code.id, now, profile_id)
            if row is None:
                raise refusal_after(await _code_use(conn, account_id, request), now)
            used = code_of(row)
            if profile_id is not None and await conn.fetchval(PROFILE_USE_SQL, pool.id, profile_id) is None:
                # raising rolls the code's use back with it
                raise refused(Refusal.PROFILE_LIMIT, holder=used.profile_id == profile_id)
            if used.usage_count == 1:  # its first use moves the code to the redeemed count
                was = "n_issued" if used.issued_at is not None else "n_available"
                await conn.execute(
                    f"UPDATE pools SET {was} = {was} - 1, n_redeemed = n_redeemed + 1 WHERE id = $1", pool.id
                )
            redemption_id = await conn.fetchval(
                "INSERT INTO redemptions (code_id, profile_id, order_ref, amount, metadata, created_at)"
                " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                code.id,
                profile_id,
                request.order_ref,
                request.amount,
                request.metadata,
                now,
            )
            await run(conn, record_redemptions(pool.id, 1, now))
            await _record_key(conn, account_id, idempotency_key, redemption_id)
        return Redeemed(
            request.recorded(redemption_id=redemption_id, code=used, profile_id=profile_id, at=now), used
        )

    async def rollback_redemption(
        self, *, account_id: int, redemption_id: int, idempotency_key: str | None
    ) -> Redeemed:
        now = self.clock()
        async with self._tx() as conn:
            redemption = await _redemption(conn, redemption_id, account_id)
            if redemption is None:
                raise RedemptionNotFound(redemption_id)
            last_seq = await lock_pool(conn, redemption.pool_id)
            if idempotency_key is not None:
                scope = rollback_scope(redemption_id)
                replay = await _reserve_key(conn, account_id, idempotency_key, scope, now)
                if replay is not None:
                    return replay
            rolled = await conn.fetchval(
                "UPDATE redemptions SET rolled_back_at = $2 WHERE id = $1 AND rolled_back_at IS NULL"
                " RETURNING true",
                redemption_id,
                now,
            )
            if not rolled:
                raise AlreadyRolledBack(redemption_id)
            code = await self._give_back(conn, redemption, last_seq)
            await run(conn, record_redemptions(redemption.pool_id, -1, now))
            await _record_key(conn, account_id, idempotency_key, redemption_id)
            done = await _redemption(conn, redemption_id, account_id)
        assert done is not None
        return Redeemed(done, code)

    async def _give_back(self, conn: asyncpg.Connection, redemption: Redemption, last_seq: int) -> Code:
        row = await conn.fetchrow(GIVE_BACK_SQL, redemption.code_id, last_seq + 1)
        if row is None:  # no use left to give back (never happens while every use has its redemption)
            return await _code(conn, redemption.code_id)
        code = code_of(row)
        if code.state is not CodeState.REDEEMED:
            back = "n_issued" if code.state is CodeState.ISSUED else "n_available"
            await conn.execute(
                f"UPDATE pools SET n_redeemed = n_redeemed - 1, {back} = {back} + 1,"
                " last_seq = last_seq + $2 WHERE id = $1",
                redemption.pool_id,
                int(code.state is CodeState.AVAILABLE),
            )
        if redemption.profile_id is not None:
            await conn.execute(
                "UPDATE profile_uses SET uses = uses - 1 WHERE pool_id = $1 AND profile_id = $2 AND uses > 0",
                redemption.pool_id,
                redemption.profile_id,
            )
        return code

    async def get_redemption(self, *, account_id: int, redemption_id: int) -> Redemption | None:
        async with self._conn() as conn:
            return await _redemption(conn, redemption_id, account_id)

    async def list_redemptions(self, *, code_id: int, after: int | None, limit: int) -> list[Redemption]:
        rows = await self._fetch(
            f"{REDEMPTION_SELECT} WHERE r.code_id = $1 AND r.id > $2 ORDER BY r.id LIMIT $3",
            code_id,
            after or 0,
            limit,
        )
        return [redemption_of(row) for row in rows]
