"""The native REST API through an in-process client, on both engines."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Tenant
from tests.helpers import assert_error

Client = httpx.AsyncClient


async def test_pool_lifecycle(client: Client, tenant: Tenant) -> None:
    h = tenant.headers
    created = await client.post("/v1/pools", json={"name": "spring", "max_uses": 2}, headers=h)
    assert created.status_code == 201
    pool = created.json()
    assert pool["name"] == "spring" and pool["max_uses"] == 2 and pool["counts"]["total"] == 0
    listed = (await client.get("/v1/pools", headers=h)).json()["pools"]
    assert [p["id"] for p in listed] == [tenant.pool.id, pool["id"]]
    assert listed[0]["counts"] == {"available": 10, "issued": 0, "redeemed": 0, "total": 10}
    patched = await client.patch(
        f"/v1/pools/{pool['id']}", json={"public_fetch": True, "per_profile_limit": 3}, headers=h
    )
    assert patched.status_code == 200
    assert patched.json()["public_fetch"] is True and patched.json()["per_profile_limit"] == 3
    cleared = await client.patch(f"/v1/pools/{pool['id']}", json={"per_profile_limit": None}, headers=h)
    assert cleared.json()["per_profile_limit"] is None and cleared.json()["max_uses"] == 2
    assert (await client.delete(f"/v1/pools/{pool['id']}", headers=h)).status_code == 204
    assert_error(await client.get(f"/v1/pools/{pool['id']}", headers=h), 404, "pool_not_found")


async def test_import_json_text_and_csv(client: Client, tenant: Tenant) -> None:
    url = f"/v1/pools/{tenant.pool.id}/codes"
    r = await client.post(url, json=["J1", "J2", "CODE000"], headers=tenant.headers)
    assert r.json() == {"inserted": 2, "duplicates": 1, "invalid": 0, "invalid_samples": []}
    r = await client.post(url, json={"codes": ["J3"]}, headers=tenant.headers)
    assert r.json()["inserted"] == 1
    r = await client.post(
        url, content=b"T1\r\nT2\n\n  T3  \nJ1", headers={**tenant.headers, "content-type": "text/plain"}
    )
    assert r.json() == {"inserted": 3, "duplicates": 1, "invalid": 0, "invalid_samples": []}
    r = await client.post(
        url,
        content=b'code,campaign\n"C,1",x\nC2,y\n',
        headers={**tenant.headers, "content-type": "text/csv; charset=utf-8"},
    )
    assert r.json()["inserted"] == 2
    got = await client.get(f"{url}/C,1", headers=tenant.headers)
    assert got.status_code == 200 and got.json()["state"] == "available"


async def test_import_skip_invalid_reports_positions(client: Client, tenant: Tenant) -> None:
    url = f"/v1/pools/{tenant.pool.id}/codes?skip_invalid=true"
    body = b"OK1\n" + b"x" * 20_000 + b"\nOK2\nbad\x01\n"
    r = await client.post(url, content=body, headers={**tenant.headers, "content-type": "text/plain"})
    assert r.status_code == 200
    assert r.json() == {
        "inserted": 2,
        "duplicates": 0,
        "invalid": 2,
        "invalid_samples": [
            {"position": 2, "reason": "too_long"},
            {"position": 4, "reason": "control_character"},
        ],
    }


async def test_claim_and_idempotent_retry(client: Client, tenant: Tenant) -> None:
    url = f"/v1/pools/{tenant.pool.id}/claim"
    first = await client.post(url, headers={**tenant.headers, "Idempotency-Key": "abc"})
    assert first.status_code == 200
    assert first.json()["code"] == "CODE000" and first.json()["replayed"] is False
    again = await client.post(url, headers={**tenant.headers, "Idempotency-Key": "abc"})
    assert again.json()["code"] == "CODE000" and again.json()["replayed"] is True
    assert again.headers["idempotent-replayed"] == "true"
    plain = await client.post(url, headers=tenant.headers)
    assert plain.json()["code"] == "CODE001"


async def test_exhausted_pool_is_a_clear_409(client: Client, tenant: Tenant) -> None:
    url = f"/v1/pools/{tenant.pool.id}/claim"
    for _ in range(10):
        assert (await client.post(url, headers=tenant.headers)).status_code == 200
    error = assert_error(await client.post(url, headers=tenant.headers), 409, "pool_exhausted")
    assert error["details"] == {"pool_id": tenant.pool.id}


async def test_codes_list_cursor_paging(client: Client, tenant: Tenant) -> None:
    url = f"/v1/pools/{tenant.pool.id}/codes"
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(url, params=params, headers=tenant.headers)).json()
        seen += [c["code"] for c in page["codes"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"CODE{i:03d}" for i in range(10)]
    await client.post(f"/v1/pools/{tenant.pool.id}/claim", headers=tenant.headers)
    issued = (await client.get(url, params={"state": "issued"}, headers=tenant.headers)).json()
    assert [c["code"] for c in issued["codes"]] == ["CODE000"]
    assert_error(
        await client.get(url, params={"state": "nope"}, headers=tenant.headers), 400, "invalid_input"
    )
    assert_error(
        await client.get(url, params={"cursor": "%%%"}, headers=tenant.headers), 400, "invalid_input"
    )


async def test_get_and_delete_code(client: Client, tenant: Tenant) -> None:
    url = f"/v1/pools/{tenant.pool.id}/codes/CODE004"
    got = await client.get(url, headers=tenant.headers)
    assert got.json()["code"] == "CODE004" and got.json()["usage_count"] == 0
    assert (await client.delete(url, headers=tenant.headers)).status_code == 204
    assert_error(await client.get(url, headers=tenant.headers), 404, "code_not_found")


async def test_account_health_and_openapi(client: Client, tenant: Tenant) -> None:
    me = (await client.get("/v1/account", headers=tenant.headers)).json()
    assert me["name"] == "acme" and me["public_key"] == tenant.account.public_key
    assert "api_key" not in me
    assert (await client.get("/health")).json() == {"status": "ok", "database": None}
    assert (await client.get("/health/ready")).json() == {"status": "ok", "database": "ok"}
    spec = (await client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    assert "/v1/pools/{pool_id}/claim" in spec["paths"]
    assert (await client.get("/docs/")).status_code == 200


async def test_missing_or_bad_credentials(client: Client, tenant: Tenant) -> None:
    error = await client.get("/v1/pools")
    assert_error(error, 401, "unauthenticated")
    assert error.headers["www-authenticate"] == "Bearer"
    assert_error(
        await client.get("/v1/pools", headers={"Authorization": "Bearer pp_nope"}), 401, "unauthenticated"
    )
    assert_error(
        await client.get("/v1/pools", headers={"Authorization": "Basic abc"}), 401, "unauthenticated"
    )


async def test_pool_expiry_needs_a_time_zone(client: Client, tenant: Tenant) -> None:
    naive = await client.post(
        "/v1/pools", json={"name": "p", "expires_at": "2030-01-01T00:00:00"}, headers=tenant.headers
    )
    assert_error(naive, 400, "invalid_input")
    aware = await client.post(
        "/v1/pools", json={"name": "p", "expires_at": "2030-01-01T02:00:00+02:00"}, headers=tenant.headers
    )
    assert aware.status_code == 201
    assert aware.json()["expires_at"] == "2030-01-01T00:00:00Z"
