"""Redemptions: validate's read, redeem and rollback (sqlite engine).

Writes run one at a time in the writer thread, so nothing can interleave with them; they are still written
as conditional updates, statement for statement the same as on PostgreSQL.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from decimal import Decimal

from promopool.domain import Code, CodeState, Redeemed, Redemption
from promopool.domain.errors import AlreadyRolledBack, RedemptionNotFound
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
from promopool.storage.sqlite.base import CODE_COLUMNS, SQLiteBase, _dt, code_of, ts
from promopool.storage.sqlite.driver import run
from promopool.storage.sqlite.lookup import find_code, qualified

REDEMPTION_SELECT = (
    "SELECT r.id, r.code_id, c.pool_id, c.value, r.created_at, r.profile_id, pr.external_id, r.order_ref,"
    " r.amount, r.metadata, r.rolled_back_at"
    " FROM redemptions r JOIN codes c ON c.id = r.code_id JOIN pools p ON p.id = c.pool_id"
    " LEFT JOIN profiles pr ON pr.id = r.profile_id"
)

# One use, if the rules allow it (domain.redemptions.refusal lists the same rules).
REDEEM_SQL = f"""
UPDATE codes SET usage_count = usage_count + 1, state = 'redeemed'
FROM pools p
WHERE codes.id = :code AND p.id = codes.pool_id
  AND codes.usage_count < p.max_uses
  AND (codes.expires_at IS NULL OR codes.expires_at > :now)
  AND (p.expires_at IS NULL OR p.expires_at > :now)
  AND NOT (p.holder_only AND codes.profile_id IS NOT NULL AND codes.profile_id IS NOT :profile)
RETURNING {qualified(CODE_COLUMNS, "codes")}
"""

# One more use by the profile, if below the pool's per-profile limit.
PROFILE_USE_SQL = """
INSERT INTO profile_uses (pool_id, profile_id, uses) VALUES (:pool, :profile, 1)
ON CONFLICT (pool_id, profile_id) DO UPDATE SET uses = profile_uses.uses + 1
WHERE profile_uses.uses
    < coalesce((SELECT per_profile_limit FROM pools WHERE id = :pool), profile_uses.uses + 1)
RETURNING uses
"""

# The use given back. A code left with no use is issued again, or, if it was never handed out, claimable
# again at the pool's tail (:seq = last_seq + 1).
GIVE_BACK_SQL = f"""
UPDATE codes SET usage_count = usage_count - 1,
    state = CASE WHEN usage_count > 1 THEN 'redeemed'
                 WHEN issued_at IS NOT NULL THEN 'issued'
                 ELSE 'available' END,
    seq = CASE WHEN usage_count = 1 AND issued_at IS NULL THEN :seq ELSE seq END
WHERE id = :code AND usage_count > 0
RETURNING {CODE_COLUMNS}
"""

PROFILE_SQL = (
    "SELECT pr.id FROM profiles pr JOIN profile_databases d ON d.id = pr.database_id"
    " WHERE d.account_id = ? AND d.name = ? AND pr.external_id = ?"
)


def redemption_of(row: sqlite3.Row) -> Redemption:
    return Redemption(
        id=row[0],
        code_id=row[1],
        pool_id=row[2],
        code=row[3],
        created_at=datetime.fromisoformat(row[4]),
        profile_id=row[5],
        profile=row[6],
        order_ref=row[7],
        amount=None if row[8] is None else Decimal(row[8]),
        metadata=None if row[9] is None else json.loads(row[9]),
        rolled_back_at=_dt(row[10]),
    )


def _redemption(conn: sqlite3.Connection, redemption_id: int, account_id: int) -> Redemption | None:
    row = conn.execute(
        f"{REDEMPTION_SELECT} WHERE r.id = ? AND p.account_id = ?", (redemption_id, account_id)
    ).fetchone()
    return None if row is None else redemption_of(row)


def _code(conn: sqlite3.Connection, code_id: int) -> Code:
    return code_of(conn.execute(f"SELECT {CODE_COLUMNS} FROM codes WHERE id = ?", (code_id,)).fetchone())


def _profile_id(
    conn: sqlite3.Connection, account_id: int, profile: str, *, create_at: str | None = None
) -> int | None:
    """The profile named ``profile`` in the account's default profile database; created (at ``create_at``)
    when given a time and missing."""
    row = conn.execute(PROFILE_SQL, (account_id, DEFAULT_PROFILE_DATABASE, profile)).fetchone()
    if row is not None or create_at is None:
        return None if row is None else int(row[0])
    conn.execute(
        "INSERT INTO profile_databases (account_id, name, created_at) VALUES (?, ?, ?)"
        " ON CONFLICT (account_id, name) DO NOTHING",
        (account_id, DEFAULT_PROFILE_DATABASE, create_at),
    )
    database_id = conn.execute(
        "SELECT id FROM profile_databases WHERE account_id = ? AND name = ?",
        (account_id, DEFAULT_PROFILE_DATABASE),
    ).fetchone()[0]
    return int(
        conn.execute(
            "INSERT INTO profiles (database_id, external_id, created_at) VALUES (?, ?, ?) RETURNING id",
            (database_id, profile, create_at),
        ).fetchone()[0]
    )


def _code_use(conn: sqlite3.Connection, account_id: int, request: NewRedemption) -> CodeUse | None:
    found = find_code(conn, account_id, request.value, request.pool_id)
    if found is None:
        return None
    code, pool = found
    profile_id = request.holder_id
    if profile_id is None and request.profile is not None:
        profile_id = _profile_id(conn, account_id, request.profile)
    uses = conn.execute(
        "SELECT uses FROM profile_uses WHERE pool_id = ? AND profile_id = ?", (pool.id, profile_id)
    ).fetchone()
    return CodeUse(code, pool, request.profile, profile_id, 0 if uses is None else uses[0])


def _replay(conn: sqlite3.Connection, account_id: int, key: str, scope: str) -> Redeemed | None:
    """The result recorded for ``key``, if any (IdempotencyKeyReused when it was for something else)."""
    found = conn.execute(
        "SELECT scope, result_id FROM idempotency_keys WHERE account_id = ? AND key = ?", (account_id, key)
    ).fetchone()
    if found is None:
        return None
    if found[0] != scope:
        raise key_reused(key)
    redemption = _redemption(conn, found[1], account_id)
    if redemption is None or not replays_redemption(scope, redemption):
        raise RedemptionNotFound(found[1])
    return Redeemed(redemption, _code(conn, redemption.code_id), replayed=True)


class SQLiteRedemptions(SQLiteBase):
    async def code_use(self, *, account_id: int, request: NewRedemption) -> CodeUse | None:
        return await self._read(lambda conn: _code_use(conn, account_id, request))

    async def redeem(
        self, *, account_id: int, request: NewRedemption, idempotency_key: str | None
    ) -> Redeemed:
        now = self.clock()
        return await self._write(lambda conn: self._redeem(conn, account_id, request, idempotency_key, now))

    def _redeem(
        self,
        conn: sqlite3.Connection,
        account_id: int,
        request: NewRedemption,
        key: str | None,
        now: datetime,
    ) -> Redeemed:
        found = find_code(conn, account_id, request.value, request.pool_id)
        if found is None:
            raise refused(Refusal.NOT_FOUND, holder=False)
        code, pool = found
        scope = redeem_scope(code.id)
        if key is not None and (replay := _replay(conn, account_id, key, scope)) is not None:
            return replay
        at = ts(now)
        profile_id = request.holder_id
        if profile_id is None and request.profile is not None:
            profile_id = _profile_id(conn, account_id, request.profile, create_at=at)
        row = conn.execute(REDEEM_SQL, {"code": code.id, "now": at, "profile": profile_id}).fetchone()
        if row is None:
            raise refusal_after(_code_use(conn, account_id, request), now)
        used = code_of(row)
        if profile_id is not None:
            counted = conn.execute(PROFILE_USE_SQL, {"pool": pool.id, "profile": profile_id}).fetchone()
            if counted is None:  # raising rolls the code's use back with it
                raise refused(Refusal.PROFILE_LIMIT, holder=used.profile_id == profile_id)
        if used.usage_count == 1:  # its first use moves the code to the redeemed count
            was = "n_issued" if used.issued_at is not None else "n_available"
            conn.execute(
                f"UPDATE pools SET {was} = {was} - 1, n_redeemed = n_redeemed + 1 WHERE id = ?", (pool.id,)
            )
        redemption_id = conn.execute(
            "INSERT INTO redemptions (code_id, profile_id, order_ref, amount, metadata, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (
                code.id,
                profile_id,
                request.order_ref,
                None if request.amount is None else str(request.amount),
                None if request.metadata is None else json.dumps(request.metadata),
                at,
            ),
        ).fetchone()[0]
        run(conn, record_redemptions(pool.id, 1, datetime.fromisoformat(at)))
        if key is not None:
            conn.execute(
                "INSERT INTO idempotency_keys VALUES (?, ?, ?, ?, ?)",
                (account_id, key, scope, redemption_id, at),
            )
        redemption = request.recorded(redemption_id=redemption_id, code=used, profile_id=profile_id, at=now)
        return Redeemed(redemption, used)

    async def rollback_redemption(
        self, *, account_id: int, redemption_id: int, idempotency_key: str | None
    ) -> Redeemed:
        at = ts(self.clock())

        def op(conn: sqlite3.Connection) -> Redeemed:
            scope = rollback_scope(redemption_id)
            if idempotency_key is not None:
                replay = _replay(conn, account_id, idempotency_key, scope)
                if replay is not None:
                    return replay
            redemption = _redemption(conn, redemption_id, account_id)
            if redemption is None:
                raise RedemptionNotFound(redemption_id)
            rolled = conn.execute(
                "UPDATE redemptions SET rolled_back_at = ? WHERE id = ? AND rolled_back_at IS NULL",
                (at, redemption_id),
            )
            if rolled.rowcount == 0:
                raise AlreadyRolledBack(redemption_id)
            code = self._give_back(conn, redemption)
            run(conn, record_redemptions(redemption.pool_id, -1, datetime.fromisoformat(at)))
            if idempotency_key is not None:
                conn.execute(
                    "INSERT INTO idempotency_keys VALUES (?, ?, ?, ?, ?)",
                    (account_id, idempotency_key, scope, redemption_id, at),
                )
            done = _redemption(conn, redemption_id, account_id)
            assert done is not None
            return Redeemed(done, code)

        return await self._write(op)

    def _give_back(self, conn: sqlite3.Connection, redemption: Redemption) -> Code:
        pool_id = redemption.pool_id
        last_seq = conn.execute("SELECT last_seq FROM pools WHERE id = ?", (pool_id,)).fetchone()[0]
        row = conn.execute(GIVE_BACK_SQL, {"seq": last_seq + 1, "code": redemption.code_id}).fetchone()
        if row is None:  # no use left to give back (never happens while every use has its redemption)
            return _code(conn, redemption.code_id)
        code = code_of(row)
        if code.state is not CodeState.REDEEMED:
            back = "n_issued" if code.state is CodeState.ISSUED else "n_available"
            conn.execute(
                f"UPDATE pools SET n_redeemed = n_redeemed - 1, {back} = {back} + 1,"
                " last_seq = last_seq + ? WHERE id = ?",
                (int(code.state is CodeState.AVAILABLE), pool_id),
            )
        if redemption.profile_id is not None:
            conn.execute(
                "UPDATE profile_uses SET uses = uses - 1 WHERE pool_id = ? AND profile_id = ? AND uses > 0",
                (pool_id, redemption.profile_id),
            )
        return code

    async def get_redemption(self, *, account_id: int, redemption_id: int) -> Redemption | None:
        return await self._read(lambda conn: _redemption(conn, redemption_id, account_id))

    async def list_redemptions(self, *, code_id: int, after: int | None, limit: int) -> list[Redemption]:
        sql = f"{REDEMPTION_SELECT} WHERE r.code_id = ? AND r.id > ? ORDER BY r.id LIMIT ?"
        rows = await self._read(lambda conn: conn.execute(sql, (code_id, after or 0, limit)).fetchall())
        return [redemption_of(row) for row in rows]
