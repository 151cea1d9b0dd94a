"""The claim fast lane (api/native/fast_claim.py) against the documented route, on both engines.

Two apps share one store: ``fast`` as served, ``route`` with the fast lane off. Requests that change
nothing (errors, Idempotency-Key replays) are sent to both and must get the same answer; a first claim on
one is replayed on the other. Which requests the lane answers itself, and which it leaves to the route,
is checked on the lane alone, with the app behind it replaced by a recorder.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from promopool import service
from promopool.api.app import create_app
from promopool.api.auth import Authenticator
from promopool.api.native.fast_claim import fast_claims
from promopool.config import Settings
from promopool.domain import PoolSettings
from promopool.storage import Store
from tests.conftest import Tenant, make_tenant

Answer = tuple[int, dict[str, str], Any]


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://promopool.test")


@pytest.fixture
async def both(store: Store, database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    settings = Settings(database_url=database_url)
    async with (
        _client(create_app(settings, store=store)) as fast,
        _client(create_app(settings, store=store, fast_claim=False)) as route,
    ):
        yield fast, route


def answer(response: httpx.Response) -> Answer:
    """Status, headers and body; the length checked here, so that answers of other lengths compare."""
    assert response.headers["content-length"] == str(len(response.content))
    headers = {k: v for k, v in response.headers.items() if k not in ("x-request-id", "content-length")}
    return response.status_code, headers, response.json()


async def test_errors_are_answered_alike(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient], store: Store, tenant: Tenant, other: Tenant
) -> None:
    fast, route = both
    empty = await service.create_pool(store, account=tenant.account, name="empty", settings=PoolSettings())
    await fast.post(f"/v1/pools/{tenant.pool.id}/claim", headers={**tenant.headers, "Idempotency-Key": "k"})
    cases = [
        (f"/v1/pools/{empty.id}/claim", tenant.headers, 409),  # exhausted
        (f"/v1/pools/{other.pool.id}/claim", tenant.headers, 404),  # another account's pool
        ("/v1/pools/999999/claim", tenant.headers, 404),
        (f"/v1/pools/{empty.id}/claim", {**tenant.headers, "Idempotency-Key": "k"}, 422),  # key reused
        (f"/v1/pools/{tenant.pool.id}/claim", {"Authorization": "Bearer pp_unknown"}, 401),
        (f"/v1/pools/{tenant.pool.id}/claim", {"Authorization": "Basic eDp5"}, 401),
        (f"/v1/pools/{tenant.pool.id}/claim", {}, 401),
        (f"/v1/pools/{tenant.pool.id}/claim?lease_seconds=0", tenant.headers, 400),
        (f"/v1/pools/{tenant.pool.id}/claim", {**tenant.headers, "Idempotency-Key": "x" * 256}, 400),
        (f"/v1/pools/{2**53}/claim", tenant.headers, 400),
    ]
    before = await store.get_pool(account_id=tenant.account.id, pool_id=tenant.pool.id)
    for path, headers, status in cases:
        first, second = (
            answer(await fast.post(path, headers=headers)),
            answer(await route.post(path, headers=headers)),
        )
        assert first == second, path
        assert first[0] == status, (path, first)
    assert await store.get_pool(account_id=tenant.account.id, pool_id=tenant.pool.id) == before


async def test_claims_and_replays_are_answered_alike(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient], tenant: Tenant
) -> None:
    fast, route = both
    url = f"/v1/pools/{tenant.pool.id}/claim"
    for first, then in ((fast, route), (route, fast)):
        headers = {**tenant.headers, "Idempotency-Key": f"order-{id(first)}"}
        status, claimed_headers, claimed = answer(await first.post(url, headers=headers))
        assert status == 200 and claimed["replayed"] is False
        replay = answer(await then.post(url, headers=headers))
        assert replay == (
            200,
            {**claimed_headers, "idempotent-replayed": "true"},
            {**claimed, "replayed": True},
        )
        assert replay == answer(await first.post(url, headers=headers))
    plain = answer(await fast.post(url, headers=tenant.headers))
    assert plain[0] == 200 and plain[2]["code"] == "CODE002"
    assert plain[1] == {"content-type": "application/json"}


class Recorder:
    """The app behind the lane: records what was passed on."""

    def __init__(self) -> None:
        self.passed: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.passed.append(
            scope["path"] + ("?" + scope["query_string"].decode() if scope["query_string"] else "")
        )
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def test_what_the_lane_answers_and_what_it_passes_on(store: Store) -> None:
    tenant = await make_tenant(store, "lane", [f"L{i}" for i in range(10)])
    recorder = Recorder()
    lane = fast_claims(recorder, store=store, auth=Authenticator(store, ttl=0))
    url = f"/v1/pools/{tenant.pool.id}/claim"
    async with _client(lane) as client:
        answered = [
            await client.post(url, headers=tenant.headers),
            await client.post(
                url, headers={**tenant.headers, "Idempotency-Key": "a b ~ \xe9".encode("latin-1")}
            ),
            await client.post(url, headers={**tenant.headers, "Content-Length": "0"}),
            await client.post("/v1/pools/424242/claim", headers=tenant.headers),  # answered: 404
        ]
        assert [r.status_code for r in answered] == [200, 200, 200, 404]
        assert recorder.passed == []
        passed_on = [
            client.post(url + "?lease_seconds=60", headers=tenant.headers),
            client.post(url, headers=tenant.headers, content=b"{}"),
            client.post(url, headers={"Authorization": "Bearer pp_nobody"}),
            client.post(url, headers={"Authorization": tenant.headers["Authorization"] + "x"}),
            client.post(url),
            client.post(url, headers={**tenant.headers, "Idempotency-Key": ""}),
            client.post(url, headers={**tenant.headers, "Idempotency-Key": "\x7f"}),
            client.post(url, headers={**tenant.headers, "Idempotency-Key": "k" * 256}),
            client.post(
                url, headers=[*tenant.headers.items(), ("Idempotency-Key", "a"), ("Idempotency-Key", "b")]
            ),
            client.get(url, headers=tenant.headers),
            client.post(url + "/", headers=tenant.headers),
            client.post("/v1/pools/0/claim", headers=tenant.headers),
            client.post("/v1/pools/01/claim", headers=tenant.headers),
            client.post(f"/v1/pools/{2**53}/claim", headers=tenant.headers),
        ]
        for request in passed_on:
            assert (await request).status_code == 299
    assert len(recorder.passed) == len(passed_on)
    pool = await store.get_pool(account_id=tenant.account.id, pool_id=tenant.pool.id)
    assert (
        pool is not None and pool.counts.issued == 3
    )  # the three answered claims, nothing for what was passed on


async def test_a_body_is_the_routes_and_answered_alike(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient], tenant: Tenant
) -> None:
    """A bulk claim (a body) passes the lane to the route, from either app alike; `{}` is a plain claim."""
    fast, route = both
    url = f"/v1/pools/{tenant.pool.id}/claim"
    headers = {**tenant.headers, "Idempotency-Key": "bulk"}
    status, bulk_headers, bulk = answer(await fast.post(url, json={"count": 2}, headers=headers))
    assert status == 200 and bulk["codes"] == ["CODE000", "CODE001"]
    replay = answer(await route.post(url, json={"count": 2}, headers=headers))
    assert replay == (200, {**bulk_headers, "idempotent-replayed": "true"}, {**bulk, "replayed": True})
    plain = answer(await fast.post(url, json={}, headers=tenant.headers))
    assert plain[0] == 200 and plain[2]["code"] == "CODE002"
    assert plain[2].keys() == answer(await fast.post(url, headers=tenant.headers))[2].keys()
