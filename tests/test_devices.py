"""Device codes (front-end fetch) and bulk removal through the service, on both engines."""

from __future__ import annotations

import asyncio

import pytest

from promopool import service
from promopool.domain import Claimed, CodeState
from promopool.domain.errors import (
    Forbidden,
    InvalidInput,
    PoolExhausted,
    PoolNotFound,
    Unauthenticated,
)
from promopool.storage import Store
from tests.conftest import Tenant, make_tenant


async def switch_on(store: Store, tenant: Tenant) -> None:
    await service.update_pool(store, account=tenant.account, pool_id=tenant.pool.id, public_fetch=True)


async def fetch(store: Store, tenant: Tenant, did: str) -> Claimed:
    return await service.fetch_for_device(store, account=tenant.account, pool_id=tenant.pool.id, did=did)


async def test_public_fetch_off_and_bad_device_ids(store: Store, tenant: Tenant, other: Tenant) -> None:
    with pytest.raises(Forbidden, match="public_fetch"):
        await fetch(store, tenant, "d1")
    await switch_on(store, tenant)
    for did in ("", "x" * 256, "a\x00b", "tab\there"):
        with pytest.raises(InvalidInput):
            await fetch(store, tenant, did)
    with pytest.raises(PoolNotFound):
        await service.fetch_for_device(store, account=other.account, pool_id=tenant.pool.id, did="d1")


async def test_replay_until_redeemed_then_a_new_code(store: Store, tenant: Tenant) -> None:
    await switch_on(store, tenant)
    first = await fetch(store, tenant, "d1")
    again = await fetch(store, tenant, "d1")
    assert (first.replayed, again.replayed) == (False, True)
    assert again.code.value == first.code.value
    await service.redeem(store, account=tenant.account, code=first.code.value, pool_id=tenant.pool.id)
    after = await fetch(store, tenant, "d1")
    assert not after.replayed and after.code.value != first.code.value
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    assert (pool.counts.available, pool.counts.issued, pool.counts.redeemed) == (8, 1, 1)


async def test_a_deleted_bound_code_is_replaced(store: Store, tenant: Tenant) -> None:
    await switch_on(store, tenant)
    first = await fetch(store, tenant, "d1")
    await service.delete_code(store, account=tenant.account, pool_id=tenant.pool.id, value=first.code.value)
    second = await fetch(store, tenant, "d1")
    assert not second.replayed and second.code.value != first.code.value


async def test_exhausted_pool_still_replays_bound_codes(store: Store) -> None:
    tenant = await make_tenant(store, "tiny", ["ONLY"])
    await switch_on(store, tenant)
    assert (await fetch(store, tenant, "d1")).code.value == "ONLY"
    with pytest.raises(PoolExhausted):
        await fetch(store, tenant, "d2")
    assert (await fetch(store, tenant, "d1")).code.value == "ONLY"


async def test_device_fetches_interleaved_with_claims(store: Store) -> None:
    tenant = await make_tenant(store, "mixed", [f"M{i:03d}" for i in range(100)])
    await switch_on(store, tenant)
    dids = [f"dev{i}" for i in range(30)]
    device_calls = [fetch(store, tenant, did) for did in dids * 3]
    claims = [service.claim(store, account=tenant.account, pool_id=tenant.pool.id) for _ in range(40)]
    results = await asyncio.gather(*device_calls, *claims)
    by_device: dict[str, set[str]] = {}
    for did, got in zip(dids * 3, results[: len(device_calls)], strict=True):
        by_device.setdefault(did, set()).add(got.code.value)
    assert all(len(codes) == 1 for codes in by_device.values())
    device_codes = {next(iter(codes)) for codes in by_device.values()}
    claimed = [got.code.value for got in results[len(device_calls) :]]
    assert len(device_codes) == 30 and len(set(claimed)) == 40 and not device_codes & set(claimed)
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    assert (pool.counts.available, pool.counts.issued) == (30, 70)


async def test_shop_authentication(store: Store, tenant: Tenant, other: Tenant) -> None:
    found = await service.authenticate_shop(
        store, public_key=tenant.account.public_key, api_key=tenant.api_key
    )
    assert found.id == tenant.account.id
    for public_key, api_key in (
        (tenant.account.public_key, other.api_key),
        (tenant.account.public_key, "wrong"),
        ("nobody", tenant.api_key),
        ("nul\x00", tenant.api_key),
    ):
        with pytest.raises(Unauthenticated):
            await service.authenticate_shop(store, public_key=public_key, api_key=api_key)


async def test_purge_and_delete_codes(store: Store, tenant: Tenant, other: Tenant) -> None:
    account, pool_id = tenant.account, tenant.pool.id
    issued = await service.claim(store, account=account, pool_id=pool_id)
    await service.redeem(store, account=account, code="CODE005", pool_id=pool_id)
    with pytest.raises(PoolNotFound):
        await service.purge_pool(store, account=other.account, pool_id=pool_id)
    assert await service.purge_pool(store, account=account, pool_id=pool_id) == 8
    codes = await service.list_codes(store, account=account, pool_id=pool_id)
    assert {c.value: c.state for c in codes} == {
        issued.code.value: CodeState.ISSUED,
        "CODE005": CodeState.REDEEMED,
    }
    with pytest.raises(PoolNotFound):
        await service.delete_codes(store, account=other.account, pool_id=pool_id, values=["CODE005"])
    values = [issued.code.value, "CODE005", "CODE005", "NOPE", " ", "x" * 300]
    assert await service.delete_codes(store, account=account, pool_id=pool_id, values=values) == (2, 3)
    pool = await service.get_pool(store, account=account, pool_id=pool_id)
    assert (pool.counts.available, pool.counts.issued, pool.counts.redeemed) == (0, 0, 0)


async def test_delete_many_codes_in_chunks(store: Store, tenant: Tenant) -> None:
    values = [f"BULK{i:05d}" for i in range(1_200)]
    await service.import_codes(store, account=tenant.account, pool_id=tenant.pool.id, values=values)
    deleted = await service.delete_codes(
        store, account=tenant.account, pool_id=tenant.pool.id, values=[*values, "GONE"]
    )
    assert deleted == (1_200, 1)
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    assert pool.counts.available == 10


async def test_select_pools(store: Store, tenant: Tenant) -> None:
    empty = await service.create_pool(store, account=tenant.account, name="e", settings=tenant.pool.settings)
    picked = await service.select_pools(store, account=tenant.account, active=True)
    assert [p.id for p in picked] == [tenant.pool.id]
    picked = await service.select_pools(store, account=tenant.account, include={empty.id}, offset=0, limit=5)
    assert [p.id for p in picked] == [empty.id]
    with pytest.raises(InvalidInput):
        await service.select_pools(store, account=tenant.account, offset=-1)
