"""/metrics parses with the Prometheus text parser, and its counters move by exactly the work done."""

from __future__ import annotations

import httpx
import pytest

from promopool import service, serving
from promopool.api.app import create_app
from promopool.config import Settings
from promopool.storage import Store
from tests.conftest import Tenant
from tests.helpers import moved, scrape, value

Client = httpx.AsyncClient


async def test_counters_move_by_the_work_done(client: Client, tenant: Tenant) -> None:
    h, pool = tenant.headers, str(tenant.pool.id)
    claim_url = f"/v1/pools/{pool}/claim"
    before = await scrape(client)
    for _ in range(3):
        assert (await client.post(claim_url, headers=h)).status_code == 200
    keyed = {**h, "Idempotency-Key": "k1"}
    assert (await client.post(claim_url, headers=keyed)).status_code == 200
    assert (await client.post(claim_url, headers=keyed)).json()["replayed"] is True
    imported = await client.post(f"/v1/pools/{pool}/codes", json=["N1", "N2", "CODE000"], headers=h)
    assert imported.json()["inserted"] == 2
    refused = await client.post(f"/v1/pools/{pool}/codes", json=["N3", "\x01"], headers=h)
    assert refused.status_code == 400
    for _ in range(8):  # 10 - 4 + 2 = 8 left: all of them, then one too many
        await client.post(claim_url, headers=h)
    assert (await client.post(claim_url, headers=h)).status_code == 409
    redeemed = await client.post("/v1/codes/redeem", json={"code": "CODE000"}, headers=h)
    assert redeemed.status_code == 201
    after = await scrape(client)

    assert moved(before, after, "promopool_claims_total", pool=pool, result="issued") == 12
    assert moved(before, after, "promopool_claims_total", pool=pool, result="replayed") == 1
    assert moved(before, after, "promopool_claims_total", pool=pool, result="pool_exhausted") == 1
    assert moved(before, after, "promopool_imported_codes_total", pool=pool, result="inserted") == 2
    assert moved(before, after, "promopool_imported_codes_total", pool=pool, result="duplicate") == 1
    assert moved(before, after, "promopool_imported_codes_total", pool=pool, result="invalid") == 1
    assert moved(before, after, "promopool_imports_total", pool=pool, result="ok") == 1
    assert moved(before, after, "promopool_imports_total", pool=pool, result="refused") == 1
    assert moved(before, after, "promopool_redemptions_total", pool=pool, result="redeemed") == 1
    route = "/v1/pools/{pool_id}/claim"
    latency = "promopool_http_request_duration_seconds_count"
    assert moved(before, after, latency, method="POST", route=route, status="200") == 13
    assert moved(before, after, latency, method="POST", route=route, status="409") == 1
    assert moved(before, after, latency, method="GET", route="/metrics", status="200") == 1

    assert value(after, "promopool_database_up") == 1
    codes = "promopool_pool_codes"
    assert value(after, codes, account="acme", pool=pool, state="available") == 0
    assert value(after, codes, account="acme", pool=pool, state="issued") == 11
    assert value(after, codes, account="acme", pool=pool, state="redeemed") == 1


async def test_redemptions_and_rollbacks_reach_metrics_and_the_activity_chart(
    client: Client, store: Store, tenant: Tenant
) -> None:
    h, pool = tenant.headers, str(tenant.pool.id)
    before = await scrape(client)
    first = (await client.post("/v1/codes/redeem", json={"code": "CODE001"}, headers=h)).json()
    await client.post("/v1/codes/redeem", json={"code": "CODE002"}, headers=h)
    rolled = await client.post(f"/v1/redemptions/{first['redemption']['id']}/rollback", headers=h)
    assert rolled.status_code == 200
    after = await scrape(client)
    assert moved(before, after, "promopool_redemptions_total", pool=pool, result="redeemed") == 2
    assert moved(before, after, "promopool_redemptions_total", pool=pool, result="rolled_back") == 1
    trend = await service.pool_trend(store, account=tenant.account, pool_id=tenant.pool.id)
    assert sum(point.redemptions for point in trend.hours) == 1  # two uses, one given back


async def test_unmatched_paths_share_one_series(client: Client) -> None:
    before = await scrape(client)
    for path in ("/nope/1", "/nope/2"):
        assert (await client.get(path)).status_code == 404
    after = await scrape(client)
    latency = "promopool_http_request_duration_seconds_count"
    assert moved(before, after, latency, method="GET", route="unmatched", status="404") == 2


async def test_readiness_checks_the_database(client: Client) -> None:
    ready = await client.get("/health/ready")
    assert ready.status_code == 200 and ready.json() == {"status": "ok", "database": "ok"}


async def test_a_metrics_token_closes_metrics_to_others(store: Store, database_url: str) -> None:
    token = "scrape-" + "t" * 30
    app = create_app(Settings(database_url=database_url, metrics_token=token), store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://p.test") as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
            refused = await client.get("/metrics", headers=headers)
            assert refused.status_code == 401
            assert refused.headers["WWW-Authenticate"] == "Bearer"
            assert refused.json()["error"]["code"] == "unauthenticated"
            assert "promopool_" not in refused.text
        allowed = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert allowed.status_code == 200 and "promopool_claims_total" in allowed.text


async def test_without_a_token_metrics_stay_open(client: Client) -> None:
    assert (await client.get("/metrics")).status_code == 200


@pytest.mark.parametrize(
    ("host", "token", "warned"),
    [
        ("0.0.0.0", None, True),
        ("192.0.2.7", None, True),
        ("::", None, True),
        ("shop.example", None, True),
        ("0.0.0.0", "t" * 32, False),
        ("127.0.0.1", None, False),
        ("::1", None, False),
        ("localhost", None, False),
    ],
)
def test_serve_warns_of_open_metrics_beyond_this_host(host: str, token: str | None, warned: bool) -> None:
    found = serving.warnings(Settings(host=host, metrics_token=token))
    assert any("/metrics is open" in warning for warning in found) == warned
