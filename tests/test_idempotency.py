"""A replay answers what was first answered, or nothing: never a code or lease that came after (issue 15).

SQLite used to give a new row the id of a deleted last row, and a replay followed the id it had recorded to
whatever now held it: another account's code, a fresh code handed out a second time, another client's lease.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing

import httpx
import pytest

from promopool import service
from promopool.domain.errors import CodeNotFound, IdempotencyKeyReused, LeaseNotFound, PoolNotFound
from promopool.storage import Store
from tests.conftest import Tenant, make_tenant
from tests.reliability.integrity import pg_connection, sqlite_path


async def test_a_replay_after_a_delete_never_shows_another_accounts_code(store: Store) -> None:
    owner = await make_tenant(store, "owner", ["OWNED-1"])
    rival = await make_tenant(store, "rival")
    first = await service.claim(store, account=owner.account, pool_id=owner.pool.id, idempotency_key="K")
    assert first.code.value == "OWNED-1"
    await service.delete_code(store, account=owner.account, pool_id=owner.pool.id, value="OWNED-1")
    await service.import_codes(
        store, account=rival.account, pool_id=rival.pool.id, values=["B-SECRET-CODE-1"]
    )
    with pytest.raises(CodeNotFound):
        await service.claim(store, account=owner.account, pool_id=owner.pool.id, idempotency_key="K")
    theirs = await service.claim(store, account=rival.account, pool_id=rival.pool.id)
    assert theirs.code.value == "B-SECRET-CODE-1" and not theirs.replayed


async def test_a_replay_after_a_delete_hands_out_no_code_twice(store: Store) -> None:
    owner = await make_tenant(store, "owner", ["FIRST"])
    await service.claim(store, account=owner.account, pool_id=owner.pool.id, idempotency_key="K")
    await service.delete_code(store, account=owner.account, pool_id=owner.pool.id, value="FIRST")
    await service.import_codes(store, account=owner.account, pool_id=owner.pool.id, values=["FRESH"])
    with pytest.raises(CodeNotFound):
        await service.claim(store, account=owner.account, pool_id=owner.pool.id, idempotency_key="K")
    fresh = await service.claim(store, account=owner.account, pool_id=owner.pool.id)
    assert fresh.code.value == "FRESH" and not fresh.replayed
    pool = await service.get_pool(store, account=owner.account, pool_id=owner.pool.id)
    assert (pool.counts.available, pool.counts.issued) == (0, 1)


async def test_a_lease_replay_after_a_delete_never_shows_another_clients_lease(store: Store) -> None:
    owner = await make_tenant(store, "owner", ["LEASED-1"])
    first = await service.claim(
        store, account=owner.account, pool_id=owner.pool.id, lease_seconds=600, idempotency_key="cart"
    )
    assert first.lease is not None
    await service.delete_code(store, account=owner.account, pool_id=owner.pool.id, value="LEASED-1")
    await service.import_codes(store, account=owner.account, pool_id=owner.pool.id, values=["LEASED-2"])
    another = await service.claim(
        store, account=owner.account, pool_id=owner.pool.id, lease_seconds=600, idempotency_key="other-cart"
    )
    assert another.code.value == "LEASED-2" and another.lease is not None
    with pytest.raises(LeaseNotFound):
        await service.claim(
            store, account=owner.account, pool_id=owner.pool.id, lease_seconds=600, idempotency_key="cart"
        )


async def _point_key_at(url: str, key: str, result_id: int) -> None:
    """Make an idempotency record point at ``result_id``, as a reused id would (written past promopool)."""
    sql = "UPDATE idempotency_keys SET result_id = {} WHERE key = {}"
    if url.startswith("sqlite:"):
        with closing(sqlite3.connect(sqlite_path(url))) as conn, conn:
            conn.execute(sql.format("?", "?"), (result_id, key))
        return
    async with pg_connection(url) as conn:
        await conn.execute(sql.format("$1", "$2"), result_id, key)


async def test_a_replay_checks_that_what_it_points_at_is_of_its_pool(store: Store, database_url: str) -> None:
    """Even an id that came to mean another pool's code or lease is not followed there."""
    owner = await make_tenant(store, "owner", ["OWNED-1", "OWNED-2"])
    rival = await make_tenant(store, "rival", ["B-SECRET-CODE-1", "B-SECRET-CODE-2"])
    await service.claim(store, account=owner.account, pool_id=owner.pool.id, idempotency_key="K")
    theirs = await service.get_code(
        store, account=rival.account, pool_id=rival.pool.id, value="B-SECRET-CODE-1"
    )
    await _point_key_at(database_url, "K", theirs.id)
    with pytest.raises(CodeNotFound):
        await service.claim(store, account=owner.account, pool_id=owner.pool.id, idempotency_key="K")

    second = await service.create_pool(
        store, account=owner.account, name="second", settings=owner.pool.settings
    )
    await service.import_codes(store, account=owner.account, pool_id=second.id, values=["SECOND-1"])
    await service.claim(
        store, account=owner.account, pool_id=owner.pool.id, lease_seconds=600, idempotency_key="cart"
    )
    elsewhere = await service.claim(store, account=owner.account, pool_id=second.id, lease_seconds=600)
    assert elsewhere.lease is not None
    await _point_key_at(database_url, "cart", elsewhere.lease.id)
    with pytest.raises(LeaseNotFound):
        await service.claim(
            store, account=owner.account, pool_id=owner.pool.id, lease_seconds=600, idempotency_key="cart"
        )


async def test_a_pool_is_created_once_per_idempotency_key(store: Store) -> None:
    owner = await make_tenant(store, "owner")
    settings = owner.pool.settings
    first, replayed = await service.create_pool_once(
        store, account=owner.account, name="spring", settings=settings, idempotency_key="pool-1"
    )
    again, replayed_again = await service.create_pool_once(
        store, account=owner.account, name="spring", settings=settings, idempotency_key="pool-1"
    )
    assert (again.id, replayed, replayed_again) == (first.id, False, True)
    assert [p.name for p in await service.list_pools(store, account=owner.account)] == [
        "owner-pool",
        "spring",
    ]
    with pytest.raises(IdempotencyKeyReused):  # a claim is another request
        await service.claim(store, account=owner.account, pool_id=first.id, idempotency_key="pool-1")
    rival = await make_tenant(store, "rival")  # keys are per account
    theirs, replayed = await service.create_pool_once(
        store, account=rival.account, name="spring", settings=settings, idempotency_key="pool-1"
    )
    assert theirs.id != first.id and not replayed
    await service.delete_pool(store, account=owner.account, pool_id=first.id)
    with pytest.raises(PoolNotFound):  # what it created is gone: never another pool in its place
        await service.create_pool_once(
            store, account=owner.account, name="spring", settings=settings, idempotency_key="pool-1"
        )


async def test_a_retried_pool_creation_answers_the_first_pool(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = {**tenant.headers, "Idempotency-Key": "pool-spring"}
    created = await client.post("/v1/pools", json={"name": "spring"}, headers=headers)
    retried = await client.post("/v1/pools", json={"name": "spring"}, headers=headers)
    assert (created.status_code, retried.status_code) == (201, 200)
    assert retried.json() == created.json() and retried.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in created.headers
    listed = (await client.get("/v1/pools", headers=tenant.headers)).json()["pools"]
    assert [p["name"] for p in listed] == ["acme-pool", "spring"]
