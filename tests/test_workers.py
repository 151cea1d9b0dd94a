"""One ``promopool serve --workers 2`` on PostgreSQL: claims from both workers cross the low-stock threshold
once and the receiver gets exactly one signed event; /metrics, whichever worker answers, sums both workers."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from promopool import service
from promopool.storage import Store
from tests.conftest import make_tenant
from tests.webhook_receiver import Receiver, webhook_receiver

pytestmark = pytest.mark.slow

CODES = 2000
THRESHOLD = 1000
CLAIMERS = 16


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as the_receiver:
        yield the_receiver


def claims_counted(text: str, pool: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "promopool_claims_total" and s.labels == {"pool": pool, "result": "issued"}
    )


async def test_two_workers_one_event_and_summed_metrics(
    postgres_store: Store, two_workers: str, receiver: Receiver, tmp_path: Path
) -> None:
    # The server migrated the schema on start; the tenant is made after, through the same database.
    tenant = await make_tenant(postgres_store, "shop", [f"W{i:05d}" for i in range(CODES)])
    await service.set_low_stock_alert(
        postgres_store,
        account=tenant.account,
        pool_id=tenant.pool.id,
        threshold=THRESHOLD,
        webhook_url=receiver.url,
    )
    headers = {**tenant.headers}

    async def claimer(client: httpx.AsyncClient) -> int:
        got = 0
        while True:
            response = await client.post(f"/v1/pools/{tenant.pool.id}/claim")
            if response.status_code == 409:
                return got
            assert response.status_code == 200, response.text
            got += 1

    # Separate connections so the kernel spreads them over both workers.
    clients = [httpx.AsyncClient(base_url=two_workers, headers=headers, timeout=60) for _ in range(CLAIMERS)]
    try:
        counts = await asyncio.gather(*[claimer(c) for c in clients])
    finally:
        for c in clients:
            await c.aclose()
    assert sum(counts) == CODES

    deadline = time.monotonic() + 20
    while not receiver.received:
        assert time.monotonic() < deadline, "the low-stock webhook did not arrive"
        await asyncio.sleep(0.1)
    await asyncio.sleep(3)  # both workers poll every second: a duplicate would have come by now
    [event] = receiver.received
    assert event.signed_by(await service.webhook_secret(postgres_store, account=tenant.account))
    assert event.json["data"]["threshold"] == THRESHOLD and event.json["data"]["available"] <= THRESHOLD

    for _ in range(6):  # fresh connections: several answers, from either worker, all with the sum
        async with httpx.AsyncClient(base_url=two_workers) as client:
            scraped = await client.get("/metrics")
        assert claims_counted(scraped.text, str(tenant.pool.id)) == CODES

    # The server's log: JSON lines; the access lines carry the request id the client sent.
    async with httpx.AsyncClient(base_url=two_workers) as client:
        await client.get("/health", headers={"X-Request-Id": "probe-1"})
    await asyncio.sleep(0.5)
    lines = [json.loads(line) for line in (tmp_path / "server.log").read_text().splitlines()]
    access = [line for line in lines if line.get("logger") == "promopool.access"]
    assert sum(line["route"] == "/v1/pools/{pool_id}/claim" for line in access) == CODES + CLAIMERS
    assert any(line.get("request_id") == "probe-1" for line in access)
