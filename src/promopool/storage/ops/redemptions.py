"""Redemptions: validate's read, redeem and rollback; each check is the conditional statement that counts.

A redeem or rollback takes its pool's row first (``lock_pool``), then the Idempotency-Key record, the code,
the profile's use count. A claim batch holds its pool's row while it updates codes: a redeem that locked a
code first and the pool second could wait on such a batch while the batch waits on it. A redeem creates its
profile before it takes the pool's row (a twin creating the same profile waits for our commit; no one holding
a pool's row ever waits for a profile). SQLite's writer runs one write at a time: the same statements, never
interleaved.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from promopool.domain import Code, CodeState, Redeemed, Redemption
from promopool.domain.errors import AlreadyRolledBack, PoolNotFound, RedemptionNotFound
from promopool.domain.redemptions import (
    CodeUse,
    NewRedemption,
    RedemptionFilter,
    Refusal,
    refusal_after,
    refused,
)
from promopool.storage.core import StoreCore
from promopool.storage.driver import Execute, Fetch, FetchRow, FetchVal, Op
from promopool.storage.ops import idempotency
from promopool.storage.ops.alerts import record_redemptions
from promopool.storage.ops.codes import code_by_id
from promopool.storage.ops.holders import profile_id
from promopool.storage.ops.idempotency import redeem_scope, rollback_scope
from promopool.storage.ops.lookup import find_code
from promopool.storage.ops.pools import lock_pool
from promopool.storage.rows import CODE_COLUMNS, code_of, qualified, redemption_of

SELECT = (
    "SELECT r.id, r.code_id, c.pool_id, c.value AS code, r.created_at, r.profile_id,"
    " pr.external_id AS profile, r.order_ref, r.amount, r.metadata, r.rolled_back_at"
    " FROM redemptions r JOIN codes c ON c.id = r.code_id JOIN pools p ON p.id = c.pool_id"
    " LEFT JOIN profiles pr ON pr.id = r.profile_id"
)

# One use, if the rules allow it (domain.redemptions.refusal lists the same rules). PostgreSQL evaluates the
# WHERE clause on the row's latest version, under its lock: the check and the count are one step. (SQLite's
# RETURNING reads no alias, hence `codes.`; a NULL $3, no profile, is never the holder.)
_REDEEM = f"""
UPDATE codes SET usage_count = codes.usage_count + 1, state = 'redeemed'
FROM pools p
WHERE codes.id = $1 AND p.id = codes.pool_id
  AND codes.usage_count < p.max_uses
  AND (codes.expires_at IS NULL OR codes.expires_at > $2)
  AND (p.expires_at IS NULL OR p.expires_at > $2)
  AND (NOT p.holder_only OR codes.profile_id IS NULL OR codes.profile_id = $3){{relative}}
RETURNING {qualified(CODE_COLUMNS, "codes")}
"""
# A pool with valid_for_seconds: a code issued at or before $4 (now - valid_for_seconds) has expired. Added
# only for such pools, as a condition on the row's latest version like the others.
REDEEM_SQL = _REDEEM.format(relative="")
REDEEM_RELATIVE_SQL = _REDEEM.format(relative="\n  AND (codes.issued_at IS NULL OR codes.issued_at > $4)")

# One more use by the profile, if below the pool's per-profile limit (the upsert re-checks the latest row).
PROFILE_USE_SQL = """
INSERT INTO profile_uses AS u (pool_id, profile_id, uses) VALUES ($1, $2, 1)
ON CONFLICT (pool_id, profile_id) DO UPDATE SET uses = u.uses + 1
WHERE u.uses < coalesce((SELECT per_profile_limit FROM pools WHERE id = $1), u.uses + 1)
RETURNING uses
"""

# The use given back. A code left with no use is issued again, or, if it was never handed out, claimable
# again at the pool's tail (last_seq + 1, read from the pool row this transaction holds).
GIVE_BACK_SQL = f"""
UPDATE codes SET usage_count = usage_count - 1,
    state = CASE WHEN usage_count > 1 THEN 'redeemed'
                 WHEN issued_at IS NOT NULL THEN 'issued'
                 ELSE 'available' END,
    seq = CASE WHEN usage_count = 1 AND issued_at IS NULL
               THEN (SELECT last_seq + 1 FROM pools WHERE id = codes.pool_id) ELSE seq END
WHERE id = $1 AND usage_count > 0
RETURNING {CODE_COLUMNS}
"""

INSERT_SQL = (
    "INSERT INTO redemptions (code_id, profile_id, order_ref, amount, metadata, created_at)"
    " VALUES ($1, $2, $3, $4::text::numeric, $5::text::jsonb, $6) RETURNING id"
)


def get_redemption(account_id: int, redemption_id: int) -> Op[Redemption | None]:
    row = yield FetchRow(f"{SELECT} WHERE r.id = $1 AND p.account_id = $2", redemption_id, account_id)
    return None if row is None else redemption_of(row)


def list_redemptions(code_id: int, after: int | None, limit: int) -> Op[list[Redemption]]:
    sql = f"{SELECT} WHERE r.code_id = $1 AND r.id > $2 ORDER BY r.id LIMIT $3"
    return [redemption_of(row) for row in (yield Fetch(sql, code_id, after or 0, limit))]


def pool_redemptions(
    account_id: int, pool_id: int, where: RedemptionFilter, before: int | None, limit: int
) -> Op[list[Redemption]]:
    # Only the conditions given, as list_codes does: each absent filter costs nothing.
    args: list[Any] = [pool_id, account_id]
    sql = f"{SELECT} WHERE c.pool_id = $1 AND p.account_id = $2"
    for condition, value in (
        ("r.created_at >= ${}", where.since),
        ("r.created_at < ${}", where.until),
        ("pr.external_id = ${}", where.profile),
        ("r.order_ref = ${}", where.order_ref),
        ("r.id < ${}", before),
    ):
        if value is not None:
            args.append(value)
            sql += " AND " + condition.format(len(args))
    if where.rolled_back is not None:
        sql += f" AND r.rolled_back_at IS {'NOT ' if where.rolled_back else ''}NULL"
    args.append(limit)
    rows = yield Fetch(f"{sql} ORDER BY r.id DESC LIMIT ${len(args)}", *args)
    return [redemption_of(row) for row in rows]


def code_use(account_id: int, request: NewRedemption) -> Op[CodeUse | None]:
    found = yield from find_code(account_id, request.value, request.pool_id)
    if found is None:
        return None
    code, pool = found
    profile = request.holder_id
    if profile is None and request.profile is not None:
        profile = yield from profile_id(account_id, request.profile)
    uses = yield FetchVal(
        "SELECT uses FROM profile_uses WHERE pool_id = $1 AND profile_id = $2", pool.id, profile
    )
    return CodeUse(code, pool, request.profile, profile, uses or 0)


def reserve_key(account_id: int, key: str | None, scope: str, now: datetime) -> Op[Redeemed | None]:
    """Reserve ``key`` for this write (the pool's row held); the first answer when it was used before. A
    write that answers records its redemption; one that raises rolls the reservation back: none to release."""
    if key is None:
        return None
    earlier = yield from idempotency.reserve_one(account_id, key, scope, now)
    if earlier is None:
        return None
    if earlier.scope != scope:
        raise idempotency.key_reused(key)
    answered = earlier.result_id or 0
    redemption = yield from get_redemption(account_id, answered)
    if redemption is None or not idempotency.replays_redemption(scope, redemption):
        raise RedemptionNotFound(answered)
    return Redeemed(redemption, (yield from code_by_id(redemption.code_id)), replayed=True)


def redeem(account_id: int, request: NewRedemption, key: str | None, now: datetime) -> Op[Redeemed]:
    found = yield from find_code(account_id, request.value, request.pool_id)
    if found is None:
        raise refused(Refusal.NOT_FOUND, holder=False)
    code, pool = found
    profile = request.holder_id
    if profile is None and request.profile is not None:  # before the pool's row: it may wait on a twin
        profile = yield from profile_id(account_id, request.profile, now)
    if not (yield from lock_pool(pool.id)):
        raise PoolNotFound(pool.id)  # deleted meanwhile
    if (replay := (yield from reserve_key(account_id, key, redeem_scope(code.id), now))) is not None:
        return replay
    valid_for = pool.settings.valid_for_seconds
    if valid_for is None:
        row = yield FetchRow(REDEEM_SQL, code.id, now, profile)
    else:
        issued_after = now - timedelta(seconds=valid_for)
        row = yield FetchRow(REDEEM_RELATIVE_SQL, code.id, now, profile, issued_after)
    if row is None:
        raise refusal_after((yield from code_use(account_id, request)), now)
    used = code_of(row)
    if profile is not None and (yield FetchVal(PROFILE_USE_SQL, pool.id, profile)) is None:
        # raising rolls the code's use back with it
        raise refused(Refusal.PROFILE_LIMIT, holder=used.profile_id == profile)
    if used.usage_count == 1:  # its first use moves the code to the redeemed count
        was = "n_issued" if used.issued_at is not None else "n_available"
        yield Execute(
            f"UPDATE pools SET {was} = {was} - 1, n_redeemed = n_redeemed + 1 WHERE id = $1", pool.id
        )
    amount = None if request.amount is None else str(request.amount)
    metadata = None if request.metadata is None else json.dumps(request.metadata)
    redemption_id = yield FetchVal(INSERT_SQL, code.id, profile, request.order_ref, amount, metadata, now)
    yield from record_redemptions(pool.id, 1, now)
    if key is not None:
        yield from idempotency.record(account_id, [(key, redemption_id)])
    return Redeemed(
        request.recorded(redemption_id=redemption_id, code=used, profile_id=profile, at=now), used
    )


def give_back(redemption: Redemption) -> Op[Code]:
    """The redemption's use given back to its code, its pool's counters and the profile's count."""
    row = yield FetchRow(GIVE_BACK_SQL, redemption.code_id)
    if row is None:  # no use left to give back (never happens while every use has its redemption)
        return (yield from code_by_id(redemption.code_id))
    code = code_of(row)
    if code.state is not CodeState.REDEEMED:
        back = "n_issued" if code.state is CodeState.ISSUED else "n_available"
        yield Execute(
            f"UPDATE pools SET n_redeemed = n_redeemed - 1, {back} = {back} + 1, last_seq = last_seq + $2"
            " WHERE id = $1",
            redemption.pool_id,
            int(code.state is CodeState.AVAILABLE),
        )
    if redemption.profile_id is not None:
        yield Execute(
            "UPDATE profile_uses SET uses = uses - 1 WHERE pool_id = $1 AND profile_id = $2 AND uses > 0",
            redemption.pool_id,
            redemption.profile_id,
        )
    return code


def rollback(account_id: int, redemption_id: int, key: str | None, now: datetime) -> Op[Redeemed]:
    redemption = yield from get_redemption(account_id, redemption_id)
    if redemption is None:
        raise RedemptionNotFound(redemption_id)
    pool_id = redemption.pool_id
    if not (yield from lock_pool(pool_id)):
        raise PoolNotFound(pool_id)  # deleted meanwhile
    if (replay := (yield from reserve_key(account_id, key, rollback_scope(redemption_id), now))) is not None:
        return replay
    rolled = yield Execute(
        "UPDATE redemptions SET rolled_back_at = $2 WHERE id = $1 AND rolled_back_at IS NULL",
        redemption_id,
        now,
    )
    if not rolled:
        raise AlreadyRolledBack(redemption_id)
    code = yield from give_back(redemption)
    yield from record_redemptions(pool_id, -1, now)
    if key is not None:
        yield from idempotency.record(account_id, [(key, redemption_id)])
    # Nothing else changes a redemption's row: the one read above, rolled back now.
    return Redeemed(replace(redemption, rolled_back_at=now), code)


class Redemptions(StoreCore):
    """A typed value means the code of the account matching it under its pool's normalization
    (domain.normalization.best_match); ``request.pool_id`` narrows the search to one pool. A profile is named
    by its key (external id) in the account's ``default`` profile database."""

    async def code_use(self, *, account_id: int, request: NewRedemption) -> CodeUse | None:
        """The code ``request.value`` means, its pool, and the profile's standing (the profile is looked
        up, never created); None when no code matches. Reads only: validate's answer."""
        return await self._driver.read(code_use(account_id, request))

    async def redeem(
        self, *, account_id: int, request: NewRedemption, idempotency_key: str | None
    ) -> Redeemed:
        """Record one use of the code ``request.value`` means, in one transaction whose conditional updates
        are the checks (domain.redemptions.refusal lists them): code usage below the pool's max_uses, not
        expired, the holder when the pool is holder_only, the profile's uses below per_profile_limit. The
        profile is created when new. A refusal raises domain.redemptions.refused(reason). The same key for
        the same code returns the first redemption, ``replayed``; for another code IdempotencyKeyReused."""
        return await self._driver.write(redeem(account_id, request, idempotency_key, self.clock()))

    async def rollback_redemption(
        self, *, account_id: int, redemption_id: int, idempotency_key: str | None
    ) -> Redeemed:
        """Give the redemption's use back, exactly once (AlreadyRolledBack after that, RedemptionNotFound
        for another account's). A code back to no uses returns to ``issued``, or when it was never handed
        out to ``available`` at the pool's tail."""
        return await self._driver.write(rollback(account_id, redemption_id, idempotency_key, self.clock()))

    async def get_redemption(self, *, account_id: int, redemption_id: int) -> Redemption | None:
        return await self._driver.read(get_redemption(account_id, redemption_id))

    async def list_redemptions(self, *, code_id: int, after: int | None, limit: int) -> list[Redemption]:
        """The code's redemptions in id order, those after ``after`` only."""
        return await self._driver.read(list_redemptions(code_id, after, limit))

    async def pool_redemptions(
        self, *, account_id: int, pool_id: int, where: RedemptionFilter, before: int | None, limit: int
    ) -> list[Redemption]:
        """The pool's redemptions matching ``where``, newest first, those with an id below ``before`` only."""
        return await self._driver.read(pool_redemptions(account_id, pool_id, where, before, limit))
