"""Send-safe leases for recipients, on both engines and a fake clock: a re-send while the lease lives gets the
same code; confirm keeps it for good; after release or expiry the recipient gets a fresh code and the old one
goes back to the pool's tail, without a holder."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from promopool import service
from promopool.api.app import create_app
from promopool.config import Settings
from promopool.domain import Claimed, Code, CodeState, LeaseState
from promopool.storage import Store
from tests.conftest import Tenant, connected
from tests.helpers import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(database_url: str, clock: FakeClock) -> AsyncIterator[Store]:
    async with connected(database_url, clock=clock) as the_store:
        yield the_store


async def send(store: Store, tenant: Tenant, recipient: str = "customer-42", seconds: int = 60) -> Claimed:
    return await service.claim(
        store, account=tenant.account, pool_id=tenant.pool.id, recipient=recipient, lease_seconds=seconds
    )


async def counts(store: Store, tenant: Tenant) -> tuple[int, int]:
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    return pool.counts.available, pool.counts.issued


async def code_of(store: Store, tenant: Tenant, value: str) -> Code:
    return await service.get_code(store, account=tenant.account, pool_id=tenant.pool.id, value=value)


async def listed(store: Store, tenant: Tenant, recipient: str = "customer-42") -> list[str]:
    page = await service.recipient_codes(store, account=tenant.account, recipient=recipient)
    return [held.code.value for held in page.items]


async def test_a_resend_while_the_lease_lives_gets_the_same_code(
    store: Store, tenant: Tenant, clock: FakeClock
) -> None:
    first = await send(store, tenant)
    clock.advance(59)
    again = await send(store, tenant, seconds=600)  # a later re-send does not extend or replace the lease
    assert first.lease is not None and again.lease is not None
    assert again.code.value == first.code.value and again.replayed and not first.replayed
    assert again.lease.id == first.lease.id and again.lease.state is LeaseState.ACTIVE
    held = await code_of(store, tenant, first.code.value)
    assert first.code.profile_id is not None and held.profile_id == first.code.profile_id
    assert await counts(store, tenant) == (9, 1)


async def test_confirmed_the_code_stays_the_recipients(
    store: Store, tenant: Tenant, clock: FakeClock
) -> None:
    first = await send(store, tenant)
    assert first.lease is not None
    await service.confirm_lease(store, account=tenant.account, lease_id=first.lease.id)
    clock.advance(3600)
    assert await service.expire_leases(store) == 0
    again = await send(store, tenant)
    assert again.code.value == first.code.value and again.replayed
    assert again.lease is not None and again.lease.state is LeaseState.CONFIRMED
    assert await listed(store, tenant) == [first.code.value]


async def test_released_the_recipient_gets_a_fresh_code(
    store: Store, tenant: Tenant, clock: FakeClock
) -> None:
    first = await send(store, tenant)
    assert first.lease is not None
    await service.release_lease(store, account=tenant.account, lease_id=first.lease.id)
    assert await listed(store, tenant) == []
    assert (await code_of(store, tenant, first.code.value)).profile_id is None  # back in the pool, nobody's
    again = await send(store, tenant)
    assert again.code.value != first.code.value and not again.replayed
    assert await counts(store, tenant) == (9, 1)
    # The released code went to the tail: the other nine codes come first.
    rest = await service.claim_for_recipients(
        store, account=tenant.account, pool_id=tenant.pool.id, recipients=[f"r{i}" for i in range(9)]
    )
    assert rest[-1][1].code.value == first.code.value
    assert first.code.value not in {claimed.code.value for _, claimed in rest[:-1]}


@pytest.mark.parametrize("swept", [True, False])
async def test_run_out_the_recipient_gets_a_fresh_code(
    store: Store,
    tenant: Tenant,
    clock: FakeClock,
    swept: bool,
) -> None:
    first = await send(store, tenant)
    clock.advance(61)
    if swept:
        assert await service.expire_leases(store) == 1
        assert await listed(store, tenant) == []
    again = await send(store, tenant)  # unswept, the claim itself ends the lease that ran out
    assert again.code.value != first.code.value and not again.replayed
    code = await code_of(store, tenant, first.code.value)
    assert code.state is CodeState.AVAILABLE and code.profile_id is None
    assert await counts(store, tenant) == (9, 1)
    assert first.lease is not None
    lease = await service.get_lease(store, account=tenant.account, lease_id=first.lease.id)
    assert lease.state is LeaseState.EXPIRED
    assert await listed(store, tenant) == [again.code.value]


async def test_bulk_recipients_lease_each_new_code(store: Store, tenant: Tenant, clock: FakeClock) -> None:
    held = await send(store, tenant, recipient="kept", seconds=3600)
    answers = await service.claim_for_recipients(
        store,
        account=tenant.account,
        pool_id=tenant.pool.id,
        recipients=["a", "kept", "b"],
        lease_seconds=60,
    )
    leases = [claimed.lease for _, claimed in answers]
    assert all(lease is not None and lease.state is LeaseState.ACTIVE for lease in leases)
    assert leases[1] == held.lease and answers[1][1].code == held.code
    clock.advance(61)
    assert await service.expire_leases(store) == 2
    assert await listed(store, tenant, "a") == [] and await listed(store, tenant, "kept") == [held.code.value]


async def test_a_leased_recipient_claim_over_http(store: Store, tenant: Tenant) -> None:
    app = create_app(Settings(database_url="sqlite:///unused.db"), store=store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://promopool.test") as client:
        url = f"/v1/pools/{tenant.pool.id}/claim"
        body = {"recipient": "customer-42", "lease_seconds": 60}
        first = await client.post(url, json=body, headers=tenant.headers)
        again = await client.post(url, json=body, headers=tenant.headers)
        in_query = await client.post(
            f"{url}?lease_seconds=60", json={"recipient": "q"}, headers=tenant.headers
        )
        both = await client.post(f"{url}?lease_seconds=60", json=body, headers=tenant.headers)
    assert first.status_code == again.status_code == in_query.status_code == 200
    assert first.json()["lease"]["state"] == "active" and in_query.json()["lease"]["state"] == "active"
    assert again.json()["code"] == first.json()["code"] and again.json()["lease"] == first.json()["lease"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert both.status_code == 400 and both.json()["error"]["code"] == "invalid_input"
