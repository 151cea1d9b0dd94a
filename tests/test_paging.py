"""Every native list pages the same way (issue 17): `limit` and `cursor` in, `next_cursor` and `has_more`
out; a walk sees each item once, whatever is inserted meanwhile. On both engines."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from promopool import service
from promopool.storage import Store
from tests.conftest import Tenant
from tests.helpers import assert_error

Client = httpx.AsyncClient


async def walk(client: Client, tenant: Tenant, url: str, field: str, limit: int) -> list[list[Any]]:
    """Every page of the list at ``url``, following next_cursor until has_more is false."""
    pages: list[list[Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit} if cursor is None else {"limit": limit, "cursor": cursor}
        answer = await client.get(url, params=params, headers=tenant.headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        pages.append(body[field])
        assert (body["next_cursor"] is not None) == body["has_more"]
        if not body["has_more"]:
            return pages
        cursor = body["next_cursor"]


async def add_pools(client: Client, tenant: Tenant, names: list[str]) -> None:
    for name in names:
        assert (
            await client.post("/v1/pools", json={"name": name}, headers=tenant.headers)
        ).status_code == 201


async def test_pools_page_in_id_order(client: Client, tenant: Tenant, other: Tenant) -> None:
    await add_pools(client, tenant, ["p2", "p3", "p4", "p5"])
    pages = await walk(client, tenant, "/v1/pools", "pools", limit=2)
    assert [[p["name"] for p in page] for page in pages] == [["acme-pool", "p2"], ["p3", "p4"], ["p5"]]
    whole = (await client.get("/v1/pools", headers=tenant.headers)).json()
    assert len(whole["pools"]) == 5 and whole["has_more"] is False and whole["next_cursor"] is None


async def test_a_page_that_ends_the_list_says_so(client: Client, tenant: Tenant) -> None:
    """Exactly `limit` left: has_more is false, no empty page to fetch."""
    await add_pools(client, tenant, ["p2"])
    pages = await walk(client, tenant, "/v1/pools", "pools", limit=2)
    assert len(pages) == 1 and len(pages[0]) == 2


async def test_pools_created_during_a_walk_never_shift_it(client: Client, tenant: Tenant) -> None:
    await add_pools(client, tenant, ["p2", "p3"])
    first = (await client.get("/v1/pools", params={"limit": 2}, headers=tenant.headers)).json()
    await add_pools(client, tenant, ["p4"])
    second = await client.get(
        "/v1/pools", params={"limit": 2, "cursor": first["next_cursor"]}, headers=tenant.headers
    )
    assert [p["name"] for p in second.json()["pools"]] == ["p3", "p4"]


async def test_keys_page(client: Client, tenant: Tenant) -> None:
    for name in ("k2", "k3"):
        assert (await client.post("/v1/keys", json={"name": name}, headers=tenant.headers)).status_code == 201
    pages = await walk(client, tenant, "/v1/keys", "keys", limit=2)
    assert [len(page) for page in pages] == [2, 1]
    assert [k["name"] for page in pages for k in page][1:] == ["k2", "k3"]


async def test_codes_page_with_has_more(client: Client, tenant: Tenant) -> None:
    url = f"/v1/pools/{tenant.pool.id}/codes"
    pages = await walk(client, tenant, url, "codes", limit=4)
    assert [len(page) for page in pages] == [4, 4, 2]
    assert [c["code"] for page in pages for c in page] == [f"CODE{i:03d}" for i in range(10)]


async def test_redemptions_page_by_cursor_and_by_the_deprecated_after(
    client: Client, store: Store, tenant: Tenant
) -> None:
    pool = tenant.pool
    await service.update_pool(store, account=tenant.account, pool_id=pool.id, max_uses=5)
    for _ in range(3):
        done = await client.post("/v1/codes/redeem", json={"code": "CODE000"}, headers=tenant.headers)
        assert done.status_code == 201, done.text
    url = f"/v1/pools/{pool.id}/codes/CODE000/redemptions"
    pages = await walk(client, tenant, url, "redemptions", limit=2)
    ids = [r["id"] for page in pages for r in page]
    assert [len(page) for page in pages] == [2, 1] and ids == sorted(ids)
    first = (await client.get(url, params={"limit": 2}, headers=tenant.headers)).json()
    assert first["next_after"] == ids[1]  # the deprecated field, beside next_cursor
    by_after = await client.get(
        url, params={"limit": 2, "after": first["next_after"]}, headers=tenant.headers
    )
    assert [r["id"] for r in by_after.json()["redemptions"]] == ids[2:]
    both = await client.get(
        url, params={"after": ids[0], "cursor": first["next_cursor"]}, headers=tenant.headers
    )
    assert_error(both, 400, "invalid_input")


@pytest.mark.parametrize("url", ["/v1/pools", "/v1/keys"])
async def test_a_cursor_that_is_no_cursor_is_refused(client: Client, tenant: Tenant, url: str) -> None:
    for cursor in ("not-base64!", "eA", "LTE"):  # bad characters; "x"; "-1"
        assert_error(
            await client.get(url, params={"cursor": cursor}, headers=tenant.headers), 400, "invalid_input"
        )
    assert_error(await client.get(url, params={"limit": 0}, headers=tenant.headers), 400, "invalid_input")
