"""Recipient-bound claims on both engines, through the app: one code per (pool, recipient) whatever the
retries and concurrency, bulk recipients, the holder it makes, the listing and its isolation."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import httpx
import pytest

from promopool import service
from promopool.domain import PoolSettings
from promopool.domain.errors import InvalidInput
from promopool.storage import Store
from tests.conftest import Tenant, make_tenant


def claim_url(tenant: Tenant) -> str:
    return f"/v1/pools/{tenant.pool.id}/claim"


async def claim_for(client: httpx.AsyncClient, tenant: Tenant, body: dict[str, object]) -> httpx.Response:
    return await client.post(claim_url(tenant), json=body, headers=tenant.headers)


async def pool_counts(client: httpx.AsyncClient, tenant: Tenant) -> tuple[int, int]:
    pool = (await client.get(f"/v1/pools/{tenant.pool.id}", headers=tenant.headers)).json()
    return pool["counts"]["available"], pool["counts"]["issued"]


async def test_the_same_recipient_gets_the_same_code(client: httpx.AsyncClient, tenant: Tenant) -> None:
    first = await claim_for(client, tenant, {"recipient": "customer-42"})
    again = await claim_for(client, tenant, {"recipient": "customer-42"})
    other = await claim_for(client, tenant, {"recipient": "customer-43"})
    assert first.status_code == again.status_code == other.status_code == 200
    assert first.json()["replayed"] is False and "Idempotent-Replayed" not in first.headers
    assert again.json()["code"] == first.json()["code"] and again.json()["replayed"] is True
    assert again.headers["Idempotent-Replayed"] == "true"
    assert other.json()["code"] != first.json()["code"]
    assert await pool_counts(client, tenant) == (8, 2)


async def test_64_concurrent_claims_for_one_recipient_take_one_code(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    answers = await asyncio.gather(*(claim_for(client, tenant, {"recipient": "r"}) for _ in range(64)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["code"] for a in answers}) == 1
    assert sum(not a.json()["replayed"] for a in answers) == 1
    assert await pool_counts(client, tenant) == (9, 1)


async def test_a_recipient_keeps_its_code_beyond_idempotency_keys(
    client: httpx.AsyncClient, store: Store, tenant: Tenant
) -> None:
    async def keyed(recipient: str, key: str) -> httpx.Response:
        headers = {**tenant.headers, "Idempotency-Key": key}
        return await client.post(claim_url(tenant), json={"recipient": recipient}, headers=headers)

    first, with_key, other_key = await keyed("r", "k1"), await keyed("r", "k1"), await keyed("r", "k2")
    purged = await service.purge_idempotency_keys(store, ttl=timedelta(hours=-1))  # every record forgotten
    after_purge = await claim_for(client, tenant, {"recipient": "r"})
    answers = [first, with_key, other_key, after_purge]
    assert purged == 2 and len({a.json()["code"] for a in answers}) == 1
    assert [a.json()["replayed"] for a in answers] == [False, True, True, True]
    assert (await keyed("s", "k3")).status_code == 200
    refused = await keyed("t", "k3")  # the key of another request
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "idempotency_key_reused"
    assert await pool_counts(client, tenant) == (8, 2)


@pytest.mark.parametrize(
    "body",
    [
        {"recipient": ""},
        {"recipient": "a\x00b"},
        {"recipient": "line\nbreak"},
        {"recipient": "x" * 256},
        {"recipient": 42},
        {"recipients": []},
        {"recipients": ["ok", "bad\x00"]},
        {"recipients": ["r"] * 10_001},
        {"recipient": "a", "recipients": ["b"]},
        {"recipient": "a", "lease_seconds": 0},
        {"recipient": "a", "unknown": 1},
    ],
)
async def test_bad_recipients_are_refused_and_take_nothing(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, object]
) -> None:
    answer = await claim_for(client, tenant, body)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_input"
    assert await pool_counts(client, tenant) == (10, 0)


async def test_bad_recipients_are_refused_by_the_service(store: Store, tenant: Tenant) -> None:
    for bad in ["", "a\x00b", "tab\there", "x" * 256]:
        with pytest.raises(InvalidInput):
            await service.claim(store, account=tenant.account, pool_id=tenant.pool.id, recipient=bad)
        with pytest.raises(InvalidInput):
            await service.claim_for_recipients(
                store, account=tenant.account, pool_id=tenant.pool.id, recipients=["fine", bad]
            )
    with pytest.raises(InvalidInput):
        await service.recipient_codes(store, account=tenant.account, recipient="a\x00b")


async def test_bulk_recipients_with_repeats(client: httpx.AsyncClient, tenant: Tenant) -> None:
    earlier = (await claim_for(client, tenant, {"recipient": "b"})).json()["code"]
    answer = await claim_for(client, tenant, {"recipients": ["a", "b", "a", "c", "b"]})
    assert answer.status_code == 200
    body = answer.json()
    assert [item["recipient"] for item in body["recipients"]] == ["a", "b", "a", "c", "b"]
    codes = [item["code"] for item in body["recipients"]]
    assert codes[0] == codes[2] and codes[1] == codes[4] == earlier and len(set(codes)) == 3
    assert [item["replayed"] for item in body["recipients"]] == [False, True, True, False, True]
    assert body["replayed"] is False and "Idempotent-Replayed" not in answer.headers
    again = await claim_for(client, tenant, {"recipients": ["c", "a"]})
    assert [item["code"] for item in again.json()["recipients"]] == [codes[3], codes[0]]
    assert again.json()["replayed"] is True and again.headers["Idempotent-Replayed"] == "true"
    assert await pool_counts(client, tenant) == (7, 3)


async def test_bulk_recipients_beyond_the_pool_take_nothing(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    held = (await claim_for(client, tenant, {"recipient": "r0"})).json()["code"]
    too_many = await claim_for(client, tenant, {"recipients": [f"r{i}" for i in range(11)]})
    assert too_many.status_code == 409 and too_many.json()["error"]["code"] == "pool_exhausted"
    assert await pool_counts(client, tenant) == (9, 1)
    exactly = await claim_for(client, tenant, {"recipients": [f"r{i}" for i in range(10)]})
    assert exactly.status_code == 200 and exactly.json()["recipients"][0]["code"] == held
    assert len({item["code"] for item in exactly.json()["recipients"]}) == 10
    assert await pool_counts(client, tenant) == (0, 10)


@pytest.mark.slow
async def test_300_recipients_claimed_3_times_concurrently(client: httpx.AsyncClient, store: Store) -> None:
    tenant = await make_tenant(store, "bulk", [f"B{i:04d}" for i in range(400)])
    recipients = [f"customer-{i}" for i in range(300)] * 3
    random.Random(18).shuffle(recipients)
    answers = await asyncio.gather(*(claim_for(client, tenant, {"recipient": r}) for r in recipients))
    assert {a.status_code for a in answers} == {200}
    by_recipient: dict[str, set[str]] = {}
    for recipient, answer in zip(recipients, answers, strict=True):
        by_recipient.setdefault(recipient, set()).add(answer.json()["code"])
    assert all(len(codes) == 1 for codes in by_recipient.values())
    assert len({next(iter(codes)) for codes in by_recipient.values()}) == 300
    assert await pool_counts(client, tenant) == (100, 300)  # no other code issued


async def test_the_recipient_holds_its_code_in_a_holder_only_pool(
    client: httpx.AsyncClient, store: Store, tenant: Tenant
) -> None:
    pool = await service.create_pool(
        store, account=tenant.account, name="held", settings=PoolSettings(holder_only=True)
    )
    await service.import_codes(store, account=tenant.account, pool_id=pool.id, values=["HELD1", "HELD2"])
    url = f"/v1/pools/{pool.id}/claim"
    code = (await client.post(url, json={"recipient": "alice"}, headers=tenant.headers)).json()["code"]

    async def redeem(profile: str) -> httpx.Response:
        body = {"code": code, "profile": profile}
        return await client.post("/v1/codes/redeem", json=body, headers=tenant.headers)

    refused = await redeem("mallory")
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "code_unusable"
    assert (await redeem("alice")).status_code in (200, 201)
    details = (await client.get(f"/v1/pools/{pool.id}/codes/{code}", headers=tenant.headers)).json()
    assert details["state"] == "redeemed"
    again = await client.post(url, json={"recipient": "alice"}, headers=tenant.headers)
    assert again.json()["code"] == code and again.json()["replayed"] is True  # for as long as the pool exists


async def test_listing_a_recipients_codes_is_paged_and_isolated(
    client: httpx.AsyncClient, store: Store, tenant: Tenant, other: Tenant
) -> None:
    pools = [tenant.pool]
    for n in range(2):
        pool = await service.create_pool(store, account=tenant.account, name=f"p{n}", settings=PoolSettings())
        values = [f"P{n}A", f"P{n}B"]
        await service.import_codes(store, account=tenant.account, pool_id=pool.id, values=values)
        pools.append(pool)
    mine = {}
    for pool in pools:
        url = f"/v1/pools/{pool.id}/claim"
        answer = await client.post(url, json={"recipient": "bob"}, headers=tenant.headers)
        mine[pool.id] = answer.json()["code"]
    theirs = (await claim_for(client, other, {"recipient": "bob"})).json()["code"]
    third = await make_tenant(store, "third")

    async def page(tenant_: Tenant, query: str) -> dict[str, object]:
        answer = await client.get(f"/v1/recipients/bob/codes?{query}", headers=tenant_.headers)
        assert answer.status_code == 200
        body: dict[str, object] = answer.json()
        return body

    first = await page(tenant, "limit=2")
    assert first["has_more"] is True and first["next_cursor"]
    second = await page(tenant, f"limit=2&cursor={first['next_cursor']}")
    assert second["has_more"] is False and second["next_cursor"] is None
    listed = [*first["codes"], *second["codes"]]  # type: ignore[misc]
    assert {item["pool_id"]: item["code"] for item in listed} == mine
    assert all(item["state"] == "issued" and item["lease"] is None for item in listed)
    assert [item["code"] for item in (await page(other, ""))["codes"]] == [theirs]  # type: ignore[attr-defined]
    nobody = await page(tenant, "")
    assert nobody["codes"] and (await page(tenant, "cursor=999999"))["codes"] == []
    unknown = await client.get("/v1/recipients/nobody/codes", headers=tenant.headers)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    assert (await client.get("/v1/recipients/bob/codes", headers=third.headers)).status_code == 404


async def test_another_account_claims_nothing_for_a_recipient(
    client: httpx.AsyncClient, tenant: Tenant, other: Tenant
) -> None:
    for body in ({"recipient": "r"}, {"recipients": ["r", "s"]}):
        answer = await client.post(claim_url(tenant), json=body, headers=other.headers)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "pool_not_found"
    assert await pool_counts(client, tenant) == (10, 0)
    assert (await client.get("/v1/recipients/r/codes", headers=tenant.headers)).status_code == 404


async def test_concurrent_recipients_beyond_the_pool(client: httpx.AsyncClient, tenant: Tenant) -> None:
    """Separate requests, batched together or not: each recipient gets its code or 409, never another's."""
    recipients = [f"r{i}" for i in range(15)] * 2
    answers = await asyncio.gather(*(claim_for(client, tenant, {"recipient": r}) for r in recipients))
    codes: dict[str, set[str]] = {}
    for recipient, answer in zip(recipients, answers, strict=True):
        if answer.status_code == 200:
            codes.setdefault(recipient, set()).add(answer.json()["code"])
        else:
            assert answer.status_code == 409 and answer.json()["error"]["code"] == "pool_exhausted"
    assert len(codes) == 10 and all(len(held) == 1 for held in codes.values())
    assert len({next(iter(held)) for held in codes.values()}) == 10
    assert await pool_counts(client, tenant) == (0, 10)
