"""The use cases on both engines: import, claim, idempotency, counts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from promopool import service
from promopool.domain import Claimed, CodeState, PoolSettings
from promopool.domain.errors import (
    CodeNotFound,
    IdempotencyKeyReused,
    InvalidCode,
    InvalidInput,
    PoolExhausted,
    PoolExpired,
    PoolNotFound,
    Unauthenticated,
)
from promopool.storage import Store
from tests.conftest import Tenant, make_tenant


async def test_import_counts_duplicates_and_invalid(store: Store, tenant: Tenant) -> None:
    report = await service.import_codes(
        store,
        account=tenant.account,
        pool_id=tenant.pool.id,
        values=["NEW1", " NEW2 ", "NEW1", "CODE000", "", "x" * 129, "bad\x00code", "tab\tcode"],
    )
    assert (report.inserted, report.duplicates, report.invalid) == (2, 2, 4)
    assert [(s.position, s.reason) for s in report.invalid_samples] == [
        (5, "empty"),
        (6, "too_long"),
        (7, "control_character"),
        (8, "control_character"),
    ]
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    assert pool.counts.available == 12
    assert (
        await service.get_code(store, account=tenant.account, pool_id=tenant.pool.id, value="NEW2")
    ).value == "NEW2"


async def test_strict_import_refuses_whole_upload(store: Store, tenant: Tenant) -> None:
    with pytest.raises(InvalidCode) as raised:
        await service.import_codes(
            store, account=tenant.account, pool_id=tenant.pool.id, values=["OK1", "bad\x00"], strict=True
        )
    assert raised.value.details["invalid"] == 1
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    assert pool.counts.available == 10  # nothing stored


async def test_import_in_batches_spanning_duplicates(store: Store, tenant: Tenant) -> None:
    values = [f"B{i}" for i in range(25)] * 2
    report = await service.import_codes(
        store, account=tenant.account, pool_id=tenant.pool.id, values=values, batch_size=7
    )
    assert (report.inserted, report.duplicates) == (25, 25)


async def test_an_upload_breaking_off_keeps_exactly_the_batches_reported(
    store: Store, tenant: Tenant
) -> None:
    # A batch is stored while the next is read: when the upload breaks off, the batch on its way must
    # still be complete (committed and reported) before the error reaches the caller.
    reported: list[int] = []

    async def upload() -> AsyncIterator[str]:
        for i in range(12):
            yield f"U{i:02d}"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await service.import_codes(
            store,
            account=tenant.account,
            pool_id=tenant.pool.id,
            values=upload(),
            batch_size=5,
            on_batch=lambda report: reported.append(report.inserted),
        )
    assert reported == [5, 10]
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    assert pool.counts.available == 10 + 10
    assert await service.get_code(store, account=tenant.account, pool_id=tenant.pool.id, value="U09")
    with pytest.raises(CodeNotFound):
        await service.get_code(store, account=tenant.account, pool_id=tenant.pool.id, value="U10")


async def test_claims_hand_out_each_code_once_then_exhaust(store: Store, tenant: Tenant) -> None:
    results = await asyncio.gather(
        *[service.claim(store, account=tenant.account, pool_id=tenant.pool.id) for _ in range(15)],
        return_exceptions=True,
    )
    codes = [r.code.value for r in results if not isinstance(r, BaseException)]
    errors = [r for r in results if isinstance(r, BaseException)]
    assert sorted(codes) == [f"CODE{i:03d}" for i in range(10)]
    assert len(errors) == 5 and all(isinstance(e, PoolExhausted) for e in errors)
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    assert (pool.counts.available, pool.counts.issued) == (0, 10)
    code = await service.get_code(store, account=tenant.account, pool_id=tenant.pool.id, value="CODE003")
    assert code.state is CodeState.ISSUED and code.issued_at is not None


async def test_claim_order_follows_import_order_across_duplicate_gaps(store: Store, tenant: Tenant) -> None:
    # The second import is mostly duplicates: their unused sequence numbers must not stall claims.
    await service.import_codes(
        store,
        account=tenant.account,
        pool_id=tenant.pool.id,
        values=[f"CODE{i:03d}" for i in range(10)] + ["Z"],
    )
    got = [
        (await service.claim(store, account=tenant.account, pool_id=tenant.pool.id)).code.value
        for _ in range(11)
    ]
    assert got == [f"CODE{i:03d}" for i in range(10)] + ["Z"]


async def test_claim_skips_codes_deleted_ahead_of_cursor(store: Store, tenant: Tenant) -> None:
    await service.delete_code(store, account=tenant.account, pool_id=tenant.pool.id, value="CODE000")
    first = await service.claim(store, account=tenant.account, pool_id=tenant.pool.id)
    assert first.code.value == "CODE001"
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    assert (pool.counts.available, pool.counts.issued) == (8, 1)


@pytest.mark.parametrize("keyed", [False, True], ids=["plain", "keyed"])
async def test_claim_batch_reads_on_past_codes_it_cannot_hand_out(
    store: Store, tenant: Tenant, keyed: bool
) -> None:
    # CODE001-003 expire: the batch's first read of four codes yields one, so it must read on, and its
    # cursor must end past everything it read, so the next claim does not read those codes again.
    past = datetime(2020, 1, 1, tzinfo=UTC)
    for value in ("CODE001", "CODE002", "CODE003"):
        await service.set_code_expiry(
            store, account=tenant.account, pool_id=tenant.pool.id, code=value, expires_at=past
        )
    keys = [f"k{i}" if keyed else None for i in range(4)]
    results = await store.claim_batch(tenant.account.id, tenant.pool.id, keys)
    assert [r.code.value for r in results if isinstance(r, Claimed)] == [
        "CODE000",
        "CODE004",
        "CODE005",
        "CODE006",
    ]
    following = await service.claim(store, account=tenant.account, pool_id=tenant.pool.id)
    assert following.code.value == "CODE007"
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    assert pool.counts.issued == 5


async def test_idempotency_key_replays_the_same_code(store: Store, tenant: Tenant) -> None:
    first = await service.claim(
        store, account=tenant.account, pool_id=tenant.pool.id, idempotency_key="order-1"
    )
    again = await service.claim(
        store, account=tenant.account, pool_id=tenant.pool.id, idempotency_key="order-1"
    )
    assert again.code.value == first.code.value and again.replayed and not first.replayed
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    assert pool.counts.issued == 1


async def test_concurrent_twins_with_one_key_get_one_code(store: Store, tenant: Tenant) -> None:
    results = await asyncio.gather(
        *[
            service.claim(store, account=tenant.account, pool_id=tenant.pool.id, idempotency_key="same")
            for _ in range(8)
        ]
    )
    assert len({r.code.value for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    assert pool.counts.issued == 1


async def test_idempotency_key_on_another_pool_is_refused(store: Store, tenant: Tenant) -> None:
    second = await service.create_pool(store, account=tenant.account, name="second", settings=PoolSettings())
    await service.import_codes(store, account=tenant.account, pool_id=second.id, values=["S1"])
    await service.claim(store, account=tenant.account, pool_id=tenant.pool.id, idempotency_key="k")
    with pytest.raises(IdempotencyKeyReused):
        await service.claim(store, account=tenant.account, pool_id=second.id, idempotency_key="k")
    assert (await service.get_pool(store, account=tenant.account, pool_id=second.id)).counts.available == 1


async def test_key_of_an_exhausted_claim_is_not_remembered(store: Store, tenant: Tenant) -> None:
    empty = await service.create_pool(store, account=tenant.account, name="empty", settings=PoolSettings())
    with pytest.raises(PoolExhausted):
        await service.claim(store, account=tenant.account, pool_id=empty.id, idempotency_key="retry-me")
    await service.import_codes(store, account=tenant.account, pool_id=empty.id, values=["LATE"])
    claimed = await service.claim(store, account=tenant.account, pool_id=empty.id, idempotency_key="retry-me")
    assert claimed.code.value == "LATE" and not claimed.replayed


async def test_bad_idempotency_key_is_refused(store: Store, tenant: Tenant) -> None:
    with pytest.raises(InvalidInput):
        await service.claim(store, account=tenant.account, pool_id=tenant.pool.id, idempotency_key="x" * 256)


async def test_idempotency_keys_are_kept_for_the_ttl(store: Store, tenant: Tenant) -> None:
    await service.claim(store, account=tenant.account, pool_id=tenant.pool.id, idempotency_key="kept")
    assert await service.purge_idempotency_keys(store, ttl=timedelta(hours=24)) == 0
    assert await service.purge_idempotency_keys(store, ttl=timedelta(seconds=-1)) == 1


async def test_other_accounts_pool_is_not_found(store: Store, tenant: Tenant, other: Tenant) -> None:
    with pytest.raises(PoolNotFound):
        await service.claim(store, account=other.account, pool_id=tenant.pool.id)
    with pytest.raises(PoolNotFound):
        await service.import_codes(store, account=other.account, pool_id=tenant.pool.id, values=["X"])
    with pytest.raises(PoolNotFound):
        await service.get_code(store, account=other.account, pool_id=tenant.pool.id, value="CODE000")
    assert (
        await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    ).counts.available == 10


async def test_expired_pool_hands_out_nothing(store: Store, tenant: Tenant) -> None:
    past = store.clock() - timedelta(seconds=1)
    await service.update_pool(store, account=tenant.account, pool_id=tenant.pool.id, expires_at=past)
    with pytest.raises(PoolExpired):
        await service.claim(store, account=tenant.account, pool_id=tenant.pool.id)


async def test_update_and_delete_pool(store: Store, tenant: Tenant) -> None:
    pool = await service.update_pool(
        store, account=tenant.account, pool_id=tenant.pool.id, name="renamed", max_uses=5, public_fetch=True
    )
    assert (pool.name, pool.settings.max_uses, pool.settings.public_fetch) == ("renamed", 5, True)
    with pytest.raises(InvalidInput):
        await service.update_pool(store, account=tenant.account, pool_id=tenant.pool.id, max_uses=0)
    await service.delete_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    with pytest.raises(PoolNotFound):
        await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)


async def test_list_codes_pages_with_state_filter(store: Store, tenant: Tenant) -> None:
    await service.claim(store, account=tenant.account, pool_id=tenant.pool.id)
    page = await service.list_codes(store, account=tenant.account, pool_id=tenant.pool.id, limit=4)
    assert [c.value for c in page] == ["CODE000", "CODE001", "CODE002", "CODE003"]
    rest = await service.list_codes(
        store, account=tenant.account, pool_id=tenant.pool.id, after=page[-1].value, limit=100
    )
    assert len(rest) == 6
    issued = await service.list_codes(
        store, account=tenant.account, pool_id=tenant.pool.id, state=CodeState.ISSUED
    )
    assert [c.value for c in issued] == ["CODE000"]


async def test_delete_code_and_missing_code(store: Store, tenant: Tenant) -> None:
    await service.delete_code(store, account=tenant.account, pool_id=tenant.pool.id, value="CODE005")
    with pytest.raises(CodeNotFound):
        await service.delete_code(store, account=tenant.account, pool_id=tenant.pool.id, value="CODE005")
    assert (
        await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    ).counts.available == 9


async def test_api_keys_are_stored_hashed_and_authenticate(store: Store) -> None:
    new = await service.create_account(store, name="hashy")
    assert (await service.authenticate(store, api_key=new.api_key)).id == new.account.id
    with pytest.raises(Unauthenticated):
        await service.authenticate(store, api_key=new.api_key + "x")
    extra = await service.create_api_key(store, account=new.account)
    assert (await service.authenticate(store, api_key=extra)).id == new.account.id


async def test_default_account_only_on_empty_database(store: Store) -> None:
    created = await service.ensure_default_account(store)
    assert created is not None and created.account.name == "default"
    assert await service.ensure_default_account(store) is None


async def test_cancelled_claim_still_records_its_code(store: Store, tenant: Tenant) -> None:
    # A client that disconnects mid-claim: the handler is cancelled, the claim is not.
    task = asyncio.create_task(service.claim(store, account=tenant.account, pool_id=tenant.pool.id))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(200):
        pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
        if pool.counts.issued:
            break
        await asyncio.sleep(0.01)
    assert (pool.counts.available, pool.counts.issued) == (9, 1)
    issued = await service.list_codes(
        store, account=tenant.account, pool_id=tenant.pool.id, state=CodeState.ISSUED
    )
    assert len(issued) == 1
    # and the connection it ran on still works
    assert (await service.claim(store, account=tenant.account, pool_id=tenant.pool.id)).code.value != issued[
        0
    ].value


async def test_many_tenants_do_not_share_codes(store: Store) -> None:
    a = await make_tenant(store, "a", ["SAME1", "SAME2"])
    b = await make_tenant(store, "b", ["SAME1", "SAME2"])
    got_a = {
        (await service.claim(store, account=a.account, pool_id=a.pool.id)).code.pool_id for _ in range(2)
    }
    got_b = {
        (await service.claim(store, account=b.account, pool_id=b.pool.id)).code.pool_id for _ in range(2)
    }
    assert got_a == {a.pool.id} and got_b == {b.pool.id}
