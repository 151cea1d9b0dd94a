"""Promotions across an account's pools, and checksum credentials, on both engines."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime

import pytest

from promopool import service
from promopool.domain import Code, PoolSettings
from promopool.domain.errors import AlreadyExists, CodeNotFound, InvalidCode, InvalidInput, Unauthenticated
from promopool.domain.keys import hash_api_key
from promopool.storage import Store
from tests.conftest import Tenant, make_tenant
from tests.promotion_fixtures import set_code_fields


async def all_pages(store: Store, tenant: Tenant, **kwargs: int | None) -> list[Code]:
    pages = service.promotion_pages(store, account=tenant.account, **kwargs)  # type: ignore[arg-type]
    return [code async for page in pages for code in page]


async def add_pool(store: Store, tenant: Tenant, name: str, codes: list[str]) -> int:
    pool = await service.create_pool(store, account=tenant.account, name=name, settings=PoolSettings())
    if codes:
        await service.import_codes(store, account=tenant.account, pool_id=pool.id, values=codes)
    return pool.id


async def test_pages_cover_every_pool_in_order_for_every_offset_and_limit(
    store: Store, tenant: Tenant, other: Tenant
) -> None:
    empty = await add_pool(store, tenant, "empty", [])
    second = await add_pool(store, tenant, "second", ["B2", "A2", "C2", "CODE000"])
    await add_pool(store, tenant, "third", ["Z3"])
    expected = (
        [(tenant.pool.id, f"CODE{i:03d}") for i in range(10)]
        + [(second, v) for v in ("A2", "B2", "C2", "CODE000")]
        + [(second + 1, "Z3")]
    )
    assert empty < second
    for page_size in (1, 3, 4, 100):
        got = await all_pages(store, tenant, page_size=page_size)
        assert [(c.pool_id, c.value) for c in got] == expected, page_size
    for offset in range(len(expected) + 2):
        for limit in (None, 0, 1, 2, 5, 100):
            got = await all_pages(store, tenant, offset=offset, limit=limit, page_size=3)
            end = None if limit is None else offset + limit
            assert [(c.pool_id, c.value) for c in got] == expected[offset:end], (offset, limit)


async def test_pages_check_their_arguments_before_reading(store: Store, tenant: Tenant) -> None:
    with pytest.raises(InvalidInput):
        service.promotion_pages(store, account=tenant.account, offset=-1)
    with pytest.raises(InvalidInput):
        service.promotion_pages(store, account=tenant.account, limit=-1)


async def test_find_takes_the_lowest_pool_holding_the_value(
    store: Store, tenant: Tenant, other: Tenant
) -> None:
    later = await add_pool(store, tenant, "later", ["SHARED"])
    earlier_value_later_pool = await add_pool(store, tenant, "latest", ["CODE001"])
    await service.import_codes(store, account=tenant.account, pool_id=tenant.pool.id, values=["SHARED"])
    found = await service.find_promotion(store, account=tenant.account, value="SHARED")
    assert found.pool_id == tenant.pool.id < later
    found = await service.find_promotion(store, account=tenant.account, value="CODE001")
    assert found.pool_id == tenant.pool.id < earlier_value_later_pool
    for missing in ("NOPE", "RIVAL000", "", "bad\x00", "x" * 200):
        with pytest.raises(CodeNotFound):
            await service.find_promotion(store, account=tenant.account, value=missing)


async def test_duplicate_copies_description_and_expiry_into_the_templates_pool(
    store: Store, tenant: Tenant
) -> None:
    second = await add_pool(store, tenant, "second", ["TEMPLATE"])
    expiry = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    await set_code_fields(
        store, pool_id=second, value="TEMPLATE", description="Spring -10%", usage=7, expires_at=expiry
    )
    created = await service.duplicate_promotion(
        store, account=tenant.account, template_code="TEMPLATE", new_code="  FRESH  "
    )
    assert (created.pool_id, created.value, created.description) == (second, "FRESH", "Spring -10%")
    assert created.expires_at == expiry
    assert created.usage_count == 0 and created.state == "available" and created.issued_at is None
    pool = await service.get_pool(store, account=tenant.account, pool_id=second)
    assert (pool.counts.available, pool.counts.total) == (2, 2)
    # the new code joins the pool's claim queue at its tail
    assert (await service.claim(store, account=tenant.account, pool_id=second)).code.value == "TEMPLATE"
    assert (await service.claim(store, account=tenant.account, pool_id=second)).code.value == "FRESH"


async def test_duplicate_refuses_bad_or_taken_codes_and_unknown_templates(
    store: Store, tenant: Tenant, other: Tenant
) -> None:
    await add_pool(store, tenant, "second", ["ELSEWHERE"])
    before = await all_pages(store, tenant)
    for taken in ("CODE001", "ELSEWHERE"):  # in the template's pool, and in another pool of the account
        with pytest.raises(AlreadyExists):
            await service.duplicate_promotion(
                store, account=tenant.account, template_code="CODE000", new_code=taken
            )
    for bad in ("", "   ", "x" * 129, "bad\x00code"):
        with pytest.raises(InvalidCode):
            await service.duplicate_promotion(
                store, account=tenant.account, template_code="CODE000", new_code=bad
            )
    for template in ("NOPE", "RIVAL000"):
        with pytest.raises(CodeNotFound):
            await service.duplicate_promotion(
                store, account=tenant.account, template_code=template, new_code="N1"
            )
    assert await all_pages(store, tenant) == before
    # a value only another account holds is free in this one
    created = await service.duplicate_promotion(
        store, account=tenant.account, template_code="CODE000", new_code="RIVAL000"
    )
    assert created.pool_id == tenant.pool.id


async def test_concurrent_duplicates_of_one_value_create_it_once(store: Store, tenant: Tenant) -> None:
    second = await add_pool(store, tenant, "second", ["T2"])

    async def duplicate(template: str) -> Code | AlreadyExists:
        try:
            return await service.duplicate_promotion(
                store, account=tenant.account, template_code=template, new_code="RACE"
            )
        except AlreadyExists as exc:
            return exc

    results = await asyncio.gather(*(duplicate(t) for t in ["CODE000", "T2"] * 4))
    created = [r for r in results if isinstance(r, Code)]
    assert len(created) == 1
    assert sum(c.value == "RACE" for c in await all_pages(store, tenant)) == 1
    pools = {p.id: p.counts.total for p in await service.list_pools(store, account=tenant.account)}
    assert pools == {
        tenant.pool.id: 10 + (created[0].pool_id == tenant.pool.id),
        second: 1 + (created[0].pool_id == second),
    }


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # the vendor scheme, computed independently


async def test_checksum_is_registered_for_new_keys_only(store: Store, tenant: Tenant, other: Tenant) -> None:
    good = md5_hex("acme" + tenant.api_key)
    account = await service.authenticate_checksum(store, account_name="acme", checksum=good)
    assert account.id == tenant.account.id
    assert (
        await service.authenticate_checksum(store, account_name="acme", checksum=good.upper())
    ).id == account.id
    second_key = await service.create_api_key(store, account=tenant.account)
    checksum = md5_hex("acme" + second_key)
    assert (
        await service.authenticate_checksum(store, account_name="acme", checksum=checksum)
    ).id == account.id
    # a key added without its checksum (as every key created before migration 5) cannot use the scheme
    await store.add_api_key(account_id=tenant.account.id, key_hash=hash_api_key("pp_legacy"))
    refused = [
        ("acme", md5_hex("acme" + "pp_legacy")),
        ("acme", md5_hex("acme" + other.api_key)),
        ("rival", good),
        ("acme", md5_hex("acme:" + tenant.api_key)),
        ("acme", hash_api_key(tenant.api_key)),
        ("nobody", md5_hex("nobody" + tenant.api_key)),
        ("bad\x00name", good),
        ("acme", ""),
    ]
    for name, value in refused:
        with pytest.raises(Unauthenticated):
            await service.authenticate_checksum(store, account_name=name, checksum=value)
    assert await service.authenticate(store, api_key="pp_legacy") == account


async def test_the_database_keeps_no_checksum_only_its_digest(store: Store) -> None:
    new = await make_tenant(store, "digest-check")
    digests = await store.key_checksums(account_id=new.account.id)
    checksum = md5_hex("digest-check" + new.api_key)
    assert digests == [hashlib.sha256(checksum.encode()).hexdigest()]
    assert checksum not in digests
