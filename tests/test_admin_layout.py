"""What every admin page shares (issue 20), through an in-process client on both engines: styled 404 and
500 pages under /admin, ``GET /`` leading there, the security headers on every admin response, forms that
keep what was typed when refused, times typed and shown in UTC, refused uploads naming the line, and no
inline script or style for the Content-Security-Policy to block."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from promopool import service
from promopool.storage import Store
from tests.conftest import Tenant
from tests.helpers import HTML, sign_in

Client = httpx.AsyncClient
TEMPLATES = Path(service.__file__).parent.parent / "web" / "templates"
CSP = "default-src 'self'"


async def test_unknown_admin_paths_are_a_page_and_the_root_leads_to_admin(
    client: Client, tenant: Tenant
) -> None:
    root = await client.get("/", headers=HTML)
    assert root.status_code == 302 and root.headers["location"] == "/admin/"
    for path in ("/admin/nowhere", "/admin/pools/abc", "/admin/pools/1/nothing/here"):
        page = await client.get(path, headers=HTML)
        assert page.status_code == 404, path
        assert page.headers["content-type"].startswith("text/html")
        assert "Page not found" in page.text and '<link rel="stylesheet"' in page.text
        assert CSP in page.headers["content-security-policy"]
    scripted = await client.get("/admin/nowhere", headers={"Accept": "application/json"})
    assert scripted.status_code == 404 and scripted.json()["error"]["code"] == "not_found"
    api = await client.get("/v1/nowhere", headers=HTML)  # the API keeps its JSON errors
    assert api.status_code == 404 and api.headers["content-type"].startswith("application/json")
    assert "content-security-policy" not in api.headers
    await sign_in(client, tenant.api_key)
    missing = await client.get("/admin/pools/999999", headers=HTML)
    assert missing.status_code == 404 and "pool 999999 not found" in missing.text


async def test_a_crash_is_a_styled_page(
    client: Client, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    await sign_in(client, tenant.api_key)

    async def broken(*_: object, **__: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(service, "list_pools", broken)
    monkeypatch.setattr(service, "page_pools", broken)  # what the pools page reads
    page = await client.get("/admin/", headers=HTML)
    assert page.status_code == 500 and "Server error" in page.text and "secret internals" not in page.text
    assert CSP in page.headers["content-security-policy"]
    scripted = await client.get("/admin/pools.json")
    assert scripted.status_code == 500 and scripted.json()["error"]["code"] == "internal_error"


async def test_every_admin_response_carries_the_security_headers(client: Client, tenant: Tenant) -> None:
    unsigned = await client.get("/admin/", headers=HTML)  # a redirect to the sign-in form
    assert unsigned.status_code == 303 and CSP in unsigned.headers["content-security-policy"]
    await sign_in(client, tenant.api_key)
    pool = f"/admin/pools/{tenant.pool.id}"
    for path in (
        "/admin/",
        pool,
        f"{pool}/summary.json",
        f"{pool}/export/download",
        "/admin/static/admin.js",
    ):
        response = await client.get(path, headers=HTML)
        assert response.status_code == 200, path
        policy = response.headers["content-security-policy"]
        assert CSP in policy and "script-src 'self'" in policy and "unsafe-inline" not in policy, path
        assert (
            response.headers["x-frame-options"] == "DENY"
            and response.headers["x-content-type-options"] == "nosniff"
        )
    assert (await client.get(pool, headers=HTML)).headers["cache-control"] == "no-store"
    assert "no-store" not in (await client.get("/admin/static/layout.css")).headers.get("cache-control", "")


def test_templates_hold_no_inline_script_or_style() -> None:
    """The policy allows only the server's own files: an inline script, handler or style would be blocked."""
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), template.name
        assert not re.search(r"\son[a-z]+\s*=", text), template.name
        assert "<style" not in text and " style=" not in text, template.name


async def test_a_refused_settings_form_keeps_what_was_typed(
    client: Client, store: Store, tenant: Tenant
) -> None:
    csrf = await sign_in(client, tenant.api_key)
    url = f"/admin/pools/{tenant.pool.id}/settings"
    typed = {
        "csrf_token": csrf,
        "name": "typed name",
        "max_uses": "3",
        "per_profile_limit": "2",
        "expires_at": "2031-13-45 99:00",
        "public_fetch": "on",
        "threshold": "7",
        "webhook_url": "https://shop.example/typed",
    }
    refused = await client.post(url, data=typed, headers=HTML)
    assert refused.status_code == 400 and "UTC date and time" in refused.text
    for field in ("typed name", "3", "2", "2031-13-45 99:00", "7", "https://shop.example/typed"):
        assert f'value="{field}"' in refused.text, field
    assert re.search(r'name="public_fetch"\s+checked', refused.text)
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    assert pool.name == tenant.pool.name  # nothing changed


async def test_times_are_typed_and_shown_in_utc(client: Client, store: Store, tenant: Tenant) -> None:
    csrf = await sign_in(client, tenant.api_key)
    pool_url = f"/admin/pools/{tenant.pool.id}"
    saved = await client.post(
        f"{pool_url}/settings",
        data={"csrf_token": csrf, "name": "p", "max_uses": "1", "expires_at": "2031-05-01 12:30 UTC"},
    )
    assert saved.status_code == 303
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    assert pool.settings.expires_at is not None
    assert pool.settings.expires_at.isoformat() == "2031-05-01T12:30:00+00:00"
    page = await client.get(pool_url, headers=HTML)
    field = re.search(r'<input name="expires_at"[^>]*>', page.text)
    assert field and 'type="text"' in field.group(0) and 'value="2031-05-01 12:30"' in field.group(0)
    assert "datetime-local" not in page.text  # the browser's own local format is not used
    keys = await client.get("/admin/keys/", headers=HTML)
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", keys.text)


@pytest.mark.parametrize(
    ("content_type", "body", "line"),
    [("text/plain", b"OK1\nOK2\n\nbad\x01\n", 4), ("text/csv", b"code\nOK1\n\nOK2\n\x01bad,x\n", 5)],
)
async def test_a_refused_upload_names_the_line(
    client: Client, tenant: Tenant, content_type: str, body: bytes, line: int
) -> None:
    csrf = await sign_in(client, tenant.api_key)
    refused = await client.post(
        f"/admin/pools/{tenant.pool.id}/codes",
        content=body,
        headers={"content-type": content_type, "X-CSRF-Token": csrf},
    )
    assert refused.status_code == 400
    assert f"the first at line {line} " in refused.json()["error"]["message"]


async def test_a_settings_form_refused_for_its_alert_changes_nothing(
    client: Client, store: Store, tenant: Tenant
) -> None:
    csrf = await sign_in(client, tenant.api_key)
    refused = await client.post(
        f"/admin/pools/{tenant.pool.id}/settings",
        data={"csrf_token": csrf, "name": "renamed", "max_uses": "4", "threshold": "x5"},
        headers=HTML,
    )
    assert refused.status_code == 400 and 'value="renamed"' in refused.text and 'value="x5"' in refused.text
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    assert (pool.name, pool.settings.max_uses) == (tenant.pool.name, 1)
    no_threshold = await client.post(
        f"/admin/pools/{tenant.pool.id}/settings",
        data={
            "csrf_token": csrf,
            "name": "renamed",
            "max_uses": "4",
            "webhook_url": "https://shop.example/h",
        },
        headers=HTML,
    )
    assert no_threshold.status_code == 400 and "needs a low-stock threshold" in no_threshold.text
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    assert (pool.name, pool.settings.max_uses) == (tenant.pool.name, 1)
