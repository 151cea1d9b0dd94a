"""Low-stock events: one per crossing (also under concurrency), signed, retried, never in a claim's way."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest

from promopool import service
from promopool.domain.alerts import DeliveryState
from promopool.domain.errors import InvalidInput, PoolExhausted
from promopool.storage import Store
from promopool.storage.coalesce import MAX_BATCH
from tests.conftest import Tenant, make_tenant
from tests.helpers import drain_worker, execute_sql, run_workers
from tests.webhook_receiver import Receiver, webhook_receiver

NO_WAIT = (timedelta(0), timedelta(0))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as the_receiver:
        yield the_receiver


async def claim_n(store: Store, tenant: Tenant, n: int) -> None:
    for _ in range(n):
        await service.claim(store, account=tenant.account, pool_id=tenant.pool.id)


async def deliveries(store: Store, tenant: Tenant) -> list[int]:
    found = await service.list_deliveries(store, account=tenant.account, pool_id=tenant.pool.id)
    return [d.data["available"] for d in reversed(found)]


async def test_alert_settings_are_checked(store: Store, tenant: Tenant, other: Tenant) -> None:
    account, pool_id = tenant.account, tenant.pool.id
    for bad in ("ftp://x.example/", "http://", "https://a b.example/", "x" * 10):
        with pytest.raises(InvalidInput):
            await service.set_low_stock_alert(
                store, account=account, pool_id=pool_id, threshold=1, webhook_url=bad
            )
    with pytest.raises(InvalidInput):
        await service.set_low_stock_alert(store, account=account, pool_id=pool_id, threshold=-1)
    with pytest.raises(InvalidInput):
        await service.set_low_stock_alert(
            store, account=account, pool_id=pool_id, threshold=None, webhook_url="https://x.example/"
        )
    with pytest.raises(Exception, match="not found"):
        await service.set_low_stock_alert(store, account=account, pool_id=other.pool.id, threshold=1)
    await service.set_low_stock_alert(store, account=account, pool_id=pool_id, threshold=3, webhook_url=" ")
    alert = await service.get_low_stock_alert(store, account=account, pool_id=pool_id)
    assert alert is not None and (alert.threshold, alert.webhook_url) == (3, None)
    await service.set_low_stock_alert(store, account=account, pool_id=pool_id, threshold=None)
    assert await service.get_low_stock_alert(store, account=account, pool_id=pool_id) is None
    first = await service.webhook_secret(store, account=account)
    assert first == await service.webhook_secret(store, account=account) and first.startswith("whsec_")
    rotated = await service.rotate_webhook_secret(store, account=account)
    assert rotated != first and rotated == await service.webhook_secret(store, account=account)


async def test_one_event_per_crossing(store: Store, tenant: Tenant) -> None:
    account, pool_id = tenant.account, tenant.pool.id  # 10 codes
    await service.set_low_stock_alert(
        store, account=account, pool_id=pool_id, threshold=5, webhook_url="https://shop.example/hook"
    )
    await claim_n(store, tenant, 4)  # 10 -> 6: above the threshold
    assert await deliveries(store, tenant) == []
    await claim_n(store, tenant, 1)  # 6 -> 5: the crossing
    assert await deliveries(store, tenant) == [5]
    await claim_n(store, tenant, 5)  # down to 0, and beyond
    with pytest.raises(PoolExhausted):
        await claim_n(store, tenant, 1)
    assert await deliveries(store, tenant) == [5]
    # A refill above the threshold arms the alert again; one batch jumping past it is one crossing.
    await service.import_codes(store, account=account, pool_id=pool_id, values=[f"R{i}" for i in range(8)])
    results = await asyncio.gather(
        *[service.claim(store, account=account, pool_id=pool_id) for _ in range(6)]
    )
    assert len({r.code.value for r in results}) == 6
    assert await deliveries(store, tenant) == [5, 2]
    [latest, _] = await service.list_deliveries(store, account=account, pool_id=pool_id)
    assert latest.event == "pool.low_stock" and latest.state is DeliveryState.PENDING
    assert latest.data == {"pool_id": pool_id, "pool_name": tenant.pool.name, "available": 2, "threshold": 5}


async def test_no_url_no_delivery(store: Store, tenant: Tenant) -> None:
    await service.set_low_stock_alert(store, account=tenant.account, pool_id=tenant.pool.id, threshold=9)
    await claim_n(store, tenant, 3)
    assert await deliveries(store, tenant) == []


async def test_delivered_signed_and_once(store: Store, tenant: Tenant, receiver: Receiver) -> None:
    account, pool_id = tenant.account, tenant.pool.id
    await service.set_low_stock_alert(
        store, account=account, pool_id=pool_id, threshold=8, webhook_url=receiver.url
    )
    await claim_n(store, tenant, 3)
    sender = service.WebhookSender(store)
    assert await sender.deliver_due() == 1
    assert await sender.deliver_due() == 0
    [got] = receiver.received
    assert got.signed_by(await service.webhook_secret(store, account=account))
    assert not got.signed_by("whsec_other")
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-promopool-event"] == "pool.low_stock"
    event = got.json
    assert event["type"] == "pool.low_stock" and str(event["id"]) == got.headers["x-promopool-delivery"]
    assert event["data"] == {
        "pool_id": pool_id,
        "pool_name": tenant.pool.name,
        "available": 8,
        "threshold": 8,
    }
    [delivery] = await service.list_deliveries(store, account=account, pool_id=pool_id)
    assert (delivery.state, delivery.attempts, delivery.last_status) == (DeliveryState.DELIVERED, 1, 200)


async def test_leases_are_disjoint_and_purge_keeps_pending(store: Store, tenant: Tenant) -> None:
    account, pool_id = tenant.account, tenant.pool.id  # 10 codes
    await service.set_low_stock_alert(
        store, account=account, pool_id=pool_id, threshold=9, webhook_url="https://shop.example/hook"
    )
    for i in range(3):  # three crossings: each claim takes 10 available to 9, each import re-arms
        await claim_n(store, tenant, 1)
        await service.import_codes(store, account=account, pool_id=pool_id, values=[f"R{i}"])
    secret = await service.webhook_secret(store, account=account)
    now = store.clock()
    leased = await asyncio.gather(
        *[store.lease_deliveries(now=now, lease_until=now + timedelta(hours=1), limit=2) for _ in range(2)]
    )
    ids = sorted(d.id for batch in leased for d in batch)
    assert len(ids) == len(set(ids)) == 3
    assert all(d.secret == secret and d.attempts == 1 for batch in leased for d in batch)
    assert await store.lease_deliveries(now=now, lease_until=now, limit=9) == []  # hidden while leased
    for delivery_id, delivered, retry_at in zip(ids, (True, False, False), (None, None, now), strict=True):
        await store.finish_attempt(
            delivery_id=delivery_id, now=now, delivered=delivered, status=500, error=None, retry_at=retry_at
        )
    assert await store.purge_deliveries(older_than=now + timedelta(seconds=1)) == 2
    [kept] = await store.list_deliveries(pool_id=pool_id, limit=9)
    assert (kept.id, kept.state) == (ids[2], DeliveryState.PENDING)


async def test_failing_receiver_is_retried_with_backoff(
    store: Store, tenant: Tenant, receiver: Receiver
) -> None:
    account, pool_id = tenant.account, tenant.pool.id
    await service.set_low_stock_alert(
        store, account=account, pool_id=pool_id, threshold=9, webhook_url=receiver.url
    )
    await claim_n(store, tenant, 1)
    receiver.statuses[:] = [500, 503]
    # The default schedule: a failed first attempt waits 10 s.
    assert await service.WebhookSender(store).deliver_due() == 1
    [delivery] = await service.list_deliveries(store, account=account, pool_id=pool_id)
    assert delivery.state is DeliveryState.PENDING and delivery.last_error == "HTTP 500"
    assert delivery.next_attempt_at is not None and delivery.last_attempt_at is not None
    assert delivery.next_attempt_at - delivery.last_attempt_at >= timedelta(seconds=9)
    assert await service.WebhookSender(store).deliver_due() == 0  # not due yet
    # A schedule with no waiting: the second attempt fails (503), the third gets through.
    sender = service.WebhookSender(store, retry_delays=NO_WAIT)
    await make_due_now(store)
    assert await sender.deliver_due() == 1
    assert await sender.deliver_due() == 1
    assert await sender.deliver_due() == 0
    [delivery] = await service.list_deliveries(store, account=account, pool_id=pool_id)
    assert (delivery.state, delivery.attempts, delivery.last_status) == (DeliveryState.DELIVERED, 3, 200)
    assert len(receiver.received) == 3 and len({r.body for r in receiver.received}) == 1  # the same event


async def make_due_now(store: Store) -> None:
    """Skip the wait of the pending deliveries (as if their time had come)."""
    sql = "UPDATE webhook_deliveries SET next_attempt_at = '2000-01-01T00:00:00.000000Z'"
    await execute_sql(store, sql)


async def test_unreachable_receiver_gives_up_after_the_last_retry(store: Store, tenant: Tenant) -> None:
    account, pool_id = tenant.account, tenant.pool.id
    with webhook_receiver() as gone:
        url = gone.url  # closed when we leave: nothing listens there any more
    await service.set_low_stock_alert(store, account=account, pool_id=pool_id, threshold=9, webhook_url=url)
    await claim_n(store, tenant, 1)
    sender = service.WebhookSender(store, retry_delays=NO_WAIT, timeout_seconds=5)
    assert [await sender.deliver_due() for _ in range(4)] == [1, 1, 1, 0]
    [delivery] = await service.list_deliveries(store, account=account, pool_id=pool_id)
    assert delivery.state is DeliveryState.FAILED and delivery.attempts == 3
    assert delivery.last_status is None and delivery.last_error and "Connect" in delivery.last_error


async def test_a_stuck_receiver_does_not_hold_up_claims(
    store: Store, tenant: Tenant, receiver: Receiver
) -> None:
    account, pool_id = tenant.account, tenant.pool.id
    await service.set_low_stock_alert(
        store, account=account, pool_id=pool_id, threshold=9, webhook_url=receiver.url
    )
    receiver.release.clear()  # the receiver takes the request and does not answer
    sender = asyncio.create_task(service.WebhookSender(store, poll_seconds=0.01).run())
    try:
        await claim_n(store, tenant, 1)
        assert await asyncio.to_thread(receiver.arrived.wait, 30)
        await claim_n(store, tenant, 8)  # while the event's POST hangs
        pool = await service.get_pool(store, account=account, pool_id=pool_id)
        assert pool.counts.available == 1 and not receiver.release.is_set()
    finally:
        receiver.release.set()
        sender.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sender


@pytest.mark.slow
async def test_concurrent_processes_cross_once(store: Store, database_url: str) -> None:
    tenant = await make_tenant(store, "concurrent", [f"P{i:05d}" for i in range(3000)])
    await service.set_low_stock_alert(
        store,
        account=tenant.account,
        pool_id=tenant.pool.id,
        threshold=1500,
        webhook_url="https://x.example/",
    )
    handed_out, _ = await asyncio.to_thread(
        run_workers, drain_worker, [(database_url, "concurrent", tenant.pool.id)] * 6
    )
    assert len(handed_out) == len(set(handed_out)) == 3000
    [available] = await deliveries(store, tenant)  # one event; a batch may step over the threshold
    assert 1500 - MAX_BATCH < available <= 1500
