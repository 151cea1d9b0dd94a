"""Recipient-bound claims: one code per (pool, recipient), for as long as the pool exists.

The binding (``recipient_codes``) is read and written in the claim's own transaction, under the pool's row,
which every claim takes first: concurrent claims for one recipient, from any process or server, take turns
there and the later ones find the binding. The recipients' profiles (the codes' holders) are found or created
before the pool's row is taken, in sorted order, as a redeem does (no one holding a pool's row waits for a
profile). A binding made under a lease goes when the lease is released or runs out (``leases.give_back``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from promopool.domain import Claimed, Code, CodeState, Lease
from promopool.domain.errors import PoolExhausted
from promopool.domain.leases import ran_out
from promopool.domain.recipients import Held, distinct, in_request_order
from promopool.storage.coalesce import ClaimCoalescer
from promopool.storage.core import Clock, StoreCore, utc_now
from promopool.storage.driver import SQL, Driver, Execute, Fetch, Op
from promopool.storage.ops import idempotency
from promopool.storage.ops.claims import ClaimResult, lock_claimable, take
from promopool.storage.ops.holders import profile_id, profile_ids
from promopool.storage.ops.leases import end_due, open_leases
from promopool.storage.rows import CODE_COLUMNS, LEASE_COLUMNS, Row, code_of, lease_of, qualified

BOUND = (
    f"SELECT r.recipient, r.lease_id, {qualified(CODE_COLUMNS, 'c')} FROM recipient_codes r"
    " JOIN codes c ON c.id = r.code_id WHERE r.pool_id = $1 AND r.recipient = ANY($2::text[])"
)
HOLD = SQL(
    postgres="UPDATE codes c SET profile_id = v.profile_id"
    " FROM unnest($1::bigint[], $2::bigint[]) AS v(id, profile_id) WHERE c.id = v.id",
    # The arrays materialized and joined by their keys (a join of json_each by key scans per row), then
    # joined to codes by primary key (a correlated subquery per code took 5.7 s for 10,000; this, 0.06 s).
    sqlite="WITH i AS MATERIALIZED (SELECT key, value FROM json_each($1)),"
    " p AS MATERIALIZED (SELECT key, value FROM json_each($2)),"
    " v AS MATERIALIZED (SELECT i.value AS id, p.value AS profile_id FROM i JOIN p ON p.key = i.key)"
    " UPDATE codes SET profile_id = v.profile_id FROM v WHERE codes.id = v.id",
)
# A stale binding (its code went back to the pool by another path) is replaced.
BIND = SQL(
    postgres="INSERT INTO recipient_codes (pool_id, account_id, recipient, code_id, lease_id, created_at)"
    " SELECT $1, $2, v.recipient, v.code_id, v.lease_id, $6"
    " FROM unnest($3::text[], $4::bigint[], $5::bigint[]) AS v(recipient, code_id, lease_id)"
    " ON CONFLICT (pool_id, recipient) DO UPDATE SET code_id = excluded.code_id,"
    " lease_id = excluded.lease_id, created_at = excluded.created_at",
    sqlite="WITH r AS MATERIALIZED (SELECT key, value FROM json_each($3)),"
    " c AS MATERIALIZED (SELECT key, value FROM json_each($4)),"
    " l AS MATERIALIZED (SELECT key, value FROM json_each($5))"
    " INSERT INTO recipient_codes (pool_id, account_id, recipient, code_id, lease_id, created_at)"
    " SELECT $1, $2, r.value, c.value, l.value, $6 FROM r JOIN c ON c.key = r.key JOIN l ON l.key = r.key"
    " WHERE true ON CONFLICT (pool_id, recipient) DO UPDATE SET code_id = excluded.code_id,"
    " lease_id = excluded.lease_id, created_at = excluded.created_at",
)
LISTING = (
    f"SELECT r.recipient, r.lease_id, {qualified(CODE_COLUMNS, 'c')} FROM recipient_codes r"
    " JOIN codes c ON c.id = r.code_id WHERE r.account_id = $1 AND r.recipient = $2 AND r.pool_id > $3"
    " AND c.state <> 'available' ORDER BY r.pool_id LIMIT $4"
)


def held(rows: Sequence[Row]) -> Op[list[Held]]:
    """The bindings of ``rows`` (recipient, lease_id and the code's columns), with their leases."""
    lease_ids = [row["lease_id"] for row in rows if row["lease_id"] is not None]
    leases: dict[int, Lease] = {}
    if lease_ids:
        found = yield Fetch(f"SELECT {LEASE_COLUMNS} FROM leases WHERE id = ANY($1::bigint[])", lease_ids)
        leases = {row["id"]: lease_of(row) for row in found}
    return [
        Held(row["recipient"], code_of(row), None if row["lease_id"] is None else leases.get(row["lease_id"]))
        for row in rows
    ]


def bound(pool_id: int, recipients: Sequence[str], holders: dict[str, int]) -> Op[dict[str, Held]]:
    """The recipients' bindings that still hold: the code is still theirs (not given back to the pool by
    another path, say a detach, which also drops the binding)."""
    found = yield from held((yield Fetch(BOUND, pool_id, list(recipients))))
    return {
        h.recipient: h
        for h in found
        if h.code.state is not CodeState.AVAILABLE and h.code.profile_id == holders[h.recipient]
    }


def claim_for(
    account_id: int,
    pool_id: int,
    recipients: Sequence[str],
    seconds: int | None,
    key: str | None,
    now: datetime,
    *,
    partial: bool = False,
) -> Op[dict[str, ClaimResult]]:
    """Each recipient (distinct) its code: the one bound to it (replayed), or the pool's next one, bound
    now; with ``seconds`` a fresh code is leased. All or nothing: PoolExhausted when the pool cannot serve
    every new recipient — unless ``partial`` (a batch of separate requests), where the recipients left
    over each get PoolExhausted."""
    holders = yield from profile_ids(account_id, sorted(recipients), now)
    cursor = yield from lock_claimable(account_id, pool_id, now)
    if key is not None:
        scope = idempotency.recipients_scope(pool_id, recipients)
        earlier = yield from idempotency.reserve_one(account_id, key, scope, now)
        if earlier is not None and earlier.scope != scope:
            raise idempotency.key_reused(key)
        # (same scope: the bindings below are the replay)
    given = yield from bound(pool_id, recipients, holders)
    if any(h.lease is not None and ran_out(h.lease, now) for h in given.values()):
        # Run out but not yet swept: end it now, so that its code goes back and its recipient gets a new one.
        yield from end_due(pool_id, now)
        given = yield from bound(pool_id, recipients, holders)
    fresh = [recipient for recipient in recipients if recipient not in given]
    codes = yield from take(pool_id, cursor, len(fresh), now)
    if len(codes) < len(fresh) and not partial:
        raise PoolExhausted(pool_id)  # which rolls back what was taken, and the key's reservation
    served = fresh[: len(codes)]
    claimed: dict[str, ClaimResult] = {
        h.recipient: Claimed(h.code, replayed=True, lease=h.lease) for h in given.values()
    }
    claimed.update({recipient: PoolExhausted(pool_id) for recipient in fresh[len(codes) :]})
    if served:
        claimed.update((yield from bind(account_id, pool_id, served, codes, holders, seconds, now)))
    first = claimed[recipients[0]]
    if key is not None and isinstance(first, Claimed):  # (a keyed claim is never partial)
        yield from idempotency.record(account_id, [(key, first.code.id)])
    return claimed


def bind(
    account_id: int,
    pool_id: int,
    recipients: Sequence[str],
    codes: Sequence[Code],
    holders: dict[str, int],
    seconds: int | None,
    now: datetime,
) -> Op[dict[str, Claimed]]:
    """Make each recipient its code's holder and bind them, leasing the codes with ``seconds``."""
    ids = [code.id for code in codes]
    profiles = [holders[recipient] for recipient in recipients]
    yield Execute(HOLD, ids, profiles)
    leases = {} if seconds is None else (yield from open_leases(ids, seconds, now))
    lease_ids = [None if code.id not in leases else leases[code.id].id for code in codes]
    yield Execute(BIND, pool_id, account_id, list(recipients), ids, lease_ids, now)
    return {
        recipient: Claimed(replace(code, profile_id=profile), lease=leases.get(code.id))
        for recipient, code, profile in zip(recipients, codes, profiles, strict=True)
    }


def recipient_codes(account_id: int, recipient: str, after_pool: int, limit: int) -> Op[list[Held] | None]:
    rows = yield Fetch(LISTING, account_id, recipient, after_pool, limit)
    if not rows and not after_pool and (yield from profile_id(account_id, recipient)) is None:
        return None  # no claim or redeem of the account ever named this recipient
    return (yield from held(rows))


class Recipients(StoreCore):
    def __init__(self, driver: Driver, *, clock: Clock = utc_now) -> None:
        super().__init__(driver, clock=clock)
        self._recipient_claims = ClaimCoalescer[str](self._recipient_batch)

    async def claim_for_recipient(self, *, account_id: int, pool_id: int, recipient: str) -> Claimed:
        """``claim_for_recipients`` for one recipient without a lease or a key, batched with the concurrent
        ones of the pool into one transaction (as plain claims are, ``storage/coalesce.py``)."""
        return await self._recipient_claims.claim(account_id, pool_id, recipient)

    async def _recipient_batch(
        self, account_id: int, pool_id: int, recipients: Sequence[str]
    ) -> list[ClaimResult]:
        op = claim_for(account_id, pool_id, distinct(recipients), None, None, self.clock(), partial=True)
        return in_request_order(recipients, await self._driver.write(op))

    async def claim_for_recipients(
        self,
        *,
        account_id: int,
        pool_id: int,
        recipients: Sequence[str],
        lease_seconds: int | None,
        idempotency_key: str | None,
    ) -> dict[str, Claimed]:
        """Each of the distinct ``recipients`` its code of the pool, in one transaction: the code bound to it
        earlier (``replayed``), or the next available one, which the recipient then holds (its profile in the
        default profile database) — leased for ``lease_seconds`` when given. PoolExhausted with nothing
        taken when the pool cannot serve them all; PoolNotFound, PoolExpired, IdempotencyKeyReused."""
        now = self.clock()
        op = claim_for(account_id, pool_id, recipients, lease_seconds, idempotency_key, now)
        # (all or nothing: every recipient got a code, or PoolExhausted was raised)
        return {r: c for r, c in (await self._driver.write(op)).items() if isinstance(c, Claimed)}

    async def recipient_codes(
        self, *, account_id: int, recipient: str, after_pool: int = 0, limit: int = 100
    ) -> list[Held] | None:
        """The codes the recipient holds in the account's pools, by pool id, after ``after_pool``; None when
        the account has never known the recipient (no profile of that id in its default profile database)."""
        return await self._driver.read(recipient_codes(account_id, recipient, after_pool, limit), paged=True)
