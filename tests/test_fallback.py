"""Fallbacks (issue 18): an empty pool answers with its shared fallback code or continues from its fallback
pool, single and bulk, with the pool.fallback event; settings validated (ownership, cycles); both engines."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from promopool import service
from promopool.domain import PoolSettings
from promopool.domain.errors import InvalidInput, PoolExhausted
from promopool.storage import Store
from tests.conftest import Tenant
from tests.helpers import assert_counters_exact, assert_error, cli, other_engine, state_counts

Client = httpx.AsyncClient


async def _pool(store: Store, tenant: Tenant, name: str, codes: list[str], **settings: object) -> int:
    pool = await service.create_pool(
        store,
        account=tenant.account,
        name=name,
        settings=PoolSettings(**settings),  # type: ignore[arg-type]
    )
    if codes:
        await service.import_codes(store, account=tenant.account, pool_id=pool.id, values=codes)
    return pool.id


async def test_off_by_default_an_empty_pool_is_exhausted(client: Client, tenant: Tenant) -> None:
    h, pool_id = tenant.headers, tenant.pool.id
    body = (await client.get(f"/v1/pools/{pool_id}", headers=h)).json()
    assert body["fallback_code"] is None and body["fallback_pool_id"] is None
    assert body["fallback_since"] is None
    await client.post(f"/v1/pools/{pool_id}/claim", headers=h, json={"count": 10})
    assert_error(await client.post(f"/v1/pools/{pool_id}/claim", headers=h), 409, "pool_exhausted")


async def test_fallback_code_answers_an_empty_pool_and_marks_nothing(
    client: Client, store: Store, tenant: Tenant
) -> None:
    h = tenant.headers
    pool_id = await _pool(store, tenant, "shared", ["ONLY1"], fallback_code="WELCOME10")
    first = (await client.post(f"/v1/pools/{pool_id}/claim", headers=h)).json()
    assert first["code"] == "ONLY1" and "fallback" not in first  # shown only when true
    for _ in range(2):  # the fast lane (no body) and the route (a body) answer alike
        fell = (await client.post(f"/v1/pools/{pool_id}/claim", headers=h)).json()
        assert fell["code"] == "WELCOME10" and fell["fallback"] is True and fell["pool_id"] == pool_id
    routed = await client.post(f"/v1/pools/{pool_id}/claim", headers=h, json={})
    assert routed.json()["fallback"] is True
    bulk = (await client.post(f"/v1/pools/{pool_id}/claim", headers=h, json={"count": 3})).json()
    assert bulk["codes"] == ["WELCOME10"] * 3 and bulk["fallback"] is True and bulk["count"] == 3
    assert await state_counts(store, pool_id) == {"available": 0, "issued": 1, "redeemed": 0}
    assert_error(await client.get(f"/v1/pools/{pool_id}/codes/WELCOME10", headers=h), 404, "code_not_found")
    await assert_counters_exact(store, tenant.account, pool_id)


async def test_fallback_pool_continues_claims_and_says_which_pool(
    client: Client, store: Store, tenant: Tenant
) -> None:
    h = tenant.headers
    backup = await _pool(store, tenant, "backup", ["B1", "B2", "B3", "B4"])
    main = await _pool(store, tenant, "main", ["M1"], fallback_pool_id=backup)
    answers = [(await client.post(f"/v1/pools/{main}/claim", headers=h)).json() for _ in range(3)]
    assert [(a["code"], a["pool_id"], a.get("fallback", False)) for a in answers] == [
        ("M1", main, False),
        ("B1", backup, True),
        ("B2", backup, True),
    ]
    assert await state_counts(store, backup) == {"available": 2, "issued": 2, "redeemed": 0}
    await assert_counters_exact(store, tenant.account, backup)


async def test_keyed_fallback_claim_replays_from_the_fallback_pool(store: Store, tenant: Tenant) -> None:
    account = tenant.account
    backup = await _pool(store, tenant, "backup", ["B1", "B2"])
    main = await _pool(store, tenant, "main", [], fallback_pool_id=backup)
    first = await service.claim_with_fallback(store, account=account, pool_id=main, idempotency_key="k")
    again = await service.claim_with_fallback(store, account=account, pool_id=main, idempotency_key="k")
    assert first.code.value == again.code.value == "B1" and again.replayed and again.fallback
    bulk = await service.claim_many_with_fallback(
        store, account=account, pool_id=main, count=1, idempotency_key="bulk"
    )
    replay = await service.claim_many_with_fallback(
        store, account=account, pool_id=main, count=1, idempotency_key="bulk"
    )
    assert [c.value for c in bulk.codes] == [c.value for c in replay.codes] == ["B2"] and replay.replayed
    assert await state_counts(store, backup) == {"available": 0, "issued": 2, "redeemed": 0}


async def test_bulk_claim_is_served_whole_by_one_pool(store: Store, tenant: Tenant) -> None:
    account = tenant.account
    backup = await _pool(store, tenant, "backup", [f"B{i}" for i in range(5)])
    main = await _pool(store, tenant, "main", ["M1", "M2"], fallback_pool_id=backup)
    whole = await service.claim_many_with_fallback(store, account=account, pool_id=main, count=3)
    assert whole.pool_id == backup and whole.fallback and [c.value for c in whole.codes] == ["B0", "B1", "B2"]
    assert await state_counts(store, main) == {"available": 2, "issued": 0, "redeemed": 0}
    # partial stays exact: the pool with codes left gives what it has, nothing topped up from the fallback
    rest = await service.claim_many_with_fallback(store, account=account, pool_id=main, count=3, partial=True)
    assert rest.pool_id == main and not rest.fallback and [c.value for c in rest.codes] == ["M1", "M2"]
    # an empty pool: partial goes on to the fallback pool, which gives what it has
    fell = await service.claim_many_with_fallback(store, account=account, pool_id=main, count=5, partial=True)
    assert fell.pool_id == backup and [c.value for c in fell.codes] == ["B3", "B4"]
    with pytest.raises(PoolExhausted) as refused:
        await service.claim_many_with_fallback(store, account=account, pool_id=main, count=1)
    assert refused.value.details["pool_id"] == main  # the caller hears of its own pool
    for pool_id in (main, backup):
        await assert_counters_exact(store, account, pool_id)


async def test_a_chain_is_followed_and_an_emptied_fallback_ends_it(store: Store, tenant: Tenant) -> None:
    account = tenant.account
    last = await _pool(store, tenant, "last", [], fallback_code="SHARED")
    middle = await _pool(store, tenant, "middle", ["X"], fallback_pool_id=last)
    first = await _pool(store, tenant, "first", [], fallback_pool_id=middle)
    got = [await service.claim_with_fallback(store, account=account, pool_id=first) for _ in range(2)]
    assert [(c.code.value, c.code.pool_id, c.fallback) for c in got] == [
        ("X", middle, True),
        ("SHARED", last, True),
    ]
    await service.update_pool(store, account=account, pool_id=last, fallback_code=None)
    with pytest.raises(PoolExhausted):
        await service.claim_with_fallback(store, account=account, pool_id=first)


async def test_settings_refuse_other_accounts_cycles_and_both(
    store: Store, tenant: Tenant, other: Tenant
) -> None:
    account = tenant.account
    a = await _pool(store, tenant, "a", [])
    b = await _pool(store, tenant, "b", [], fallback_pool_id=a)
    for changes, field in [
        ({"fallback_pool_id": other.pool.id}, "fallback_pool_id"),  # another account's pool
        ({"fallback_pool_id": 10**9}, "fallback_pool_id"),
        ({"fallback_pool_id": b}, "fallback_pool_id"),  # a -> b -> a
        ({"fallback_pool_id": a}, "fallback_pool_id"),  # itself
        ({"fallback_pool_id": b, "fallback_code": "X"}, "fallback_code"),
        ({"fallback_code": " X"}, "fallback_code"),
        ({"valid_for_seconds": 0}, "valid_for_seconds"),
    ]:
        with pytest.raises(InvalidInput) as refused:
            await service.update_pool(store, account=account, pool_id=a, **changes)
        assert refused.value.details.get("field") == field, changes
    assert (await service.get_pool(store, account=account, pool_id=a)).settings == PoolSettings()
    with pytest.raises(InvalidInput):
        await _pool(store, tenant, "c", [], fallback_pool_id=other.pool.id)


async def test_api_settings_round_trip_and_refusals(client: Client, tenant: Tenant, other: Tenant) -> None:
    h = tenant.headers
    made = await client.post("/v1/pools", headers=h, json={"name": "p", "fallback_code": "FREE"})
    assert made.status_code == 201 and made.json()["fallback_code"] == "FREE"
    pool_id = made.json()["id"]
    changed = await client.patch(
        f"/v1/pools/{pool_id}",
        headers=h,
        json={"fallback_code": None, "fallback_pool_id": tenant.pool.id, "valid_for_seconds": 3600},
    )
    body = changed.json()
    assert (body["fallback_code"], body["fallback_pool_id"], body["valid_for_seconds"]) == (
        None,
        tenant.pool.id,
        3600,
    )
    refused = await client.patch(f"/v1/pools/{pool_id}", headers=h, json={"fallback_pool_id": other.pool.id})
    assert_error(refused, 400, "invalid_input")
    assert (await client.get(f"/v1/pools/{pool_id}", headers=h)).json()["fallback_pool_id"] == tenant.pool.id


async def test_starting_to_fall_back_queues_one_event_until_a_refill(store: Store, tenant: Tenant) -> None:
    account = tenant.account
    pool_id = await _pool(store, tenant, "p", ["ONE"], fallback_code="SHARED")
    await service.set_low_stock_alert(
        store, account=account, pool_id=pool_id, threshold=0, webhook_url="https://hooks.example/p"
    )

    async def fallback_events() -> list[dict[str, object]]:
        deliveries = await service.list_deliveries(store, account=account, pool_id=pool_id, limit=50)
        return [d.data for d in deliveries if d.event == "pool.fallback"]

    await service.claim_with_fallback(store, account=account, pool_id=pool_id)
    assert await fallback_events() == []
    for _ in range(3):
        await service.claim_with_fallback(store, account=account, pool_id=pool_id)
    events = await fallback_events()
    assert len(events) == 1 and events[0]["pool_id"] == pool_id and events[0]["fallback_code"] is True
    assert (await service.get_pool(store, account=account, pool_id=pool_id)).fallback_since is not None
    await service.import_codes(store, account=account, pool_id=pool_id, values=["TWO"])
    assert (await service.get_pool(store, account=account, pool_id=pool_id)).fallback_since is None
    for _ in range(2):
        await service.claim_with_fallback(store, account=account, pool_id=pool_id)
    assert len(await fallback_events()) == 2


async def test_dialect_claims_ignore_the_fallback(store: Store, tenant: Tenant) -> None:
    """service.claim (PersonaClick's fetch, the CLI) keeps its meaning: an empty pool is exhausted."""
    pool_id = await _pool(store, tenant, "p", [], fallback_code="SHARED")
    with pytest.raises(PoolExhausted):
        await service.claim(store, account=tenant.account, pool_id=pool_id)


async def test_a_deleted_fallback_pool_switches_the_fallback_off(store: Store, tenant: Tenant) -> None:
    backup = await _pool(store, tenant, "backup", ["B"])
    main = await _pool(store, tenant, "main", [], fallback_pool_id=backup)
    await service.delete_pool(store, account=tenant.account, pool_id=backup)
    pool = await service.get_pool(store, account=tenant.account, pool_id=main)
    assert pool.settings.fallback_pool_id is None
    with pytest.raises(PoolExhausted):
        await service.claim_with_fallback(store, account=tenant.account, pool_id=main)


def test_cli_pools_set_fallback_and_relative_expiry(database_url: str) -> None:
    cli(database_url, "migrate")
    backup = cli(database_url, "pools", "create", "backup").strip()
    main = cli(database_url, "pools", "create", "main").strip()
    shown = json.loads(
        cli(database_url, "pools", "set", main, "--fallback-pool", backup, "--valid-for", "3600", "--json")
    )
    assert shown == {
        "pool_id": int(main),
        "low_stock_threshold": None,
        "webhook_url": None,
        "fallback_code": None,
        "fallback_pool_id": int(backup),
        "valid_for_seconds": 3600,
    }
    refused = cli(database_url, "pools", "set", backup, "--fallback-pool", main, exit_code=1)
    assert "cycle" in refused
    text = cli(database_url, "pools", "set", main, "--fallback-pool", "0", "--fallback-code", "FREE")
    assert "fallback_code FREE, fallback_pool_id None, valid_for_seconds 3600" in text
    cleared = json.loads(
        cli(database_url, "pools", "set", main, "--fallback-code", "", "--valid-for", "0", "--json")
    )
    assert (cleared["fallback_code"], cleared["valid_for_seconds"]) == (None, None)


async def test_concurrent_claims_on_an_empty_pool_fall_back_exactly(store: Store, tenant: Tenant) -> None:
    """Every fallback claim gets its own code of the fallback pool, and the pool announces one start."""
    account = tenant.account
    backup = await _pool(store, tenant, "backup", [f"B{i:02d}" for i in range(30)])
    main = await _pool(store, tenant, "main", [], fallback_pool_id=backup)
    await service.set_low_stock_alert(
        store, account=account, pool_id=main, threshold=0, webhook_url="https://hooks.example/p"
    )
    claims = [service.claim_with_fallback(store, account=account, pool_id=main) for _ in range(25)]
    claimed = await asyncio.gather(*claims)
    values = [c.code.value for c in claimed]
    assert len(set(values)) == 25 and all(c.fallback and c.code.pool_id == backup for c in claimed)
    assert await state_counts(store, backup) == {"available": 5, "issued": 25, "redeemed": 0}
    deliveries = await service.list_deliveries(store, account=account, pool_id=main, limit=50)
    assert [d.event for d in deliveries] == ["pool.fallback"]
    await assert_counters_exact(store, account, backup)


async def test_a_copy_keeps_fallbacks_that_point_forward(
    store: Store, tenant: Tenant, tmp_path: Path, postgres_url: str
) -> None:
    """A pool may fall back to a pool made after it: the copy (pools in id order) must still take it."""
    main = await _pool(store, tenant, "main", [])
    backup = await _pool(store, tenant, "backup", ["B1"])
    await service.update_pool(store, account=tenant.account, pool_id=main, fallback_pool_id=backup)
    async with other_engine(store, tmp_path, postgres_url, "copy") as copy:
        assert (await service.copy_database(source=store, target=copy)).ok
        claimed = await service.claim_with_fallback(copy, account=tenant.account, pool_id=main)
        assert (claimed.code.value, claimed.code.pool_id, claimed.fallback) == ("B1", backup, True)


async def test_an_expired_fallback_pool_ends_the_chain(store: Store, tenant: Tenant) -> None:
    account = tenant.account
    last = await _pool(store, tenant, "last", [], fallback_code="SHARED")
    backup = await _pool(store, tenant, "backup", ["B1"], fallback_pool_id=last)
    main = await _pool(store, tenant, "main", [], fallback_pool_id=backup)
    past = store.clock() - timedelta(days=1)
    await service.update_pool(store, account=account, pool_id=backup, expires_at=past)
    with pytest.raises(PoolExhausted) as refused:
        await service.claim_with_fallback(store, account=account, pool_id=main)
    assert refused.value.details["pool_id"] == main
    assert await state_counts(store, backup) == {"available": 1, "issued": 0, "redeemed": 0}


async def test_recipient_claims_do_not_fall_back(client: Client, store: Store, tenant: Tenant) -> None:
    """A recipient's code belongs to the pool asked (the same code every time): an empty pool answers 409."""
    h = tenant.headers
    backup = await _pool(store, tenant, "backup", ["B1", "B2"])
    shared = await _pool(store, tenant, "shared", [], fallback_code="WELCOME10")
    chained = await _pool(store, tenant, "chained", [], fallback_pool_id=backup)
    for pool_id in (shared, chained):
        url = f"/v1/pools/{pool_id}/claim"
        assert_error(await client.post(url, headers=h, json={"recipient": "r-1"}), 409, "pool_exhausted")
        assert_error(await client.post(url, headers=h, json={"recipients": ["r-1"]}), 409, "pool_exhausted")
        keyed = {**h, "Idempotency-Key": f"r-{pool_id}"}
        assert_error(await client.post(url, headers=keyed, json={"recipient": "r-1"}), 409, "pool_exhausted")
        assert (await client.post(url, headers=h)).json()["fallback"] is True  # a plain claim still does
    assert await state_counts(store, backup) == {"available": 1, "issued": 1, "redeemed": 0}


async def test_a_keyed_patch_of_the_fallback_settings_replays_its_first_answer(
    client: Client, store: Store, tenant: Tenant
) -> None:
    h, url = tenant.headers, f"/v1/pools/{tenant.pool.id}"
    backup = await _pool(store, tenant, "backup", ["B1"])
    body = {"fallback_pool_id": backup, "valid_for_seconds": 3600}
    keyed = {**h, "Idempotency-Key": "fallback-1"}
    first = await client.patch(url, headers=keyed, json=body)
    assert first.status_code == 200 and first.json()["fallback_pool_id"] == backup
    await client.patch(url, headers=h, json={"fallback_pool_id": None, "fallback_code": "LATER"})
    again = await client.patch(url, headers=keyed, json=body)
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    now = (await client.get(url, headers=h)).json()
    assert (now["fallback_pool_id"], now["fallback_code"]) == (None, "LATER")  # the replay changed nothing
    reused = await client.patch(url, headers=keyed, json={"fallback_pool_id": backup})
    assert_error(reused, 422, "idempotency_key_reused")


async def test_keyed_and_plain_fallback_changes_at_once_take_turns(store: Store, tenant: Tenant) -> None:
    """A keyed PATCH takes the pool's row before its change: the account's row must still come first, or it
    and a plain change of the same pool wait for each other (PostgreSQL: a deadlock)."""
    account, pool_id = tenant.account, tenant.pool.id
    backups = [await _pool(store, tenant, f"backup{i}", []) for i in range(2)]

    async def change(i: int) -> int | None:
        changed = await service.update_pool_and_alert(
            store,
            account=account,
            pool_id=pool_id,
            idempotency_key=f"turn-{i}" if i % 2 else None,
            fallback_pool_id=backups[i % 2],
        )
        return changed.value[0].settings.fallback_pool_id

    results = await asyncio.gather(*(change(i) for i in range(16)))
    assert set(results) == set(backups)
