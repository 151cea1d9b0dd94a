"""The admin pages of API keys (issue 17), through an in-process client on both engines: list (never a
secret), create (the secret shown once), revoke after a confirmation, the session's own key, read-only."""

from __future__ import annotations

import re

import httpx

from promopool import service
from promopool.storage import Store
from tests.conftest import Tenant
from tests.helpers import HTML, sign_in

Client = httpx.AsyncClient
SECRET = re.compile(r"pp_[A-Za-z0-9_-]+")


async def test_create_shows_the_secret_once_and_revoke_confirms(
    client: Client, store: Store, tenant: Tenant
) -> None:
    csrf = await sign_in(client, tenant.api_key)
    listing = await client.get("/admin/keys/", headers=HTML)
    assert listing.status_code == 200
    assert "initial key" in listing.text and "(this session)" in listing.text
    assert not SECRET.search(listing.text)  # no secret, not even the session's own

    created = await client.post("/admin/keys/", data={"csrf_token": csrf, "name": "ci", "read_only": "on"})
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    found = SECRET.search(created.text)
    assert found
    secret = found.group(0)
    [key] = [k for k in await service.list_keys(store, account=tenant.account) if k.name == "ci"]
    assert key.read_only

    listing = await client.get("/admin/keys/", headers=HTML)
    assert "ci" in listing.text and "read-only" in listing.text
    assert secret not in listing.text and not SECRET.search(listing.text)

    confirm = await client.get(f"/admin/keys/{key.id}/revoke", headers=HTML)
    assert confirm.status_code == 200 and "Revoke the key" in confirm.text
    assert "signs you out" not in confirm.text  # not this session's key
    assert [k.id for k in await service.list_keys(store, account=tenant.account)].count(
        key.id
    ) == 1  # not yet

    revoked = await client.post(f"/admin/keys/{key.id}/revoke", data={"csrf_token": csrf})
    assert revoked.status_code == 303 and revoked.headers["location"] == "/admin/keys/?revoked=1"
    after = await client.get("/admin/keys/?revoked=1", headers=HTML)
    assert after.status_code == 200 and "The key is revoked." in after.text
    assert key.id not in [k.id for k in await service.list_keys(store, account=tenant.account)]
    # Never used before, so no server has it cached: refused at once.
    refused = await client.get("/v1/pools", headers={"Authorization": f"Bearer {secret}"})
    assert refused.status_code == 401


async def test_revoking_the_sessions_own_key_ends_the_session(
    client: Client, store: Store, tenant: Tenant
) -> None:
    await service.create_key(store, account=tenant.account, name="spare")  # so that it is not the last one
    csrf = await sign_in(client, tenant.api_key)
    session = client.cookies.get("promopool_session", path="/admin")
    assert session
    [own] = [k for k in await service.list_keys(store, account=tenant.account) if k.name == "initial key"]
    confirm = await client.get(f"/admin/keys/{own.id}/revoke", headers=HTML)
    assert "signs you out" in confirm.text

    revoked = await client.post(f"/admin/keys/{own.id}/revoke", data={"csrf_token": csrf})
    assert revoked.status_code == 303 and revoked.headers["location"] == "/admin/login"
    cleared = next(c for c in revoked.headers.get_list("set-cookie") if c.startswith("promopool_session="))
    assert "Max-Age=0" in cleared or "expires=" in cleared.lower()
    assert (await client.get("/admin/keys/", headers=HTML)).headers["location"] == "/admin/login"
    # A copy of the cookie (another tab, another browser) is worth nothing either.
    client.cookies.set("promopool_session", session, domain="promopool.test", path="/admin")
    for path in ("/admin/", "/admin/keys/"):
        again = await client.get(path, headers=HTML)
        assert again.status_code == 303 and again.headers["location"] == "/admin/login"


async def test_the_last_key_is_kept_and_names_are_checked(
    client: Client, store: Store, tenant: Tenant
) -> None:
    csrf = await sign_in(client, tenant.api_key)
    [only] = await service.list_keys(store, account=tenant.account)
    last = await client.post(f"/admin/keys/{only.id}/revoke", data={"csrf_token": csrf}, headers=HTML)
    assert last.status_code == 409 and "only key" in last.text
    blank = await client.post("/admin/keys/", data={"csrf_token": csrf, "name": "  "}, headers=HTML)
    assert blank.status_code == 400 and not SECRET.search(blank.text)
    forged = await client.post("/admin/keys/", data={"name": "x"}, headers=HTML)
    assert forged.status_code == 403
    unconfirmed = await client.post(f"/admin/keys/{only.id}/revoke", data={}, headers=HTML)
    assert unconfirmed.status_code == 403
    assert [k.name for k in await service.list_keys(store, account=tenant.account)] == ["initial key"]


async def test_another_accounts_key_is_not_found(
    client: Client, store: Store, tenant: Tenant, other: Tenant
) -> None:
    theirs = await service.create_key(store, account=other.account, name="theirs")
    csrf = await sign_in(client, tenant.api_key)
    assert "theirs" not in (await client.get("/admin/keys/", headers=HTML)).text
    page = await client.get(f"/admin/keys/{theirs.key.id}/revoke", headers=HTML)
    assert page.status_code == 404 and "theirs" not in page.text
    revoke = await client.post(f"/admin/keys/{theirs.key.id}/revoke", data={"csrf_token": csrf}, headers=HTML)
    assert revoke.status_code == 404
    assert "theirs" in [k.name for k in await service.list_keys(store, account=other.account)]


async def test_a_read_only_session_sees_no_buttons_and_is_refused(
    client: Client, store: Store, tenant: Tenant
) -> None:
    viewer = await service.create_key(store, account=tenant.account, name="viewer", read_only=True)
    csrf = await sign_in(client, viewer.api_key)
    listing = await client.get("/admin/keys/", headers=HTML)
    assert listing.status_code == 200 and "viewer" in listing.text and "initial key" in listing.text
    assert "Create key" not in listing.text and "/revoke" not in listing.text
    pools = await client.get("/admin/", headers=HTML)
    assert "Create pool" not in pools.text
    pool = await client.get(f"/admin/pools/{tenant.pool.id}", headers=HTML)
    assert pool.status_code == 200 and "Save settings" not in pool.text and 'id="upload"' not in pool.text

    [writer] = [k for k in await service.list_keys(store, account=tenant.account) if not k.read_only]
    refusals = [
        await client.post("/admin/keys/", data={"csrf_token": csrf, "name": "sneaky"}, headers=HTML),
        await client.get(f"/admin/keys/{writer.id}/revoke", headers=HTML),
        await client.post(f"/admin/keys/{writer.id}/revoke", data={"csrf_token": csrf}, headers=HTML),
        await client.post("/admin/pools", data={"csrf_token": csrf, "name": "sneaky"}, headers=HTML),
    ]
    assert [r.status_code for r in refusals] == [403, 403, 403, 403]
    assert sorted(k.name for k in await service.list_keys(store, account=tenant.account)) == [
        "initial key",
        "viewer",
    ]
    after = await client.get("/admin/keys/", headers=HTML)
    assert not SECRET.search(after.text)


async def test_key_pages_need_a_session(client: Client) -> None:
    for path in ("/admin/keys/", "/admin/keys/1/revoke"):
        response = await client.get(path, headers=HTML)
        assert response.status_code == 303 and response.headers["location"] == "/admin/login"
    posted = await client.post("/admin/keys/", data={"name": "x"}, headers=HTML)
    assert posted.status_code == 303 and posted.headers["location"] == "/admin/login"
