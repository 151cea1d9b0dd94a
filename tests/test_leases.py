"""Leases on both engines, on a fake clock (no sleeps): confirm, release, expiry, late confirms, replays."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from promopool import service
from promopool.domain import Claimed, CodeState, LeaseState
from promopool.domain.errors import (
    Conflict,
    IdempotencyKeyReused,
    InvalidInput,
    LeaseExpired,
    LeaseNotFound,
    LeaseReleased,
    PoolExhausted,
)
from promopool.storage import Store
from tests.conftest import Tenant, connected, make_tenant
from tests.helpers import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(database_url: str, clock: FakeClock) -> AsyncIterator[Store]:
    """The test's store, on the fake clock."""
    async with connected(database_url, clock=clock) as the_store:
        yield the_store


async def lease(store: Store, tenant: Tenant, seconds: int = 60, key: str | None = None) -> Claimed:
    return await service.claim(
        store, account=tenant.account, pool_id=tenant.pool.id, lease_seconds=seconds, idempotency_key=key
    )


async def counts(store: Store, tenant: Tenant) -> tuple[int, int, int]:
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    return pool.counts.available, pool.counts.issued, pool.counts.redeemed


async def state_of(store: Store, tenant: Tenant, value: str) -> CodeState:
    return (await service.get_code(store, account=tenant.account, pool_id=tenant.pool.id, value=value)).state


async def test_a_lease_reserves_and_confirm_keeps(store: Store, tenant: Tenant, clock: FakeClock) -> None:
    leased = await lease(store, tenant, seconds=60)
    assert leased.lease is not None and leased.lease.state is LeaseState.ACTIVE
    assert leased.lease.expires_at == clock.now + timedelta(seconds=60)
    assert leased.code.state is CodeState.ISSUED and await counts(store, tenant) == (9, 1, 0)
    confirmed = await service.confirm_lease(store, account=tenant.account, lease_id=leased.lease.id)
    assert confirmed.state is LeaseState.CONFIRMED and confirmed.ended_at == clock.now
    again = await service.confirm_lease(store, account=tenant.account, lease_id=leased.lease.id)
    assert again == confirmed  # harmless to repeat
    clock.advance(3600)
    assert await service.expire_leases(store) == 0
    assert await state_of(store, tenant, leased.code.value) is CodeState.ISSUED
    with pytest.raises(Conflict):
        await service.release_lease(store, account=tenant.account, lease_id=leased.lease.id)


async def test_release_puts_the_code_back_at_the_tail(store: Store, tenant: Tenant) -> None:
    leased = await lease(store, tenant)
    assert leased.code.value == "CODE000" and leased.lease is not None
    released = await service.release_lease(store, account=tenant.account, lease_id=leased.lease.id)
    assert released.state is LeaseState.RELEASED
    assert await service.release_lease(store, account=tenant.account, lease_id=leased.lease.id) == released
    assert await state_of(store, tenant, "CODE000") is CodeState.AVAILABLE
    assert await counts(store, tenant) == (10, 0, 0)
    with pytest.raises(LeaseReleased):
        await service.confirm_lease(store, account=tenant.account, lease_id=leased.lease.id)
    handed = [
        (await service.claim(store, account=tenant.account, pool_id=tenant.pool.id)).code.value
        for _ in range(10)
    ]
    assert handed == [f"CODE{i:03d}" for i in range(1, 10)] + ["CODE000"]  # handed out again, last
    with pytest.raises(PoolExhausted):
        await service.claim(store, account=tenant.account, pool_id=tenant.pool.id)


async def test_expiry_gives_the_code_back_and_a_late_confirm_fails_cleanly(
    store: Store, tenant: Tenant, clock: FakeClock
) -> None:
    leased = await lease(store, tenant, seconds=60)
    assert leased.lease is not None
    clock.advance(59)
    assert await service.expire_leases(store) == 0
    clock.advance(1)
    # ran out: refused at once, even before the sweep has put the code back
    with pytest.raises(LeaseExpired):
        await service.confirm_lease(store, account=tenant.account, lease_id=leased.lease.id)
    with pytest.raises(LeaseExpired):
        await service.release_lease(store, account=tenant.account, lease_id=leased.lease.id)
    assert await counts(store, tenant) == (9, 1, 0)
    assert await service.expire_leases(store) == 1
    assert await service.expire_leases(store) == 0
    assert await counts(store, tenant) == (10, 0, 0)
    ended = await service.get_lease(store, account=tenant.account, lease_id=leased.lease.id)
    assert ended.state is LeaseState.EXPIRED and ended.ended_at == clock.now
    with pytest.raises(LeaseExpired):
        await service.confirm_lease(store, account=tenant.account, lease_id=leased.lease.id)


async def test_a_late_confirm_cannot_take_the_code_back_from_its_next_holder(
    store: Store, clock: FakeClock
) -> None:
    tenant = await make_tenant(store, "single", ["ONLY"])
    first = await lease(store, tenant, seconds=30)
    clock.advance(31)
    await service.expire_leases(store)
    second = await lease(store, tenant, seconds=30)
    assert second.code.value == "ONLY" and first.lease is not None and second.lease is not None
    with pytest.raises(LeaseExpired):
        await service.confirm_lease(store, account=tenant.account, lease_id=first.lease.id)
    assert (await service.confirm_lease(store, account=tenant.account, lease_id=second.lease.id)).state is (
        LeaseState.CONFIRMED
    )
    assert await counts(store, tenant) == (0, 1, 0)


async def test_idempotency_key_replays_a_running_lease_only(
    store: Store, tenant: Tenant, clock: FakeClock
) -> None:
    first = await lease(store, tenant, seconds=60, key="cart-1")
    again = await lease(store, tenant, seconds=60, key="cart-1")
    assert again.replayed and again.code.value == first.code.value and again.lease == first.lease
    with pytest.raises(IdempotencyKeyReused):  # a plain claim is another request
        await service.claim(store, account=tenant.account, pool_id=tenant.pool.id, idempotency_key="cart-1")
    clock.advance(61)
    with pytest.raises(LeaseExpired):  # the code may belong to someone else by now: not shown
        await lease(store, tenant, seconds=60, key="cart-1")
    assert await counts(store, tenant) == (9, 1, 0)


async def test_concurrent_leases_releases_and_sweeps_stay_exact(
    store: Store, tenant: Tenant, clock: FakeClock
) -> None:
    results = await asyncio.gather(
        *[lease(store, tenant, seconds=10) for _ in range(16)], return_exceptions=True
    )
    leases = [r.lease for r in results if isinstance(r, Claimed) and r.lease is not None]
    assert len(leases) == 10 and sum(isinstance(r, PoolExhausted) for r in results) == 6
    assert len({r.code.value for r in results if isinstance(r, Claimed)}) == 10
    confirm_some = [
        service.confirm_lease(store, account=tenant.account, lease_id=lease.id) for lease in leases[:3]
    ]
    release_some = [
        service.release_lease(store, account=tenant.account, lease_id=lease.id) for lease in leases[3:6]
    ]
    await asyncio.gather(*confirm_some, *release_some)
    clock.advance(11)
    # the rest ran out: a sweep and late releases and confirms race for them
    late = [service.release_lease(store, account=tenant.account, lease_id=lease.id) for lease in leases[6:]]
    late += [service.confirm_lease(store, account=tenant.account, lease_id=lease.id) for lease in leases[6:]]
    raced = await asyncio.gather(
        service.expire_leases(store), service.expire_leases(store), *late, return_exceptions=True
    )
    assert sorted(raced[:2]) == [0, 4]  # type: ignore[type-var]
    assert all(isinstance(r, LeaseExpired) for r in raced[2:])
    assert await counts(store, tenant) == (7, 3, 0)


async def test_a_redeemed_leased_code_stays_redeemed_when_the_lease_runs_out(
    store: Store, tenant: Tenant, clock: FakeClock
) -> None:
    leased = await lease(store, tenant, seconds=60)
    await service.redeem(store, account=tenant.account, code=leased.code.value)
    clock.advance(61)
    assert await service.expire_leases(store) == 1
    assert await state_of(store, tenant, leased.code.value) is CodeState.REDEEMED
    assert await counts(store, tenant) == (9, 0, 1)


async def test_leases_are_the_accounts_own(store: Store, tenant: Tenant) -> None:
    other = await make_tenant(store, "rival")
    leased = await lease(store, tenant)
    assert leased.lease is not None
    for call in (service.confirm_lease, service.release_lease, service.get_lease):
        with pytest.raises(LeaseNotFound):
            await call(store, account=other.account, lease_id=leased.lease.id)
    assert (await service.get_lease(store, account=tenant.account, lease_id=leased.lease.id)).state is (
        LeaseState.ACTIVE
    )


async def test_lease_seconds_are_checked(store: Store, tenant: Tenant) -> None:
    for seconds in (0, -5, 7 * 24 * 3600 + 1):
        with pytest.raises(InvalidInput):
            await lease(store, tenant, seconds=seconds)
    assert await counts(store, tenant) == (10, 0, 0)
