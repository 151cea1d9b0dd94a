"""Redeems, rollbacks and claims interleaved at random, concurrently, on both engines: after every round the
counts must agree with the redemptions (never negative, never above a limit, pool counters exact)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable
from typing import Any

import pytest

from promopool import service
from promopool.domain import CodeState, PoolSettings, Redeemed
from promopool.domain.errors import AlreadyRolledBack, CodeUnusable, PoolExhausted
from promopool.storage import Store
from tests.conftest import Tenant

MAX_USES = 3
PER_PROFILE = 2
CODES = [f"R{i}" for i in range(6)]
PROFILES = ["ann", "ben", "cy", None]
ROUNDS = 25
EXPECTED_REFUSALS = (CodeUnusable, AlreadyRolledBack, PoolExhausted)


async def check_invariants(store: Store, tenant: Tenant, pool_id: int) -> int:
    """Assert the stored counts agree with the redemptions; return how many uses are outstanding."""
    codes = await service.list_codes(store, account=tenant.account, pool_id=pool_id)
    open_uses = 0
    per_profile: Counter[str] = Counter()
    for code in codes:
        redemptions = await service.list_redemptions(
            store, account=tenant.account, pool_id=pool_id, code=code.value, limit=1000
        )
        unrolled = [r for r in redemptions if r.rolled_back_at is None]
        assert code.usage_count == len(unrolled), code
        assert 0 <= code.usage_count <= MAX_USES
        assert (code.state is CodeState.REDEEMED) == (code.usage_count > 0), code
        per_profile.update(r.profile for r in unrolled if r.profile is not None)
        open_uses += len(unrolled)
    assert all(n <= PER_PROFILE for n in per_profile.values()), per_profile
    pool = await service.get_pool(store, account=tenant.account, pool_id=pool_id)
    states = Counter(code.state for code in codes)
    assert (pool.counts.available, pool.counts.issued, pool.counts.redeemed) == (
        states[CodeState.AVAILABLE],
        states[CodeState.ISSUED],
        states[CodeState.REDEEMED],
    )
    return open_uses


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_interleavings_keep_counts_exact(store: Store, tenant: Tenant, seed: int) -> None:
    rng = random.Random(seed)
    pool = await service.create_pool(
        store,
        account=tenant.account,
        name="interleaved",
        settings=PoolSettings(max_uses=MAX_USES, per_profile_limit=PER_PROFILE),
    )
    await service.import_codes(store, account=tenant.account, pool_id=pool.id, values=CODES)
    redemption_ids: list[int] = []
    expected_open = 0
    for _ in range(ROUNDS):
        calls: list[Awaitable[Any]] = []
        kinds: list[str] = []
        for _ in range(rng.randint(4, 24)):
            kind = rng.choices(["redeem", "rollback", "claim"], weights=[6, 3, 1])[0]
            if kind == "rollback" and not redemption_ids:
                kind = "redeem"
            if kind == "redeem":
                calls.append(
                    service.redeem(
                        store,
                        account=tenant.account,
                        code=rng.choice(CODES),
                        profile=rng.choice(PROFILES),
                        pool_id=pool.id,
                    )
                )
            elif kind == "rollback":
                target = rng.choice(redemption_ids)
                calls.append(service.rollback_redemption(store, account=tenant.account, redemption_id=target))
            else:
                calls.append(service.claim(store, account=tenant.account, pool_id=pool.id))
            kinds.append(kind)
        results = await asyncio.gather(*calls, return_exceptions=True)
        for kind, result in zip(kinds, results, strict=True):
            if isinstance(result, BaseException):
                assert isinstance(result, EXPECTED_REFUSALS), repr(result)
            elif kind == "redeem":
                assert isinstance(result, Redeemed)
                redemption_ids.append(result.redemption.id)
                expected_open += 1
            elif kind == "rollback":
                expected_open -= 1
        assert await check_invariants(store, tenant, pool.id) == expected_open
    assert redemption_ids, "the schedule redeemed nothing: it tests nothing"
