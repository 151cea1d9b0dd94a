"""Leases: a claim that reserves its code; confirm, release, and the sweep that ends run-out leases.

A code given back gets a new seq at its pool's tail, so the claim cursor never looks behind itself. Whatever
gives a code back takes its pool's row first (the lock order of ``lock_pool``); a confirm changes only the
lease, and a sweep ending it meanwhile updates the same row, so one of the two conditional updates wins.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from promopool.domain import Claimed, Lease, LeaseState
from promopool.domain.errors import LeaseNotFound, PoolExhausted
from promopool.domain.idempotency import Keyed, Once
from promopool.domain.leases import replayable, settled
from promopool.storage.core import StoreCore
from promopool.storage.driver import SQL, Execute, Fetch, FetchRow, Op
from promopool.storage.ops import idempotency
from promopool.storage.ops.bindings import unbind
from promopool.storage.ops.claims import lock_claimable, take
from promopool.storage.ops.codes import code_by_id
from promopool.storage.ops.idempotency import Earlier
from promopool.storage.ops.pools import lock_pool
from promopool.storage.rows import LEASE_COLUMNS, Row, lease_of, qualified

FIND = (
    f"SELECT {qualified(LEASE_COLUMNS, 'l')}, c.pool_id FROM leases l JOIN codes c ON c.id = l.code_id"
    " JOIN pools p ON p.id = c.pool_id WHERE l.id = $1 AND p.account_id = $2"
)
END = (
    "UPDATE leases SET state = $2, ended_at = $3 WHERE id = $1 AND state = 'active' AND expires_at > $3"
    f" RETURNING {LEASE_COLUMNS}"
)
# One lease per code id (a leased claim's one code, or a recipients' claim's new codes).
OPEN = SQL(
    postgres="INSERT INTO leases (code_id, expires_at, created_at)"
    f" SELECT id, $2, $3 FROM unnest($1::bigint[]) AS id RETURNING {LEASE_COLUMNS}",
    sqlite="INSERT INTO leases (code_id, expires_at, created_at)"
    f" SELECT value, $2, $3 FROM json_each($1) WHERE true RETURNING {LEASE_COLUMNS}",
)
SWEEP_POOLS = 100
DUE_POOLS = (
    "SELECT DISTINCT c.pool_id FROM leases l JOIN codes c ON c.id = l.code_id"
    " WHERE l.state = 'active' AND l.expires_at <= $1 ORDER BY c.pool_id LIMIT $2"
)
EXPIRE = (
    "UPDATE leases SET state = 'expired', ended_at = $2 WHERE state = 'active' AND expires_at <= $2"
    " AND code_id IN (SELECT id FROM codes WHERE pool_id = $1) RETURNING code_id"
)
# The codes still issued (not redeemed meanwhile) go back at the pool's tail, each with its own new seq, and
# without a holder (a recipient's lease made its recipient the holder).
REQUEUE = (
    "UPDATE codes SET state = 'available', issued_at = NULL, profile_id = NULL, seq = v.seq"
    " FROM (SELECT c.id, p.last_seq + row_number() OVER (ORDER BY c.id) AS seq"
    " FROM codes c JOIN pools p ON p.id = c.pool_id"
    " WHERE p.id = $1 AND c.id = ANY($2::bigint[]) AND c.state = 'issued') v WHERE codes.id = v.id"
)
REQUEUED = (
    "UPDATE pools SET last_seq = last_seq + $2, n_issued = n_issued - $2, n_available = n_available + $2"
    " WHERE id = $1"
)


def lease_row(account_id: int, lease_id: int) -> Op[Row]:
    """The account's lease, with its code's pool_id; LeaseNotFound."""
    row = yield FetchRow(FIND, lease_id, account_id)
    if row is None:
        raise LeaseNotFound(lease_id)
    return row


def get_lease(account_id: int, lease_id: int) -> Op[Lease | None]:
    row = yield FetchRow(FIND, lease_id, account_id)
    return None if row is None else lease_of(row)


def lease_code(account_id: int, pool_id: int, seconds: int, key: str | None, now: datetime) -> Op[Claimed]:
    cursor = yield from lock_claimable(account_id, pool_id, now)
    scope = idempotency.lease_scope(pool_id)
    if key is not None:
        earlier = yield from idempotency.reserve_one(account_id, key, scope, now)
        if earlier is not None:
            return (yield from replay(account_id, key, scope, earlier, now))
    codes = yield from take(pool_id, cursor, 1, now)
    if not codes:
        raise PoolExhausted(pool_id)  # which also rolls the key's reservation back
    lease = (yield from open_leases([codes[0].id], seconds, now))[codes[0].id]
    if key is not None:
        yield from idempotency.record(account_id, [(key, lease.id)])
    return Claimed(codes[0], lease=lease)


def open_leases(code_ids: list[int], seconds: int, now: datetime) -> Op[dict[int, Lease]]:
    """A lease of ``seconds`` on each of these codes, just taken: the leases by code id."""
    if not code_ids:
        return {}
    rows = yield Fetch(OPEN, code_ids, now + timedelta(seconds=seconds), now)
    return {row["code_id"]: lease_of(row) for row in rows}


def replay(account_id: int, key: str, scope: str, earlier: Earlier, now: datetime) -> Op[Claimed]:
    if earlier.scope != scope:
        raise idempotency.key_reused(key)
    found = yield from lease_row(account_id, earlier.result_id or 0)
    if not idempotency.replays_lease(scope, found["pool_id"]):
        raise LeaseNotFound(found["id"])
    lease = replayable(lease_of(found), now)  # an ended lease's code may be someone else's by now
    return Claimed((yield from code_by_id(lease.code_id)), replayed=True, lease=lease)


def end_lease(account_id: int, lease_id: int, state: LeaseState, now: datetime) -> Op[Lease]:
    """Confirm or release: the lease moved to ``state`` when it is active and has not run out."""
    found = yield from lease_row(account_id, lease_id)
    gives_back = state is LeaseState.RELEASED
    if gives_back:
        yield from lock_pool(found["pool_id"])
    row = yield FetchRow(END, lease_id, state.value, now)
    if row is None:  # read again: it may have ended since, while this waited for its row
        return settled(lease_of((yield from lease_row(account_id, lease_id))), state, now)
    if gives_back:
        yield from give_back(found["pool_id"], [row["code_id"]])
    return lease_of(row)


def due_pools(now: datetime) -> Op[list[int]]:
    rows = yield Fetch(DUE_POOLS, now, SWEEP_POOLS)
    return [row["pool_id"] for row in rows]


def expire(pool_id: int, now: datetime) -> Op[int]:
    """End the pool's run-out leases and give their codes back: how many ended."""
    yield from lock_pool(pool_id)
    return (yield from end_due(pool_id, now))


def end_due(pool_id: int, now: datetime) -> Op[int]:
    """``expire`` with the pool's row held already."""
    rows = yield Fetch(EXPIRE, pool_id, now)
    yield from give_back(pool_id, [row["code_id"] for row in rows])
    return len(rows)


def give_back(pool_id: int, code_ids: list[int]) -> Op[None]:
    """The codes of ended leases: their recipients forget them (a redeemed one too: its lease, and so its
    binding, has ended), and the ones still issued go back (pool row held)."""
    yield from unbind(pool_id, code_ids)
    yield from requeue(pool_id, code_ids)


def requeue(pool_id: int, code_ids: list[int]) -> Op[None]:
    """Make the pool's still-issued codes among ``code_ids`` available again at its tail (pool row held)."""
    back = yield Execute(REQUEUE, pool_id, code_ids)
    if back:
        yield Execute(REQUEUED, pool_id, back)


def end_lease_once(
    account_id: int, lease_id: int, state: LeaseState, now: datetime, request: Keyed | None
) -> Op[Once[Lease]]:
    """``end_lease``, once per keyed request: the same request again gets the first answer."""
    if request is not None:  # the pool's row before the key (the lock order)
        yield from lock_pool((yield from lease_row(account_id, lease_id))["pool_id"])
    scope = idempotency.lease_action_scope(state.value, lease_id)
    write = end_lease(account_id, lease_id, state, now)
    return (yield from idempotency.once(account_id, request, scope, now, write, Lease))


class Leases(StoreCore):
    async def lease(
        self, *, account_id: int, pool_id: int, seconds: int, idempotency_key: str | None
    ) -> Claimed:
        """Claim the pool's next code (like ``claim``) and reserve it for ``seconds``: its Claimed carries
        the lease. A replayed key whose lease has ended raises LeaseExpired or LeaseReleased instead of
        showing a code that may since belong to someone else."""
        now = self.clock()
        return await self._driver.write(lease_code(account_id, pool_id, seconds, idempotency_key, now))

    async def confirm_lease(
        self, *, account_id: int, lease_id: int, request: Keyed | None = None
    ) -> Once[Lease]:
        """Keep the code issued. Confirming again is harmless; a lease that ran out raises LeaseExpired
        (even before the sweep has put its code back), a released one LeaseReleased. Once per keyed
        request."""
        op = end_lease_once(account_id, lease_id, LeaseState.CONFIRMED, self.clock(), request)
        return await self._driver.write(op)

    async def release_lease(
        self, *, account_id: int, lease_id: int, request: Keyed | None = None
    ) -> Once[Lease]:
        """Put the code back at the pool's tail. Releasing again is harmless; LeaseExpired or a Conflict for a
        confirmed lease. Once per keyed request."""
        op = end_lease_once(account_id, lease_id, LeaseState.RELEASED, self.clock(), request)
        return await self._driver.write(op)

    async def get_lease(self, *, account_id: int, lease_id: int) -> Lease | None:
        return await self._driver.read(get_lease(account_id, lease_id))

    async def expire_leases(self) -> int:
        """Put the codes of every lease that has run out back at their pools' tails; return how many leases
        ended."""
        now = self.clock()
        # The sweep runs every second: a reader looks for work first. Then one transaction per pool, so that
        # a pool's row is held briefly and no transaction holds two (no order between pools to keep).
        ended = 0
        for pool_id in await self._driver.read(due_pools(now)):
            ended += await self._driver.write(expire(pool_id, now))
        return ended
