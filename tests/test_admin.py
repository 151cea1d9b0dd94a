"""The admin pages through an in-process client, on both engines: sign-in, CSRF, every form and page."""

from __future__ import annotations

import httpx

from promopool import service
from promopool.storage import Store
from tests.conftest import Tenant
from tests.helpers import HTML, csrf_of, execute_sql, sign_in

Client = httpx.AsyncClient


async def test_pages_need_a_session(client: Client) -> None:
    for path in ("/admin/", "/admin/pools/1", "/admin/pools/1/export.csv"):
        response = await client.get(path, headers=HTML)
        assert response.status_code == 303 and response.headers["location"] == "/admin/login"
    forged = "eyJhIjoxfQ.c2lnbmF0dXJl"
    client.cookies.set("promopool_session", forged, domain="promopool.test", path="/admin")
    response = await client.get("/admin/", headers=HTML)
    assert response.status_code == 303


async def test_sign_in_sets_a_strict_httponly_cookie(client: Client, tenant: Tenant) -> None:
    form = await client.get("/admin/login", headers=HTML)
    token = csrf_of(form.text)
    bad = await client.post("/admin/login", data={"api_key": "pp_nope", "csrf_token": token})
    assert bad.status_code == 401 and "not known" in bad.text
    form = await client.get("/admin/login", headers=HTML)
    no_token = await client.post("/admin/login", data={"api_key": tenant.api_key})
    assert no_token.status_code == 403
    form = await client.get("/admin/login", headers=HTML)
    signed = await client.post(
        "/admin/login", data={"api_key": tenant.api_key, "csrf_token": csrf_of(form.text)}
    )
    assert signed.status_code == 303
    cookie = next(c for c in signed.headers.get_list("set-cookie") if c.startswith("promopool_session="))
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower() and "Path=/admin" in cookie
    assert tenant.api_key not in cookie
    page = await client.get("/admin/", headers=HTML)
    assert tenant.pool.name in page.text and "acme" in page.text
    assert "Content-Security-Policy" in page.headers


async def test_forms_refuse_a_missing_or_wrong_csrf_token(client: Client, tenant: Tenant) -> None:
    csrf = await sign_in(client, tenant.api_key)
    url = f"/admin/pools/{tenant.pool.id}/settings"
    fields = {"name": "renamed", "max_uses": "1", "threshold": "3"}
    wrong = ("y" if csrf.startswith("x") else "x") + csrf[1:]  # never the token itself
    for token in (None, wrong):
        data = fields if token is None else {**fields, "csrf_token": token}
        refused = await client.post(url, data=data, headers=HTML)
        assert refused.status_code == 403
    upload = await client.post(
        f"/admin/pools/{tenant.pool.id}/codes", content=b"NEW1\n", headers={"content-type": "text/plain"}
    )
    assert upload.status_code == 403 and upload.json()["error"]["code"] == "forbidden"
    assert (await client.post("/admin/pools", data={"name": "p"}, headers=HTML)).status_code == 403
    assert (await client.post("/admin/logout", data={}, headers=HTML)).status_code == 403
    page = await client.get(f"/admin/pools/{tenant.pool.id}", headers=HTML)
    assert "renamed" not in page.text


async def test_settings_upload_lookup_export(client: Client, store: Store, tenant: Tenant) -> None:
    csrf = await sign_in(client, tenant.api_key)
    pool_url = f"/admin/pools/{tenant.pool.id}"
    saved = await client.post(
        f"{pool_url}/settings",
        data={
            "csrf_token": csrf,
            "name": "summer",
            "max_uses": "2",
            "per_profile_limit": "",
            "expires_at": "2031-05-01T12:30",
            "public_fetch": "on",
            "threshold": "5",
            "webhook_url": "https://shop.example/hook",
        },
    )
    assert saved.status_code == 303
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    assert (pool.name, pool.settings.max_uses, pool.settings.public_fetch) == ("summer", 2, True)
    assert pool.settings.expires_at is not None and pool.settings.expires_at.isoformat().startswith(
        "2031-05-01T12:30"
    )
    alert = await service.get_low_stock_alert(store, account=tenant.account, pool_id=tenant.pool.id)
    assert alert is not None and (alert.threshold, alert.webhook_url) == (5, "https://shop.example/hook")
    page = await client.get(f"{pool_url}?saved=1", headers=HTML)
    assert "Settings saved." in page.text and "whsec_" in page.text  # the signing secret, to verify with

    refused = await client.post(
        f"{pool_url}/settings", data={"csrf_token": csrf, "name": "summer", "max_uses": "0"}, headers=HTML
    )
    assert refused.status_code == 400 and "at least 1" in refused.text

    upload = await client.post(
        f"{pool_url}/codes",
        content=b"code\nNEW1\nNEW2\nCODE000\n",
        headers={"content-type": "text/csv", "X-CSRF-Token": csrf},
    )
    assert upload.status_code == 200, upload.text
    body = upload.json()
    assert (body["inserted"], body["duplicates"], body["counts"]["available"]) == (2, 1, 12)
    strict = await client.post(
        f"{pool_url}/codes",
        content=b"OK1\n\x01bad\n",
        headers={"content-type": "text/plain", "X-CSRF-Token": csrf},
    )
    assert strict.status_code == 400 and strict.json()["error"]["code"] == "invalid_code"
    lenient = await client.post(
        f"{pool_url}/codes?skip_invalid=true",
        content=b"OK1\n\x01bad\n",
        headers={"content-type": "text/plain", "X-CSRF-Token": csrf},
    )
    assert lenient.json()["inserted"] == 1 and lenient.json()["invalid"] == 1

    await service.claim(store, account=tenant.account, pool_id=tenant.pool.id)
    found = await client.get(pool_url, params={"code": "CODE000"}, headers=HTML)
    assert found.status_code == 200
    assert "state-issued" in found.text and "imported" in found.text and "issued" in found.text
    missing = await client.get(pool_url, params={"code": "NOPE"}, headers=HTML)
    assert "No code <code>NOPE</code>" in missing.text
    summary = (await client.get(f"{pool_url}/summary.json")).json()
    assert summary == {"id": tenant.pool.id, "available": 12, "issued": 1, "redeemed": 0, "total": 13}
    listed = (await client.get("/admin/pools.json")).json()
    assert listed["pools"][0]["available"] == 12

    export = await client.get(f"{pool_url}/export.csv")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    lines = export.text.splitlines()
    assert lines[0] == "code,state,usage_count,issued_at" and len(lines) == 14
    assert any(line.startswith("CODE000,issued,0,") for line in lines)


async def test_pool_page_shows_activity_and_outlook(client: Client, store: Store, tenant: Tenant) -> None:
    for _ in range(4):
        await service.claim(store, account=tenant.account, pool_id=tenant.pool.id)
    trend = await service.pool_trend(store, account=tenant.account, pool_id=tenant.pool.id)
    assert trend.claims_last_24h == 4 and trend.hours[-1].claims == 4 and len(trend.hours) == 168
    assert trend.days_until_empty == 6 / 4
    await sign_in(client, tenant.api_key)
    page = await client.get(f"/admin/pools/{tenant.pool.id}", headers=HTML)
    assert "4 claimed, 0 redeemed" in page.text  # the hour's bar, with its tooltip
    assert "1.5 days" in page.text


async def test_create_pool_and_other_accounts_pools(client: Client, tenant: Tenant, other: Tenant) -> None:
    csrf = await sign_in(client, tenant.api_key)
    created = await client.post("/admin/pools", data={"csrf_token": csrf, "name": "autumn"})
    assert created.status_code == 303 and created.headers["location"].startswith("/admin/pools/")
    empty = await client.post("/admin/pools", data={"csrf_token": csrf, "name": "  "}, headers=HTML)
    assert empty.status_code == 400
    theirs = await client.get(f"/admin/pools/{other.pool.id}", headers=HTML)
    assert theirs.status_code == 404 and other.pool.name not in theirs.text
    assert (await client.get(f"/admin/pools/{other.pool.id}/export.csv")).status_code == 404
    out = await client.post("/admin/logout", data={"csrf_token": csrf})
    assert out.status_code == 303
    assert (await client.get("/admin/", headers=HTML)).status_code == 303


async def test_session_ends_when_its_key_is_gone(client: Client, store: Store, tenant: Tenant) -> None:
    await sign_in(client, tenant.api_key)
    await store.delete_pool(account_id=tenant.account.id, pool_id=tenant.pool.id)  # still signed in
    assert (await client.get("/admin/", headers=HTML)).status_code == 200
    await execute_sql(store, "DELETE FROM api_keys")
    assert (await client.get("/admin/", headers=HTML)).status_code == 303


async def test_static_files_are_served(client: Client) -> None:
    css = await client.get("/admin/static/admin.css")
    js = await client.get("/admin/static/admin.js")
    assert css.status_code == 200 and js.status_code == 200 and "XMLHttpRequest" in js.text
