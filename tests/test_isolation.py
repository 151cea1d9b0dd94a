"""Tenant isolation: every native route, called with another account's key, answers 403/404 and changes
nothing of the owner's data."""

from __future__ import annotations

import re

import httpx
from litestar.routes import HTTPRoute

from promopool import service
from promopool.api.app import create_app
from promopool.config import Settings
from promopool.domain.generation import CodeSpec
from promopool.storage import Store
from tests.conftest import Tenant
from tests.helpers import snapshot

BODIES = {
    ("POST", "/v1/pools/{pool_id:int}/codes"): {"json": ["INTRUDER"]},
    ("PATCH", "/v1/pools/{pool_id:int}"): {"json": {"name": "owned", "max_uses": 99}},
    ("PATCH", "/v1/pools/{pool_id:int}/codes/{code:str}"): {"json": {"description": "owned"}},
    ("POST", "/v1/pools/{pool_id:int}/generate"): {"json": {"count": 5}},
}


def foreign_routes() -> list[tuple[str, str]]:
    """Every (method, path) of the native API that names a resource (a path parameter)."""
    app = create_app(Settings())
    found = []
    for route in app.routes:
        if isinstance(route, HTTPRoute) and route.path.startswith("/v1/") and "{" in route.path:
            found += [
                (method, route.path) for method in sorted(route.methods) if method not in ("HEAD", "OPTIONS")
            ]
    return found


def test_route_discovery_sees_the_native_api() -> None:
    routes = foreign_routes()
    assert ("POST", "/v1/pools/{pool_id:int}/claim") in routes
    assert ("DELETE", "/v1/pools/{pool_id:int}/codes/{code:str}") in routes
    assert len(routes) >= 8


async def test_every_route_refuses_another_account(
    client: httpx.AsyncClient, store: Store, tenant: Tenant, other: Tenant
) -> None:
    redeemed = await service.redeem(store, account=tenant.account, code="CODE000")
    leased = await service.claim(store, account=tenant.account, pool_id=tenant.pool.id, lease_seconds=600)
    assert leased.lease is not None
    await service.claim(store, account=tenant.account, pool_id=tenant.pool.id, recipient="customer-42")
    job = await service.generate_codes(
        store, account=tenant.account, pool_id=tenant.pool.id, spec=CodeSpec.of(), count=1
    )
    [key] = await service.list_keys(store, account=tenant.account)
    before = await snapshot(store, tenant)
    calls = 0
    for method, template in foreign_routes():
        path = re.sub(r"\{pool_id:int\}", str(tenant.pool.id), template)
        path = re.sub(r"\{code:str\}", "CODE000", path)
        path = re.sub(r"\{redemption_id:int\}", str(redeemed.redemption.id), path)
        path = re.sub(r"\{lease_id:int\}", str(leased.lease.id), path)
        path = re.sub(r"\{job_id:int\}", str(job.id), path)
        path = re.sub(r"\{key_id:int\}", str(key.id), path)
        path = re.sub(r"\{recipient:str\}", "customer-42", path)
        assert "{" not in path, f"no owner's resource to try {template} on"
        response = await client.request(
            method, path, headers=other.headers, **BODIES.get((method, template), {})
        )
        assert response.status_code in (403, 404), (method, path, response.status_code, response.text)
        assert response.json()["error"]["code"] in (
            "forbidden",
            "pool_not_found",
            "not_found",
            "redemption_not_found",
            "lease_not_found",
            "job_not_found",
            "api_key_not_found",
        )
        calls += 1
    assert calls == len(foreign_routes())
    assert await snapshot(store, tenant) == before
    # and the other account's own view does not include the owner's pool
    listed = (await client.get("/v1/pools", headers=other.headers)).json()["pools"]
    assert [p["id"] for p in listed] == [other.pool.id]
