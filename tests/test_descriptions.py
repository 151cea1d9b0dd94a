"""Code descriptions (issue 18): set on import (a CSV `description` column), by PATCH
/v1/pools/{id}/codes/{code} and in the admin code page; the SuperSaaS dialect shows them and its duplicate
copies them. Both engines."""

from __future__ import annotations

import httpx

from promopool import service
from promopool.domain.codes import MAX_DESCRIPTION
from promopool.storage import Store
from tests.conftest import Tenant
from tests.helpers import HTML, assert_error, sign_in
from tests.supersaas_client import OfficialStyleClient, Promotion

Client = httpx.AsyncClient


async def test_patch_sets_and_clears_a_description(client: Client, tenant: Tenant) -> None:
    url = f"/v1/pools/{tenant.pool.id}/codes/CODE001"
    changed = await client.patch(url, headers=tenant.headers, json={"description": "Ten off, spring"})
    assert changed.status_code == 200 and changed.json()["description"] == "Ten off, spring"
    assert (await client.get(url, headers=tenant.headers)).json()["description"] == "Ten off, spring"
    cleared = await client.patch(url, headers=tenant.headers, json={"description": ""})
    assert cleared.json()["description"] == ""


async def test_patch_refusals_change_nothing(client: Client, tenant: Tenant, other: Tenant) -> None:
    h, url = tenant.headers, f"/v1/pools/{tenant.pool.id}/codes/CODE001"
    await client.patch(url, headers=h, json={"description": "kept"})
    for body in (
        {"description": "x" * (MAX_DESCRIPTION + 1)},
        {"description": "line\nbreak"},
        {"description": "nul\x00"},
        {"description": 5},
        {"description": "ok", "state": "redeemed"},
        {},
    ):
        assert_error(await client.patch(url, headers=h, json=body), 400, "invalid_input")
    missing = f"/v1/pools/{tenant.pool.id}/codes/NOPE"
    assert_error(await client.patch(missing, headers=h, json={"description": "x"}), 404, "code_not_found")
    # another account's code is not there for this key
    theirs = f"/v1/pools/{other.pool.id}/codes/RIVAL000"
    assert_error(await client.patch(theirs, headers=h, json={"description": "x"}), 404, "pool_not_found")
    assert (await client.get(url, headers=h)).json()["description"] == "kept"


async def test_csv_import_carries_descriptions(client: Client, store: Store, tenant: Tenant) -> None:
    h, pool_id = tenant.headers, tenant.pool.id
    csv = 'code,description\nNEW1,"Ten off, spring"\nNEW2,\nCODE001,ignored: a duplicate\nBAD1,"a\x01b"\n'
    imported = await client.post(
        f"/v1/pools/{pool_id}/codes?skip_invalid=true",
        headers={**h, "Content-Type": "text/csv"},
        content=csv.encode(),
    )
    assert imported.status_code == 200, imported.text
    report = imported.json()
    assert (report["inserted"], report["duplicates"], report["invalid"]) == (2, 1, 1)
    assert report["invalid_samples"] == [{"position": 5, "reason": "invalid_description"}]
    new1 = await service.get_code(store, account=tenant.account, pool_id=pool_id, value="NEW1")
    assert (new1.description, new1.state) == ("Ten off, spring", "available")
    old = await service.get_code(store, account=tenant.account, pool_id=pool_id, value="CODE001")
    assert old.description == ""
    # beside states, as an export's columns
    with_states = "code,state,issued_at,description\nNEW3,issued,2026-01-01T00:00:00Z,Gift\n"
    again = await client.post(
        f"/v1/pools/{pool_id}/codes", headers={**h, "Content-Type": "text/csv"}, content=with_states.encode()
    )
    assert again.status_code == 200 and again.json()["inserted"] == 1, again.text
    new3 = await service.get_code(store, account=tenant.account, pool_id=pool_id, value="NEW3")
    assert (new3.description, new3.state) == ("Gift", "issued")


async def test_supersaas_shows_descriptions_and_duplicate_copies_them(
    client: Client, store: Store, tenant: Tenant
) -> None:
    await service.set_code_description(
        store, account=tenant.account, pool_id=tenant.pool.id, value="CODE002", description="Spring sale"
    )
    sss = OfficialStyleClient(client, "acme", tenant.api_key)
    assert await sss.promotion("CODE002") == [Promotion("CODE002", "Spring sale", 0)]
    await sss.duplicate("SPRING24", "CODE002")
    assert await sss.promotion("SPRING24") == [Promotion("SPRING24", "Spring sale", 0)]


async def test_admin_code_page_edits_the_description(client: Client, store: Store, tenant: Tenant) -> None:
    csrf = await sign_in(client, tenant.api_key)
    pool_url = f"/admin/pools/{tenant.pool.id}"
    page = await client.get(f"{pool_url}?code=CODE004", headers=HTML)
    assert 'id="description"' in page.text
    saved = await client.post(
        f"{pool_url}/description", data={"csrf_token": csrf, "code": "CODE004", "description": "VIP"}
    )
    assert saved.status_code == 303 and saved.headers["location"].endswith("?code=CODE004")
    code = await service.get_code(store, account=tenant.account, pool_id=tenant.pool.id, value="CODE004")
    assert code.description == "VIP"
    refused = await client.post(
        f"{pool_url}/description",
        data={"csrf_token": csrf, "code": "CODE004", "description": "x" * 501},
        headers=HTML,
    )
    assert refused.status_code == 400
    code = await service.get_code(store, account=tenant.account, pool_id=tenant.pool.id, value="CODE004")
    assert code.description == "VIP"


async def test_admin_settings_form_sets_fallback_and_relative_expiry(
    client: Client, store: Store, tenant: Tenant
) -> None:
    csrf = await sign_in(client, tenant.api_key)
    form = {
        "csrf_token": csrf,
        "name": "p",
        "max_uses": "1",
        "fallback_code": "FREE",
        "valid_for_seconds": "60",
    }
    saved = await client.post(f"/admin/pools/{tenant.pool.id}/settings", data=form)
    assert saved.status_code == 303
    settings = (await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)).settings
    assert (settings.fallback_code, settings.valid_for_seconds) == ("FREE", 60)
    page = await client.get(f"/admin/pools/{tenant.pool.id}", headers=HTML)
    assert 'value="FREE"' in page.text


async def test_a_keyed_patch_replays_the_description_it_first_set(client: Client, tenant: Tenant) -> None:
    h, url = tenant.headers, f"/v1/pools/{tenant.pool.id}/codes/CODE001"
    keyed = {**h, "Idempotency-Key": "describe-1"}
    first = await client.patch(url, headers=keyed, json={"description": "Spring"})
    assert first.status_code == 200 and "Idempotent-Replayed" not in first.headers
    await client.patch(url, headers=h, json={"description": "Summer"})
    again = await client.patch(url, headers=keyed, json={"description": "Spring"})
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert (await client.get(url, headers=h)).json()["description"] == "Summer"  # the replay changed nothing
    for other_url, body in ((url, {"description": "Autumn"}), (url.replace("CODE001", "CODE002"), {})):
        reused = await client.patch(other_url, headers=keyed, json=body or {"description": "Spring"})
        assert_error(reused, 422, "idempotency_key_reused")
    assert (await client.get(url, headers=h)).json()["description"] == "Summer"
