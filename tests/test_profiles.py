"""Profiles and attached codes on both engines: matching, find-or-create, attach exactly once, detach."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from promopool import service
from promopool.domain import CodeState, PoolSettings
from promopool.domain.errors import (
    CodeNotFound,
    Conflict,
    InvalidInput,
    NotFound,
    PoolExhausted,
    PoolNotFound,
    ProfileNotFound,
)
from promopool.domain.profiles import identity, normalize_email, normalize_phone
from promopool.storage import Store
from tests.conftest import Tenant


def test_email_is_trimmed_and_lower_cased() -> None:
    assert normalize_email("  John.Doe@Example.COM ") == "john.doe@example.com"


def test_phone_keeps_digits_and_a_leading_plus() -> None:
    assert normalize_phone(" +7 (900) 000-00-00 ") == "+79000000000"
    assert normalize_phone("8 900 000 00 00") == "89000000000"


def test_matching_needs_its_identifier() -> None:
    with pytest.raises(InvalidInput):
        identity(matching="phone", email="a@b.c")
    with pytest.raises(InvalidInput):
        identity(matching="custom", field_name="card")
    with pytest.raises(InvalidInput):
        identity(matching="fax", email="a@b.c")
    # optional, but once identifiers are given the matching one must be among them
    assert not identity(matching=None, required=False).given
    with pytest.raises(InvalidInput):
        identity(matching=None, phone="+7 900", required=False)
    with pytest.raises(InvalidInput):
        identity(matching="custom", field_name="card", email="a@b.c", required=False)


async def test_a_created_profile_is_found_by_each_identifier(store: Store, tenant: Tenant) -> None:
    db = await service.create_profile_database(store, account=tenant.account, name="crm")
    given = identity(
        matching="email",
        email="Ann@Example.com",
        phone="+1 555 0100",
        profile_id="ann-1",
        field_name="card",
        field_value="C-77",
    )
    code = await service.attach_code(
        store, account=tenant.account, pool_id=tenant.pool.id, database_id=db.id, identity=given, code=None
    )
    assert code.profile_id is not None and code.state is CodeState.ISSUED
    for probe in (
        identity(matching="email", email=" ann@example.COM"),
        identity(matching="phone", phone="+15550100"),
        identity(matching="profile_id", profile_id="ann-1"),
        identity(matching="custom", field_name="card", field_value="C-77"),
    ):
        found = await service.find_profile(store, account=tenant.account, database_id=db.id, identity=probe)
        assert found.id == code.profile_id
    with pytest.raises(ProfileNotFound):
        await service.find_profile(
            store, account=tenant.account, database_id=db.id, identity=identity(matching="phone", phone="+1")
        )


async def test_a_custom_field_name_with_a_dot_is_one_key(store: Store, tenant: Tenant) -> None:
    # Not a JSON path: SQLite's ->> would read "loyalty.card" as the field card inside loyalty.
    db = await service.create_profile_database(store, account=tenant.account, name="crm")
    card = identity(matching="custom", field_name="loyalty.card", field_value="C-1")
    made = await store.ensure_profile(database_id=db.id, identity=card, external_id="p-1")
    assert made.custom == {"loyalty.card": "C-1"}
    assert (await store.find_profile(database_id=db.id, identity=card)) == made


async def test_attach_with_a_code(store: Store, tenant: Tenant) -> None:
    db = await service.create_profile_database(store, account=tenant.account, name="crm")
    ann = identity(matching="email", email="ann@example.com")
    bob = identity(matching="email", email="bob@example.com")
    pool = tenant.pool.id
    attached = await service.attach_code(
        store, account=tenant.account, pool_id=pool, database_id=db.id, identity=ann, code="CODE003"
    )
    assert attached.value == "CODE003" and attached.state is CodeState.ISSUED
    for who in (ann, bob):  # a single-use pool: attached is attached, even to the same profile
        with pytest.raises(Conflict):
            await service.attach_code(
                store, account=tenant.account, pool_id=pool, database_id=db.id, identity=who, code="CODE003"
            )
    new = await service.attach_code(
        store, account=tenant.account, pool_id=pool, database_id=db.id, identity=bob, code="NEW-1"
    )
    assert new.value == "NEW-1" and new.profile_id is not None
    counts = (await service.get_pool(store, account=tenant.account, pool_id=pool)).counts
    assert (counts.available, counts.issued) == (9, 2)


async def test_a_refused_attach_creates_no_profile(store: Store, tenant: Tenant) -> None:
    # The profile used to be created (and kept) before the attach was refused.
    db = await service.create_profile_database(store, account=tenant.account, name="crm")
    ann = identity(matching="email", email="ann@example.com")
    args = {"account": tenant.account, "database_id": db.id}
    await service.attach_code(store, identity=ann, pool_id=tenant.pool.id, code="CODE000", **args)  # type: ignore[arg-type]
    empty = await service.create_pool(store, account=tenant.account, name="empty", settings=PoolSettings())
    refusals = [
        (Conflict, tenant.pool.id, "CODE000", identity(matching="email", email="bob@example.com")),
        (PoolExhausted, empty.id, None, identity(matching="phone", phone="+7 900 000 00 01")),
        (Conflict, tenant.pool.id, "CODE000", identity(matching="profile_id", profile_id="p-9")),
    ]
    for error, pool_id, code, who in refusals:
        with pytest.raises(error):
            await service.attach_code(store, identity=who, pool_id=pool_id, code=code, **args)  # type: ignore[arg-type]
        with pytest.raises(ProfileNotFound):
            await service.find_profile(store, identity=who, **args)  # type: ignore[arg-type]
    assert (await service.find_profile(store, identity=ann, **args)).email == "ann@example.com"  # type: ignore[arg-type]


async def test_attach_in_a_multi_use_pool_is_idempotent_for_the_holder(store: Store, tenant: Tenant) -> None:
    pool = await service.create_pool(
        store, account=tenant.account, name="multi", settings=PoolSettings(max_uses=5)
    )
    db = await service.create_profile_database(store, account=tenant.account, name="crm")
    ann = identity(matching="email", email="ann@example.com")
    args = {"account": tenant.account, "pool_id": pool.id, "database_id": db.id, "code": "M1"}
    first = await service.attach_code(store, identity=ann, **args)  # type: ignore[arg-type]
    again = await service.attach_code(store, identity=ann, **args)  # type: ignore[arg-type]
    assert first.id == again.id
    with pytest.raises(Conflict):
        await service.attach_code(store, identity=identity(matching="email", email="x@y.z"), **args)  # type: ignore[arg-type]


async def test_200_concurrent_attaches_on_150_codes(store: Store, tenant: Tenant) -> None:
    pool = await service.create_pool(store, account=tenant.account, name="p150", settings=PoolSettings())
    await service.import_codes(
        store, account=tenant.account, pool_id=pool.id, values=[f"P{i:04d}" for i in range(150)]
    )
    db = await service.create_profile_database(store, account=tenant.account, name="crm")

    async def one(i: int) -> object:
        who = identity(matching="email", email=f"user{i}@example.com")
        try:
            return await service.attach_code(
                store, account=tenant.account, pool_id=pool.id, database_id=db.id, identity=who, code=None
            )
        except PoolExhausted as exc:
            return exc

    results = await asyncio.gather(*(one(i) for i in range(200)))
    codes = [r for r in results if not isinstance(r, PoolExhausted)]
    assert len(codes) == 150 and sum(isinstance(r, PoolExhausted) for r in results) == 50
    assert len({c.id for c in codes}) == 150  # type: ignore[attr-defined]
    assert len({c.profile_id for c in codes}) == 150  # type: ignore[attr-defined]
    counts = (await service.get_pool(store, account=tenant.account, pool_id=pool.id)).counts
    assert (counts.available, counts.issued) == (0, 150)
    for i, result in enumerate(results):  # the 50 who got no code got no profile either
        if isinstance(result, PoolExhausted):
            who = identity(matching="email", email=f"user{i}@example.com")
            with pytest.raises(ProfileNotFound):
                await service.find_profile(store, account=tenant.account, database_id=db.id, identity=who)


async def test_detach_returns_an_unused_code_to_the_pool(store: Store, tenant: Tenant) -> None:
    db = await service.create_profile_database(store, account=tenant.account, name="crm")
    ann = identity(matching="phone", phone="+44 20 0000")
    pool = tenant.pool.id
    code = await service.attach_code(
        store, account=tenant.account, pool_id=pool, database_id=db.id, identity=ann, code=None
    )
    with pytest.raises(ProfileNotFound):
        await service.detach_code(
            store,
            account=tenant.account,
            pool_id=pool,
            database_id=db.id,
            code=code.value,
            identity=identity(matching="phone", phone="+1"),
        )
    detached = await service.detach_code(
        store, account=tenant.account, pool_id=pool, database_id=db.id, code=code.value, identity=ann
    )
    assert detached.profile_id is None and detached.state is CodeState.AVAILABLE
    with pytest.raises(Conflict):
        await service.detach_code(
            store, account=tenant.account, pool_id=pool, database_id=db.id, code=code.value
        )
    with pytest.raises(CodeNotFound):
        await service.detach_code(store, account=tenant.account, pool_id=pool, database_id=db.id, code="NOPE")


async def test_activate_update_and_details(store: Store, tenant: Tenant) -> None:
    db = await service.create_profile_database(store, account=tenant.account, name="crm")
    pool = tenant.pool.id
    with pytest.raises(Conflict):
        await service.activate_code(store, account=tenant.account, pool_id=pool, code="CODE001")
    code = await service.attach_code(
        store,
        account=tenant.account,
        pool_id=pool,
        database_id=db.id,
        identity=identity(matching="profile_id", profile_id="p1"),
        code="CODE001",
    )
    await service.activate_code(store, account=tenant.account, pool_id=pool, code=code.value)
    details = await service.code_details(store, account=tenant.account, pool_id=pool, code=code.value)
    assert details.activated_at is not None and details.profile is not None
    assert details.profile.external_id == "p1"
    await service.deactivate_code(store, account=tenant.account, pool_id=pool, code=code.value)
    details = await service.code_details(store, account=tenant.account, pool_id=pool, code=code.value)
    assert details.activated_at is None and details.code.usage_count == 0
    with pytest.raises(Conflict):
        await service.deactivate_code(store, account=tenant.account, pool_id=pool, code=code.value)
    when = store.clock() + timedelta(days=3)
    expiring = await service.set_code_expiry(
        store, account=tenant.account, pool_id=pool, code=code.value, expires_at=when
    )
    assert expiring.expires_at == when


async def test_another_accounts_database_and_pool_are_missing(
    store: Store, tenant: Tenant, other: Tenant
) -> None:
    mine = await service.create_profile_database(store, account=tenant.account, name="crm")
    theirs = await service.create_profile_database(store, account=other.account, name="crm")
    who = identity(matching="email", email="a@b.c")
    with pytest.raises(NotFound):
        await service.attach_code(
            store,
            account=tenant.account,
            pool_id=tenant.pool.id,
            database_id=theirs.id,
            identity=who,
            code=None,
        )
    with pytest.raises(PoolNotFound):
        await service.attach_code(
            store, account=tenant.account, pool_id=other.pool.id, database_id=mine.id, identity=who, code=None
        )


async def test_export_pages_walk_every_code(store: Store, tenant: Tenant) -> None:
    pages = [
        p
        async for p in service.code_pages(store, account=tenant.account, pool_id=tenant.pool.id, page_size=3)
    ]
    assert [len(p) for p in pages] == [3, 3, 3, 1]


async def test_import_each_reports_every_value(store: Store, tenant: Tenant) -> None:
    results = await service.import_each(
        store, account=tenant.account, pool_id=tenant.pool.id, values=["X1", "CODE001", "X1", ""]
    )
    assert [r.error for r in results] == [None, "duplicated", "duplicated", "empty"]


async def test_activation_is_by_the_holder_in_a_holder_only_pool(store: Store, tenant: Tenant) -> None:
    pool = await service.create_pool(
        store, account=tenant.account, name="held", settings=PoolSettings(max_uses=3, holder_only=True)
    )
    db = await service.create_profile_database(store, account=tenant.account, name="crm")
    code = await service.attach_code(
        store,
        account=tenant.account,
        pool_id=pool.id,
        database_id=db.id,
        identity=identity(matching="email", email="h@x.io"),
        code="HELD-1",
    )
    done = await service.activate_code(store, account=tenant.account, pool_id=pool.id, code="HELD-1")
    assert done.redemption.profile_id == code.profile_id
