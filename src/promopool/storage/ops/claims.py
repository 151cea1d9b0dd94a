"""Claims: a batch of claims in one transaction, its idempotency keys, replays; a bulk claim (many codes for
one request); the claim algorithm itself is the driver's ``TakeCodes`` (and, for a batch without keys,
``Driver.claim``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from promopool.domain import BulkClaimed, Claimed, Code
from promopool.domain.errors import CodeNotFound, PoolExhausted, PoolExpired, PoolNotFound, PromopoolError
from promopool.storage.coalesce import ClaimCoalescer
from promopool.storage.core import Clock, StoreCore, utc_now
from promopool.storage.driver import Driver, Op, TakeCodes
from promopool.storage.ops import idempotency
from promopool.storage.ops.codes import code_where, codes_by_id
from promopool.storage.ops.idempotency import Earlier, claim_scope, key_reused
from promopool.storage.ops.pools import locked_pool
from promopool.storage.rows import Row, dt

ClaimResult = Claimed | PromopoolError


def claimable_pool(account_id: int, pool_id: int, now: datetime, columns: str = "next_seq") -> Op[Row]:
    """Take the account's pool row for a claim (which orders the claims of one pool across processes): its
    ``columns``; PoolNotFound, PoolExpired."""
    pool = yield from locked_pool(pool_id, account_id, f"{columns}, expires_at")
    if pool is None:
        raise PoolNotFound(pool_id)
    expires = dt(pool["expires_at"])
    if expires is not None and expires <= now:
        raise PoolExpired(pool_id)
    return pool


def lock_claimable(account_id: int, pool_id: int, now: datetime) -> Op[int]:
    """Take the account's pool row for a claim (``claimable_pool``) and return its cursor."""
    return int((yield from claimable_pool(account_id, pool_id, now))["next_seq"])


def take(pool_id: int, cursor: int, wanted: int, now: datetime) -> Op[list[Code]]:
    """Up to ``wanted`` codes from the cursor on, in queue order, counted; the pool row must be held."""
    if wanted == 0:  # every claim of the batch was a replay
        return []
    codes: list[Code] = yield TakeCodes(pool_id, cursor, wanted, now)
    return codes


def take_fresh(account_id: int, pool_id: int, wanted: int, now: datetime) -> Op[list[Code]]:
    """A claim batch without keys (``Driver.claim``'s operation where the engine has no faster way)."""
    cursor = yield from lock_claimable(account_id, pool_id, now)
    return (yield from take(pool_id, cursor, wanted, now))


def replay(key: str, scope: str, earlier: Earlier) -> Op[ClaimResult]:
    if earlier.scope != scope:
        return key_reused(key)
    code = yield from code_where("id = $1", earlier.result_id)
    if code is None or not idempotency.replays_claim(scope, code):
        return CodeNotFound("the code claimed with this Idempotency-Key has since been deleted", key=key)
    return Claimed(code, replayed=True)


def claim_many(
    account_id: int, pool_id: int, count: int, partial: bool, key: str | None, now: datetime
) -> Op[BulkClaimed]:
    """A bulk claim: ``count`` codes in one transaction, or (``partial``) what is left of them."""
    pool = yield from claimable_pool(account_id, pool_id, now, "next_seq, n_available")
    if key is not None:
        scope = idempotency.bulk_claim_scope(pool_id, count, partial)
        earlier = yield from idempotency.reserve_one(account_id, key, scope, now)
        if earlier is not None:
            return (yield from replay_many(account_id, key, scope, earlier))
    if not partial:
        # The counter is exact under the pool's row and counts every code take could find (and expired ones
        # it skips), so a claim that cannot be served whole is refused before it takes anything.
        available = int(pool["n_available"])
        if available < count:
            raise PoolExhausted(pool_id, requested=count, available=available)
    codes = yield from take(pool_id, int(pool["next_seq"]), count, now)
    if not codes:
        raise PoolExhausted(pool_id)  # which also rolls the key's reservation back
    if len(codes) < count and not partial:  # expired codes skipped: raising rolls back what was taken
        raise PoolExhausted(pool_id, requested=count, available=len(codes))
    if key is not None:
        yield from idempotency.record_many(account_id, key, [code.id for code in codes])
    return BulkClaimed(pool_id, codes)


def replay_many(account_id: int, key: str, scope: str, earlier: Earlier) -> Op[BulkClaimed]:
    ids = None if earlier.scope != scope else (yield from idempotency.recorded_ids(account_id, key, scope))
    if ids is None:
        raise key_reused(key)
    codes = yield from codes_by_id(ids)
    if not idempotency.replays_bulk_claim(scope, codes, len(ids)):
        raise CodeNotFound("a code claimed with this Idempotency-Key has since been deleted", key=key)
    return BulkClaimed(codes[0].pool_id, codes, replayed=True)


def recorded_claim(account_id: int, pool_id: int, count: int, key: str) -> Op[BulkClaimed | None]:
    """The codes a whole bulk claim of ``count`` with ``key`` handed out, read without claiming anything; None
    when no such claim is recorded (or a code of it is gone)."""
    scope = idempotency.bulk_claim_scope(pool_id, count, False)
    ids = yield from idempotency.recorded_ids(account_id, key, scope)
    if ids is None:
        return None
    codes = yield from codes_by_id(ids)
    return (
        BulkClaimed(pool_id, codes, True) if idempotency.replays_bulk_claim(scope, codes, len(ids)) else None
    )


def claim_keyed(account_id: int, pool_id: int, plan: ClaimPlan, now: datetime) -> Op[None]:
    """A claim batch with idempotency keys: fills ``plan``."""
    cursor = yield from lock_claimable(account_id, pool_id, now)
    scope = claim_scope(pool_id)
    earlier = yield from idempotency.reserve(account_id, plan.keyed(), scope, now)
    for key, used in earlier.items():
        plan.replay(key, (yield from replay(key, scope, used)))
    codes = yield from take(pool_id, cursor, plan.needed(), now)
    recorded = plan.assign(codes, pool_id)
    yield from idempotency.record(account_id, [(key, code.id) for key, code in recorded])
    yield from idempotency.release(account_id, plan.unserved_keys())


class ClaimPlan:
    """Who in a claim batch gets a fresh code, who gets a replay, and what each finally receives: the first
    entry with a key decides for every later entry with the same key in the batch."""

    def __init__(self, keys: Sequence[str | None]) -> None:
        self._keys = list(keys)
        self._first: dict[str, int] = {}
        for index, key in enumerate(self._keys):
            if key is not None:
                self._first.setdefault(key, index)
        self._results: dict[int, ClaimResult] = {}

    def keyed(self) -> list[str]:
        return list(self._first)

    def replay(self, key: str, result: ClaimResult) -> None:
        self._results[self._first[key]] = result

    def unserved_keys(self) -> list[str]:
        """Keys that got no code (pool exhausted): their records must not outlive this batch."""
        return [
            key for key, index in self._first.items() if isinstance(self._results.get(index), PoolExhausted)
        ]

    def _fresh(self) -> list[int]:
        return [
            index
            for index, key in enumerate(self._keys)
            if index not in self._results and (key is None or self._first[key] == index)
        ]

    def needed(self) -> int:
        return len(self._fresh())

    def assign(self, codes: Sequence[Code], pool_id: int) -> list[tuple[str, Code]]:
        """Give out ``codes`` in order; return the (key, code) pairs to record as idempotency keys."""
        fresh = self._fresh()
        recorded = []
        for index, code in zip(fresh, codes, strict=False):
            self._results[index] = Claimed(code)
            key = self._keys[index]
            if key is not None:
                recorded.append((key, code))
        for index in fresh[len(codes) :]:
            self._results[index] = PoolExhausted(pool_id)
        return recorded

    def results(self) -> list[ClaimResult]:
        out: list[ClaimResult] = []
        for index, key in enumerate(self._keys):
            if key is not None and self._first[key] != index:
                first = self._results[self._first[key]]
                out.append(Claimed(first.code, replayed=True) if isinstance(first, Claimed) else first)
            else:
                out.append(self._results[index])
        return out


class Claims(StoreCore):
    def __init__(self, driver: Driver, *, clock: Clock = utc_now) -> None:
        super().__init__(driver, clock=clock)
        self._claims = ClaimCoalescer[str | None](self.claim_batch)

    async def claim(self, *, account_id: int, pool_id: int, idempotency_key: str | None) -> Claimed:
        """Hand out the pool's next available code exactly once (coalesced with concurrent claims)."""
        return await self._claims.claim(account_id, pool_id, idempotency_key)

    async def claim_batch(
        self, account_id: int, pool_id: int, keys: Sequence[str | None]
    ) -> list[ClaimResult]:
        """Claim one code for each entry of ``keys`` in one transaction.

        An entry with an idempotency key whose earlier claim (same pool) exists gets that claim back,
        ``replayed``; same key on another scope gets IdempotencyKeyReused; when the pool runs dry the
        remaining entries get PoolExhausted. Raises PoolNotFound or PoolExpired for the whole batch.
        Durable (committed) before it returns.
        """
        now = self.clock()
        plan = ClaimPlan(keys)
        if plan.keyed():
            await self._driver.write(claim_keyed(account_id, pool_id, plan, now))
        else:
            plan.assign(await self._driver.claim(account_id, pool_id, plan.needed(), now), pool_id)
        return plan.results()

    async def claim_many(
        self, *, account_id: int, pool_id: int, count: int, partial: bool, idempotency_key: str | None
    ) -> BulkClaimed:
        """``count`` codes exactly once, in one transaction: all of them, or with ``partial`` what is left,
        PoolExhausted otherwise (nothing taken). An idempotency key replays the same codes. Durable before
        it returns."""
        op = claim_many(account_id, pool_id, count, partial, idempotency_key, self.clock())
        return await self._driver.write(op)

    async def recorded_claim(
        self, *, account_id: int, pool_id: int, count: int, idempotency_key: str
    ) -> BulkClaimed | None:
        """What ``claim_many`` of ``count`` (not partial) with the key handed out, or None; claims nothing."""
        return await self._driver.read(recorded_claim(account_id, pool_id, count, idempotency_key))

    async def purge_idempotency_keys(self, *, older_than: datetime) -> int:
        return await self._driver.write(idempotency.purge(older_than))
