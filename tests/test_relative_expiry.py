"""Relative expiry (issue 18): with the pool setting valid_for_seconds a claimed code expires that long after
its issued_at: shown wherever a code's expiry is shown, refused by validate and redeem after; both engines."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest

from promopool import service
from promopool.domain.errors import CodeExpired, CodeUnusable
from promopool.storage import Store
from tests.conftest import Tenant
from tests.helpers import attach, execute_sql, multi_use_pool, ok
from tests.helpers import call as altcraft

Client = httpx.AsyncClient
STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"  # a timestamp literal both engines read


async def _issued_ago(store: Store, pool_id: int, value: str, seconds: int) -> None:
    moment = (store.clock() - timedelta(seconds=seconds)).strftime(STAMP)
    await execute_sql(
        store, f"UPDATE codes SET issued_at = '{moment}' WHERE pool_id = {pool_id} AND value = '{value}'"
    )


async def test_a_claimed_code_shows_its_relative_expiry(client: Client, store: Store, tenant: Tenant) -> None:
    h, pool_id = tenant.headers, tenant.pool.id
    await client.patch(f"/v1/pools/{pool_id}", headers=h, json={"valid_for_seconds": 3600})
    claimed = (await client.post(f"/v1/pools/{pool_id}/claim", headers=h)).json()
    code = (await client.get(f"/v1/pools/{pool_id}/codes/{claimed['code']}", headers=h)).json()
    issued = datetime.fromisoformat(code["issued_at"])
    assert datetime.fromisoformat(code["expires_at"]) - issued == timedelta(seconds=3600)
    listed = (await client.get(f"/v1/pools/{pool_id}/codes", headers=h)).json()["codes"]
    by_value = {c["code"]: c["expires_at"] for c in listed}
    assert by_value[claimed["code"]] == code["expires_at"]
    assert by_value["CODE009"] is None  # not handed out: no relative expiry
    details = await service.code_details(store, account=tenant.account, pool_id=pool_id, code=claimed["code"])
    assert details.code.expires_at == datetime.fromisoformat(code["expires_at"])  # what Altcraft's get shows
    pages = [
        c async for page in service.code_pages(store, account=tenant.account, pool_id=pool_id) for c in page
    ]
    assert {c.value: c.expires_at for c in pages}[claimed["code"]] == details.code.expires_at


async def test_the_earlier_of_own_and_relative_expiry_counts(store: Store, tenant: Tenant) -> None:
    account, pool_id = tenant.account, tenant.pool.id
    await service.update_pool(store, account=account, pool_id=pool_id, valid_for_seconds=86_400)
    claimed = await service.claim(store, account=account, pool_id=pool_id)
    soon = store.clock() + timedelta(hours=1)
    await service.set_code_expiry(
        store, account=account, pool_id=pool_id, code=claimed.code.value, expires_at=soon
    )
    shown = await service.get_code(store, account=account, pool_id=pool_id, value=claimed.code.value)
    assert shown.expires_at == soon
    await service.update_pool(store, account=account, pool_id=pool_id, valid_for_seconds=60)
    shown = await service.get_code(store, account=account, pool_id=pool_id, value=claimed.code.value)
    assert shown.issued_at is not None and shown.expires_at == shown.issued_at + timedelta(seconds=60)


async def test_validate_and_redeem_refuse_after_it_as_an_expired_code(store: Store, tenant: Tenant) -> None:
    account = tenant.account
    pool_id = await multi_use_pool(store, account, max_uses=5, valid_for_seconds=600)
    await attach(store, account, pool_id, "MULTI", "dave")
    await _issued_ago(store, pool_id, "MULTI", 599)
    assert (await service.validate_code(store, account=account, code="MULTI", profile="dave")).holder
    await service.redeem(store, account=account, code="MULTI", profile="dave")
    await _issued_ago(store, pool_id, "MULTI", 601)
    for call in (service.validate_code, service.redeem):
        with pytest.raises(CodeExpired):
            await call(store, account=account, code="MULTI", profile="dave")
        with pytest.raises(CodeUnusable):
            await call(store, account=account, code="MULTI", profile="erin")
    code = await service.get_code(store, account=account, pool_id=pool_id, value="MULTI")
    assert code.usage_count == 1
    # Switching the setting off makes it usable again: the expiry is computed, never stored on the code.
    await service.update_pool(store, account=account, pool_id=pool_id, valid_for_seconds=None)
    await service.redeem(store, account=account, code="MULTI", profile="dave")


async def test_a_code_never_handed_out_has_no_relative_expiry(store: Store, tenant: Tenant) -> None:
    account = tenant.account
    await multi_use_pool(store, account, valid_for_seconds=1)
    done = await service.redeem(store, account=account, code="OTHER")
    assert done.code.expires_at is None


async def test_altcraft_get_shows_the_relative_expiry(client: Client, store: Store, tenant: Tenant) -> None:
    db = await service.create_profile_database(store, account=tenant.account, name="crm")
    await service.update_pool(store, account=tenant.account, pool_id=tenant.pool.id, valid_for_seconds=60)
    auth = {"token": tenant.api_key, "loyalty_id": tenant.pool.id}
    ok(
        await altcraft(
            client, "attach", {**auth, "db_id": db.id, "code": "CODE001", "email": "a@example.com"}
        )
    )
    fresh = ok(await altcraft(client, "get", {**auth, "code": "CODE001"}))
    assert fresh["expire_date"] and not fresh["is_expired"]
    await _issued_ago(store, tenant.pool.id, "CODE001", 61)
    stale = ok(await altcraft(client, "get", {**auth, "code": "CODE001"}))
    assert stale["is_expired"] and stale["expired"] == stale["expire_date"]
    code = await service.get_code(store, account=tenant.account, pool_id=tenant.pool.id, value="CODE001")
    assert code.issued_at is not None and code.expires_at == code.issued_at + timedelta(seconds=60)
