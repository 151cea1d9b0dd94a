"""Bulk claims (issue 18): N codes exactly once in one transaction, all or nothing unless partial, replayed
whole by an Idempotency-Key, through the service and the native route, on both engines."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from promopool import service
from promopool.domain import PoolSettings
from promopool.domain.errors import CodeNotFound, IdempotencyKeyReused, InvalidInput, PoolExhausted
from promopool.storage import Store
from tests.conftest import Tenant, make_tenant
from tests.helpers import assert_counters_exact, assert_error, execute_sql, state_counts

Client = httpx.AsyncClient


async def test_takes_exactly_count_in_queue_order(store: Store, tenant: Tenant) -> None:
    claimed = await service.claim_many(store, account=tenant.account, pool_id=tenant.pool.id, count=4)
    assert [code.value for code in claimed.codes] == ["CODE000", "CODE001", "CODE002", "CODE003"]
    assert not claimed.replayed and claimed.pool_id == tenant.pool.id
    assert {code.issued_at for code in claimed.codes} != {None}
    after = await service.claim(store, account=tenant.account, pool_id=tenant.pool.id)
    assert after.code.value == "CODE004"
    assert await state_counts(store, tenant.pool.id) == {"available": 5, "issued": 5, "redeemed": 0}
    await assert_counters_exact(store, tenant.account, tenant.pool.id)


async def test_fewer_left_takes_nothing_unless_partial(store: Store, tenant: Tenant) -> None:
    account, pool_id = tenant.account, tenant.pool.id
    await service.claim_many(store, account=account, pool_id=pool_id, count=3)
    with pytest.raises(PoolExhausted) as refused:
        await service.claim_many(store, account=account, pool_id=pool_id, count=8, idempotency_key="k")
    assert refused.value.details == {"pool_id": pool_id, "requested": 8, "available": 7}
    assert await state_counts(store, pool_id) == {"available": 7, "issued": 3, "redeemed": 0}
    # The refused key was not remembered: the same key may now take what is left.
    rest = await service.claim_many(
        store, account=account, pool_id=pool_id, count=8, partial=True, idempotency_key="k2"
    )
    assert [code.value for code in rest.codes] == [f"CODE{i:03d}" for i in range(3, 10)]
    with pytest.raises(PoolExhausted):
        await service.claim_many(store, account=account, pool_id=pool_id, count=1, partial=True)
    await assert_counters_exact(store, account, pool_id)


async def test_expired_codes_make_a_whole_claim_refuse_and_take_nothing(store: Store, tenant: Tenant) -> None:
    """The counter counts expired codes as available; the claim finds fewer and rolls back what it took."""
    await execute_sql(
        store, "UPDATE codes SET expires_at = '2000-01-01T00:00:00.000000Z' WHERE value = 'CODE005'"
    )
    with pytest.raises(PoolExhausted) as refused:
        await service.claim_many(store, account=tenant.account, pool_id=tenant.pool.id, count=10)
    assert refused.value.details["available"] == 9
    assert await state_counts(store, tenant.pool.id) == {"available": 10, "issued": 0, "redeemed": 0}
    partial = await service.claim_many(
        store, account=tenant.account, pool_id=tenant.pool.id, count=10, partial=True
    )
    assert len(partial.codes) == 9 and "CODE005" not in {code.value for code in partial.codes}
    await assert_counters_exact(store, tenant.account, tenant.pool.id)


async def test_a_key_replays_the_same_codes_and_refuses_another_request(
    store: Store, tenant: Tenant, other: Tenant
) -> None:
    account, pool_id = tenant.account, tenant.pool.id
    first = await service.claim_many(store, account=account, pool_id=pool_id, count=3, idempotency_key="k")
    again = await service.claim_many(store, account=account, pool_id=pool_id, count=3, idempotency_key="k")
    assert again.replayed and [c.value for c in again.codes] == [c.value for c in first.codes]
    assert await state_counts(store, pool_id) == {"available": 7, "issued": 3, "redeemed": 0}
    for count, partial in ((4, False), (3, True)):
        with pytest.raises(IdempotencyKeyReused):
            await service.claim_many(
                store, account=account, pool_id=pool_id, count=count, partial=partial, idempotency_key="k"
            )
    with pytest.raises(IdempotencyKeyReused):
        await service.claim(store, account=account, pool_id=pool_id, idempotency_key="k")
    pool = await service.create_pool(store, account=account, name="second", settings=PoolSettings())
    await service.import_codes(store, account=account, pool_id=pool.id, values=["X1", "X2", "X3"])
    with pytest.raises(IdempotencyKeyReused):
        await service.claim_many(store, account=account, pool_id=pool.id, count=3, idempotency_key="k")
    # Keys are the account's: another account's same key is its own claim.
    theirs = await service.claim_many(
        store, account=other.account, pool_id=other.pool.id, count=3, idempotency_key="k"
    )
    assert not theirs.replayed
    await assert_counters_exact(store, account, pool_id)


async def test_a_replay_after_a_code_was_deleted_answers_gone(store: Store, tenant: Tenant) -> None:
    account, pool_id = tenant.account, tenant.pool.id
    first = await service.claim_many(store, account=account, pool_id=pool_id, count=2, idempotency_key="k")
    await service.delete_code(store, account=account, pool_id=pool_id, value=first.codes[1].value)
    with pytest.raises(CodeNotFound):
        await service.claim_many(store, account=account, pool_id=pool_id, count=2, idempotency_key="k")


@pytest.mark.parametrize("count", [0, -1, 10_001])
async def test_count_out_of_range_is_refused(store: Store, tenant: Tenant, count: int) -> None:
    with pytest.raises(InvalidInput):
        await service.claim_many(store, account=tenant.account, pool_id=tenant.pool.id, count=count)
    assert await state_counts(store, tenant.pool.id) == {"available": 10, "issued": 0, "redeemed": 0}


async def test_route_answers_codes_and_replays(client: Client, tenant: Tenant) -> None:
    url, h = f"/v1/pools/{tenant.pool.id}/claim", tenant.headers
    first = await client.post(url, json={"count": 3}, headers={**h, "Idempotency-Key": "send-1"})
    assert first.status_code == 200, first.text
    body = first.json()
    assert set(body) == {"pool_id", "count", "codes", "issued_at", "replayed"}
    assert body["codes"] == ["CODE000", "CODE001", "CODE002"]
    assert (body["pool_id"], body["count"], body["replayed"]) == (tenant.pool.id, 3, False)
    assert "idempotent-replayed" not in first.headers
    again = await client.post(url, json={"count": 3}, headers={**h, "Idempotency-Key": "send-1"})
    assert again.status_code == 200
    assert again.json() == {**body, "replayed": True}
    assert again.headers["Idempotent-Replayed"] == "true"
    other = await client.post(url, json={"count": 4}, headers={**h, "Idempotency-Key": "send-1"})
    assert_error(other, 422, "idempotency_key_reused")
    # {} and no body are the single claim, as before.
    for kwargs in ({"json": {}}, {}):
        single = await client.post(url, headers=h, **kwargs)
        assert single.status_code == 200
        assert set(single.json()) == {"code", "pool_id", "issued_at", "replayed", "lease"}


async def test_route_refuses_too_many_and_partial_takes_the_rest(client: Client, tenant: Tenant) -> None:
    url, h = f"/v1/pools/{tenant.pool.id}/claim", tenant.headers
    refused = assert_error(await client.post(url, json={"count": 11}, headers=h), 409, "pool_exhausted")
    assert refused["details"] == {"pool_id": tenant.pool.id, "requested": 11, "available": 10}
    rest = await client.post(url, json={"count": 11, "partial": True}, headers=h)
    assert rest.status_code == 200 and rest.json()["count"] == 10
    assert_error(await client.post(url, json={"count": 1, "partial": True}, headers=h), 409, "pool_exhausted")


@pytest.mark.parametrize(
    "body",
    [
        {"count": 0},
        {"count": 10_001},
        {"count": 2.5},
        {"count": 3, "partial": "yes"},
        {"partial": True},
        {"count": 3, "surprise": 1},
        [3],
    ],
)
async def test_route_refuses_bad_bodies_and_takes_nothing(
    client: Client, store: Store, tenant: Tenant, body: Any
) -> None:
    answer = await client.post(f"/v1/pools/{tenant.pool.id}/claim", json=body, headers=tenant.headers)
    assert_error(answer, 400, "invalid_input")
    assert await state_counts(store, tenant.pool.id) == {"available": 10, "issued": 0, "redeemed": 0}


async def test_route_refuses_count_with_a_lease(client: Client, store: Store, tenant: Tenant) -> None:
    url = f"/v1/pools/{tenant.pool.id}/claim?lease_seconds=60"
    answer = await client.post(url, json={"count": 2}, headers=tenant.headers)
    assert assert_error(answer, 400, "invalid_input")["details"]["field"] == "lease_seconds"
    assert await state_counts(store, tenant.pool.id) == {"available": 10, "issued": 0, "redeemed": 0}


async def test_another_accounts_pool_is_not_found(
    client: Client, store: Store, tenant: Tenant, other: Tenant
) -> None:
    answer = await client.post(f"/v1/pools/{other.pool.id}/claim", json={"count": 2}, headers=tenant.headers)
    assert_error(answer, 404, "pool_not_found")
    assert await state_counts(store, other.pool.id) == {"available": 3, "issued": 0, "redeemed": 0}


@pytest.mark.parametrize("partial", [False, True])
async def test_concurrent_bulk_claims_hand_out_each_code_once(
    client: Client, store: Store, partial: bool
) -> None:
    """40 concurrent claims of 500 on 12,000 codes (12,250 with partial): 24 get 500, 16 get 409 with
    nothing taken (with partial: one gets the last 250, 15 get 409); no code twice; counters exact."""
    total = 12_000 + (250 if partial else 0)
    owner = await make_tenant(store, "bulk", [f"B{i:06d}" for i in range(total)])
    url = f"/v1/pools/{owner.pool.id}/claim"

    async def claim(index: int) -> httpx.Response:
        body = {"count": 500, "partial": partial}
        return await client.post(url, json=body, headers={**owner.headers, "Idempotency-Key": f"c{index}"})

    answers = await asyncio.gather(*[claim(i) for i in range(40)])
    served = [answer.json()["codes"] for answer in answers if answer.status_code == 200]
    refused = [answer for answer in answers if answer.status_code != 200]
    assert sorted(map(len, served)) == [250] * partial + [500] * 24
    assert len(refused) == 16 - partial
    for answer in refused:
        assert_error(answer, 409, "pool_exhausted")
    handed_out = [code for codes in served for code in codes]
    assert len(set(handed_out)) == len(handed_out) == total
    assert await state_counts(store, owner.pool.id) == {"available": 0, "issued": total, "redeemed": 0}
    await assert_counters_exact(store, owner.account, owner.pool.id)
