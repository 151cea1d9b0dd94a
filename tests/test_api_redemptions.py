"""Validate, redeem, rollback, leases and guessing protection through the native API, on both engines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest

from promopool import service
from promopool.api.app import create_app
from promopool.config import Settings
from promopool.domain import PoolSettings
from promopool.domain.guessing import FailureBudget
from promopool.storage import Store
from tests.conftest import Tenant
from tests.helpers import assert_error, attach

Client = httpx.AsyncClient


class Ticks:
    """A monotonic clock for the guessing budget."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def client_for(
    store: Store, database_url: str, budget: FailureBudget, address: str = "10.0.0.1"
) -> AsyncIterator[Client]:
    app = create_app(Settings(database_url=database_url), store=store)
    app.state.guessing = budget
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with Client(transport=transport, base_url="http://promopool.test") as test_client:
        yield test_client


async def test_redeem_validate_and_rollback(client: Client, tenant: Tenant) -> None:
    h = tenant.headers
    valid = await client.post("/v1/codes/validate", json={"code": "CODE000", "profile": "p1"}, headers=h)
    assert valid.status_code == 200
    assert valid.json() == {
        "valid": True,
        "code": "CODE000",
        "pool_id": tenant.pool.id,
        "usage_count": 0,
        "uses_left": 1,
        "profile_uses_left": None,
        "expires_at": None,
    }
    body = {"code": "CODE000", "profile": "p1", "order_ref": "A-1", "amount": "19.90", "metadata": {"k": [1]}}
    done = await client.post("/v1/codes/redeem", json=body, headers={**h, "Idempotency-Key": "pay-9"})
    assert done.status_code == 201, done.text
    redemption = done.json()["redemption"]
    assert (redemption["code"], redemption["profile"], redemption["amount"]) == ("CODE000", "p1", "19.90")
    assert redemption["metadata"] == {"k": [1]} and redemption["rolled_back_at"] is None
    assert done.json()["usage_count"] == 1 and done.json()["replayed"] is False
    again = await client.post("/v1/codes/redeem", json=body, headers={**h, "Idempotency-Key": "pay-9"})
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["redemption"] == redemption
    number = await client.post("/v1/codes/redeem", json={"code": "CODE001", "amount": 5}, headers=h)
    assert number.status_code == 201 and number.json()["redemption"]["amount"] == "5"
    url = f"/v1/redemptions/{redemption['id']}"
    assert (await client.get(url, headers=h)).json() == redemption
    back = await client.post(f"{url}/rollback", headers=h)
    assert back.status_code == 200 and back.json()["usage_count"] == 0
    assert back.json()["redemption"]["rolled_back_at"] is not None
    assert_error(await client.post(f"{url}/rollback", headers=h), 409, "already_rolled_back")
    listed = await client.get(f"/v1/pools/{tenant.pool.id}/codes/CODE000/redemptions", headers=h)
    assert [r["id"] for r in listed.json()["redemptions"]] == [redemption["id"]]
    assert_error(await client.get("/v1/redemptions/999999", headers=h), 404, "redemption_not_found")


async def test_redeem_input_is_checked(client: Client, tenant: Tenant) -> None:
    h = tenant.headers
    for body in (
        {"code": "CODE000", "surprise": 1},
        {"code": "CODE000", "amount": "lots"},
        {"code": "CODE000", "amount": "NaN"},
        {"code": "CODE000", "metadata": ["not", "an", "object"]},
        {"code": "CODE000", "profile": "bad\u0000"},
        {"code": "CODE000", "pool_id": 0},
        {},
    ):
        assert_error(await client.post("/v1/codes/redeem", json=body, headers=h), 400, "invalid_input")
    assert (await client.get(f"/v1/pools/{tenant.pool.id}/codes/CODE000", headers=h)).json()[
        "usage_count"
    ] == 0


async def test_refusals_look_the_same_to_all_but_the_holder(
    store: Store, database_url: str, tenant: Tenant
) -> None:
    """A correct code's refusal is byte for byte a wrong code's, for a caller who does not hold it."""
    pool = await service.create_pool(
        store, account=tenant.account, name="personal", settings=PoolSettings(holder_only=True)
    )
    await service.import_codes(store, account=tenant.account, pool_id=pool.id, values=["MINE", "GONE", "OLD"])
    await attach(store, tenant.account, pool.id, "MINE", "owner")
    await service.redeem(store, account=tenant.account, code="GONE")
    expired = await service.create_pool(
        store,
        account=tenant.account,
        name="expired",
        settings=PoolSettings(expires_at=store.clock() - timedelta(days=1)),
    )
    await service.import_codes(store, account=tenant.account, pool_id=expired.id, values=["STALE"])
    answers: list[tuple[int, bytes, dict[str, str]]] = []
    async with client_for(store, database_url, FailureBudget(1000, 60)) as client:
        for path in ("/v1/codes/validate", "/v1/codes/redeem"):
            for code in ("NO-SUCH-CODE", "MINE", "GONE", "STALE"):
                response = await client.post(
                    path, json={"code": code, "profile": "stranger"}, headers=tenant.headers
                )
                # Everything but what differs per request by design (the date, the request id).
                headers = {k: v for k, v in response.headers.items() if k not in ("date", "x-request-id")}
                answers.append((response.status_code, response.content, headers))
        assert len(set(map(repr, answers))) == 1, answers
        assert answers[0][0] == 404
        assert_error(
            await client.post("/v1/codes/validate", json={"code": "NO-SUCH-CODE"}, headers=tenant.headers),
            404,
            "code_unusable",
        )
        # the holder is told the truth
        await service.update_pool(
            store, account=tenant.account, pool_id=pool.id, expires_at=store.clock() - timedelta(seconds=1)
        )
        holder = await client.post(
            "/v1/codes/redeem", json={"code": "MINE", "profile": "owner"}, headers=tenant.headers
        )
        assert_error(holder, 409, "code_expired")


async def test_failed_attempts_run_out_then_429_with_retry_after(
    store: Store, database_url: str, tenant: Tenant
) -> None:
    ticks = Ticks()
    budget = FailureBudget(3, 60, clock=ticks)  # one attempt back every 20 s
    h = tenant.headers
    async with client_for(store, database_url, budget) as client:
        for _ in range(5):  # successes and bad input cost nothing
            ok = await client.post("/v1/codes/validate", json={"code": "CODE000"}, headers=h)
            assert ok.status_code == 200
            bad = await client.post("/v1/codes/redeem", json={"code": "CODE000", "profile": ""}, headers=h)
            assert_error(bad, 400, "invalid_input")
        for guess in ("GUESS1", "GUESS2", "GUESS3"):
            assert_error(
                await client.post("/v1/codes/redeem", json={"code": guess}, headers=h), 404, "code_unusable"
            )
        limited = await client.post("/v1/codes/validate", json={"code": "CODE000"}, headers=h)
        assert_error(limited, 429, "rate_limited")
        assert limited.headers["retry-after"] == "20"
        # even a correct code is refused now, and the refusal costs nothing more
        assert_error(
            await client.post("/v1/codes/redeem", json={"code": "CODE001"}, headers=h), 429, "rate_limited"
        )
        ticks.now += 20
        assert (await client.post("/v1/codes/redeem", json={"code": "CODE001"}, headers=h)).status_code == 201
        assert (await client.post("/v1/codes/validate", json={"code": "NOPE"}, headers=h)).status_code == 404
        assert (
            await client.post("/v1/codes/validate", json={"code": "CODE002"}, headers=h)
        ).status_code == 429
    # the same key from another address is still out of attempts (per key) ...
    async with client_for(store, database_url, budget, address="10.0.0.2") as elsewhere:
        assert (
            await elsewhere.post("/v1/codes/validate", json={"code": "CODE002"}, headers=h)
        ).status_code == 429
        # ... and another key from the first address too (per address)
    second_key = await service.create_api_key(store, account=tenant.account)
    async with client_for(store, database_url, budget) as same_place:
        other = {"Authorization": f"Bearer {second_key}"}
        assert (
            await same_place.post("/v1/codes/validate", json={"code": "CODE002"}, headers=other)
        ).status_code == 429
    async with client_for(store, database_url, budget, address="10.0.0.3") as fresh:
        other = {"Authorization": f"Bearer {second_key}"}
        assert (
            await fresh.post("/v1/codes/validate", json={"code": "CODE002"}, headers=other)
        ).status_code == 200


async def test_claim_with_a_lease_then_confirm_or_release(client: Client, tenant: Tenant) -> None:
    h = tenant.headers
    claimed = await client.post(f"/v1/pools/{tenant.pool.id}/claim?lease_seconds=300", headers=h)
    assert claimed.status_code == 200
    lease = claimed.json()["lease"]
    assert lease["state"] == "active" and claimed.json()["code"] == "CODE000"
    confirmed = await client.post(f"/v1/leases/{lease['id']}/confirm", headers=h)
    assert confirmed.status_code == 200 and confirmed.json()["state"] == "confirmed"
    assert_error(await client.post(f"/v1/leases/{lease['id']}/release", headers=h), 409, "conflict")
    second = (await client.post(f"/v1/pools/{tenant.pool.id}/claim?lease_seconds=300", headers=h)).json()
    released = await client.post(f"/v1/leases/{second['lease']['id']}/release", headers=h)
    assert released.json()["state"] == "released"
    assert_error(
        await client.post(f"/v1/leases/{second['lease']['id']}/confirm", headers=h), 409, "lease_released"
    )
    assert (await client.get(f"/v1/leases/{lease['id']}", headers=h)).json()["state"] == "confirmed"
    plain = await client.post(f"/v1/pools/{tenant.pool.id}/claim", headers=h)
    assert plain.json()["lease"] is None
    for bad in ("0", "604801", "soon"):
        assert_error(
            await client.post(f"/v1/pools/{tenant.pool.id}/claim?lease_seconds={bad}", headers=h),
            400,
            "invalid_input",
        )
    assert_error(await client.post("/v1/leases/999999/confirm", headers=h), 404, "lease_not_found")


async def test_normalization_settings_and_collision_over_http(client: Client, tenant: Tenant) -> None:
    h = tenant.headers
    created = await client.post("/v1/pools", json={"name": "typed", "ignore_separators": True}, headers=h)
    pool: dict[str, Any] = created.json()
    assert (pool["case_insensitive"], pool["ignore_separators"], pool["holder_only"]) == (False, True, False)
    await client.post(f"/v1/pools/{pool['id']}/codes", json=["Ab-1", "aB1"], headers=h)
    found = await client.post("/v1/codes/validate", json={"code": "Ab 1", "pool_id": pool["id"]}, headers=h)
    assert found.json()["code"] == "Ab-1"
    refused = await client.patch(f"/v1/pools/{pool['id']}", json={"case_insensitive": True}, headers=h)
    error = assert_error(refused, 409, "normalization_collision")
    assert error["details"] == {"count": 1, "collisions": [["Ab-1", "aB1"]]}
    assert (await client.get(f"/v1/pools/{pool['id']}", headers=h)).json()["case_insensitive"] is False


async def test_concurrent_guesses_cannot_overdraw_the_budget(
    store: Store, database_url: str, tenant: Tenant
) -> None:
    async with client_for(store, database_url, FailureBudget(3, 3600)) as client:
        answers = await asyncio.gather(
            *[
                client.post("/v1/codes/redeem", json={"code": f"GUESS{i}"}, headers=tenant.headers)
                for i in range(12)
            ]
        )
    assert sorted(a.status_code for a in answers) == [404] * 3 + [429] * 9


@pytest.mark.parametrize("path", ["/v1/codes/validate", "/v1/codes/redeem"])
async def test_unauthenticated_attempts_are_refused_before_any_lookup(client: Client, path: str) -> None:
    assert_error(await client.post(path, json={"code": "CODE000"}), 401, "unauthenticated")
