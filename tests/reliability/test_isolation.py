"""Isolation over every route of the whole app (discovered from its route table, so the dialects' routes
join by themselves; see routes.py), on both engines.

- A route that names a resource, called with another account's credentials: 401/403/404.
- Any route called with another account's credentials returns nothing of the owner's.
- Every non-public route refuses missing, unknown and malformed credentials with 401.
- The owner's data is unchanged by all of it.
"""

from __future__ import annotations

import httpx
import pytest

from promopool import service
from promopool.api.app import create_app
from promopool.config import Settings
from promopool.domain.generation import CodeSpec
from promopool.storage import Store
from tests.conftest import Tenant
from tests.helpers import snapshot
from tests.reliability.conftest import Tally
from tests.reliability.integrity import table_dump
from tests.reliability.routes import CREDENTIALS, NO_ACCOUNT, REFUSED, Route, discover

pytestmark = [pytest.mark.reliability]


def all_routes() -> list[Route]:
    return discover(create_app(Settings()))


def test_every_route_is_covered() -> None:
    routes = all_routes()
    uncovered = [r for r in routes if not r.public and not r.separately_tested and r.family is None]
    assert uncovered == [], f"register how these routes take credentials in routes.CREDENTIALS: {uncovered}"
    assert Route("POST", "/v1/pools/{pool_id:int}/claim") in routes
    assert len([r for r in routes if not r.public]) >= 11


async def owner_resources(store: Store, owner: Tenant) -> None:
    """A redemption, a lease and a job of the owner's, the first of each in the database (id 1, which
    routes.PATH_VALUES names), and a recipient's code."""
    redeemed = await service.redeem(store, account=owner.account, code="CODE009")
    leased = await service.claim(store, account=owner.account, pool_id=owner.pool.id, lease_seconds=600)
    await service.claim(store, account=owner.account, pool_id=owner.pool.id, recipient="customer-42")
    job = await service.generate_codes(
        store, account=owner.account, pool_id=owner.pool.id, spec=CodeSpec.of(), count=1
    )
    assert leased.lease is not None
    assert (owner.pool.id, redeemed.redemption.id, leased.lease.id, job.id) == (1, 1, 1, 1)


def owner_traces(owner: Tenant) -> list[str]:
    """What must never appear in an answer to another account."""
    return [owner.account.name + "-pool", owner.account.public_key, "CODE00", owner.api_key]


async def test_another_accounts_credentials_reach_nothing(
    client: httpx.AsyncClient, store: Store, tenant: Tenant, other: Tenant, tally: Tally, database_url: str
) -> None:
    await owner_resources(store, tenant)
    before = await snapshot(store, tenant)
    calls = 0
    for route in all_routes():
        if route.public or route.separately_tested:
            continue
        assert route.family is not None
        credentials = CREDENTIALS[route.family](other)
        response = await client.request(**route.request(tenant, credentials))
        where = f"{route.method} {route.template} -> {response.status_code} {response.text[:200]}"
        if route.only_refuses:
            assert response.status_code == 405, where
        elif route.names_a_resource:
            assert response.status_code in (401, 403, 404), where
        for trace in owner_traces(tenant):
            assert trace not in response.text, f"{where} shows the owner's {trace!r}"
        calls += 1
    assert await snapshot(store, tenant) == before
    tally.add(
        f"isolation ({database_url.partition(':')[0]}): requests with another account's credentials", calls
    )


async def test_no_credentials_no_access(
    client: httpx.AsyncClient, store: Store, tenant: Tenant, tally: Tally, database_url: str
) -> None:
    before = await table_dump(database_url)
    calls = 0
    for route in all_routes():
        if route.public or route.separately_tested:
            continue
        assert route.family is not None
        for credentials in NO_ACCOUNT[route.family]:
            response = await client.request(**route.request(tenant, credentials))
            where = f"{route.method} {route.template} {credentials} -> {response.status_code} {response.text}"
            assert response.status_code in ({405} if route.only_refuses else REFUSED[route.family]), where
            if route.family == "/v1/":
                assert response.json()["error"]["code"] == "unauthenticated", where
                assert response.headers["www-authenticate"] == "Bearer", where
            calls += 1
    assert await table_dump(database_url) == before
    tally.add(f"isolation ({database_url.partition(':')[0]}): requests without valid credentials", calls)


async def test_public_routes_need_nothing(client: httpx.AsyncClient) -> None:
    for route in all_routes():
        if route.public and "{" not in route.template:
            response = await client.request(route.method, route.template)
            assert response.status_code == 200, (route, response.status_code)
