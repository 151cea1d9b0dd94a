"""The operator's metrics (issue 17): stock by pool name with a cap, claim latency from 0.25 ms, the
database's latency, errors and connections, 429s and failed guesses, and the CLI's runs — each scraped from
/metrics before and after the event it counts."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from promopool import metrics
from promopool.api.app import create_app
from promopool.cli import app as cli
from promopool.config import Settings
from promopool.domain.errors import StorageBusy, StorageUnavailable
from promopool.storage import Store, open_store
from tests.conftest import Tenant, connected, make_tenant
from tests.helpers import Samples, moved, pool_held, scrape, value

Client = httpx.AsyncClient


@asynccontextmanager
async def client_for(store: Store, settings: Settings) -> AsyncIterator[Client]:
    transport = httpx.ASGITransport(app=create_app(settings, store=store))
    async with httpx.AsyncClient(transport=transport, base_url="http://promopool.test") as client:
        yield client


async def test_stock_is_named_and_bounded(
    store: Store, database_url: str, tenant: Tenant, other: Tenant
) -> None:
    async with client_for(store, Settings(database_url=database_url)) as client:
        everything = await scrape(client)
    for who, name in ((tenant, "acme"), (other, "rival")):
        pool = str(who.pool.id)
        info = value(everything, "promopool_pool_info", account=name, pool=pool, name=f"{name}-pool")
        assert info == 1
    assert (
        value(everything, "promopool_pool_codes", account="rival", pool=str(other.pool.id), state="available")
        == 3
    )
    assert value(everything, "promopool_pools") == 2
    assert value(everything, "promopool_pools_unreported") == 0

    async with client_for(store, Settings(database_url=database_url, metrics_max_pools=1)) as client:
        capped = await scrape(client)
    reported = {dict(labels)["pool"] for name, labels in capped if name == "promopool_pool_info"}
    assert reported == {str(tenant.pool.id)}  # the first by id
    stocked = {dict(labels)["pool"] for name, labels in capped if name == "promopool_pool_codes"}
    assert stocked == {str(tenant.pool.id)}
    assert value(capped, "promopool_pools") == 2
    assert value(capped, "promopool_pools_unreported") == 1


def buckets(samples: Samples, name: str, **labels: str) -> set[str]:
    return {
        dict(key)["le"]
        for sample, key in samples
        if sample == f"{name}_bucket" and labels.items() <= dict(key).items()
    }


async def test_claim_latency_is_read_from_a_quarter_millisecond(client: Client, tenant: Tenant) -> None:
    before = await scrape(client)
    for _ in range(3):
        assert (
            await client.post(f"/v1/pools/{tenant.pool.id}/claim", headers=tenant.headers)
        ).status_code == 200
    assert (await client.post("/v1/pools/999999/claim", headers=tenant.headers)).status_code == 404
    after = await scrape(client)
    claims = "promopool_claim_duration_seconds"
    assert moved(before, after, f"{claims}_count") == 4  # refusals take time too
    assert moved(before, after, f"{claims}_bucket", le="+Inf") == 4
    assert moved(before, after, f"{claims}_sum") > 0
    fine = {"0.00025", "0.0005", "0.00075", "0.001", "0.0015", "0.002", "0.003", "0.005"}
    assert fine <= buckets(after, claims)
    route = {"method": "POST", "route": "/v1/pools/{pool_id}/claim", "status": "200"}
    assert fine <= buckets(after, "promopool_http_request_duration_seconds", **route)
    # Cumulative buckets: the first holds no more than the next.
    assert value(after, f"{claims}_bucket", le="0.00025") <= value(after, f"{claims}_bucket", le="0.0005")


async def test_database_operations_are_timed_by_kind(client: Client, tenant: Tenant) -> None:
    before = await scrape(client)
    for _ in range(2):  # one after the other: two claim batches
        await client.post(f"/v1/pools/{tenant.pool.id}/claim", headers=tenant.headers)
    keyed = {**tenant.headers, "Idempotency-Key": "k"}  # a keyed claim is a write transaction
    await client.post(f"/v1/pools/{tenant.pool.id}/claim", headers=keyed)
    after = await scrape(client)
    seconds = "promopool_database_duration_seconds_count"
    assert moved(before, after, seconds, operation="claim") == 2
    assert moved(before, after, seconds, operation="write") >= 1
    assert moved(before, after, seconds, operation="read") >= 2  # the scrape reads, as does the key check


async def test_database_errors_are_counted_by_kind(store: Store, database_url: str, tenant: Tenant) -> None:
    short = open_store(database_url, lock_timeout=0.2)
    await short.connect()
    try:
        async with client_for(store, Settings(database_url=database_url)) as client:
            before = await scrape(client)
            async with pool_held(database_url, tenant.pool.id):
                with pytest.raises(StorageBusy):
                    await short.claim(
                        account_id=tenant.account.id, pool_id=tenant.pool.id, idempotency_key=None
                    )
            await short.close()
            with pytest.raises(StorageUnavailable):
                await short.get_pool(account_id=tenant.account.id, pool_id=tenant.pool.id)
            with pytest.raises(StorageUnavailable):
                await short.claim(account_id=tenant.account.id, pool_id=tenant.pool.id, idempotency_key=None)
            missing = await client.post("/v1/pools/999999/claim", headers=tenant.headers)
            assert missing.status_code == 404  # an answer, not a database error
            after = await scrape(client)
    finally:
        await short.close()
    errors = "promopool_database_errors_total"
    assert moved(before, after, errors, kind="busy") == 1
    assert moved(before, after, errors, kind="unavailable") == 2
    assert moved(before, after, errors, kind="other") == 0


async def test_postgres_connections_in_use_are_reported(postgres_store: Store, postgres_url: str) -> None:
    async with client_for(postgres_store, Settings(database_url=postgres_url)) as client:
        before = await scrape(client)
        async with postgres_store._driver.connection(), postgres_store._driver.connection():  # type: ignore[attr-defined]
            during = await scrape(client)
        after = await scrape(client)
    connections = "promopool_database_connections"
    assert moved(before, during, connections, state="in_use") == 2
    assert moved(before, after, connections, state="in_use") == 0
    assert value(during, connections, state="open") >= 2
    assert value(during, connections, state="max") >= postgres_store.pool_size


async def test_sqlite_writes_pending_are_reported(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/promopool.db"
    async with connected(url) as store, client_for(store, Settings(database_url=url)) as client:
        before = await scrape(client)
        release = threading.Event()
        held = store._driver.submit(lambda conn: release.wait(10))  # type: ignore[attr-defined]
        queued = [store._driver.submit(lambda conn: None) for _ in range(2)]  # type: ignore[attr-defined]
        during = await scrape(client)  # (reads: not behind the writer)
        release.set()
        await asyncio.gather(held, *queued)
        after = await scrape(client)
    assert moved(before, during, "promopool_sqlite_writes_pending") == 3
    assert moved(before, after, "promopool_sqlite_writes_pending") == 0


async def test_failed_guesses_and_refusals_are_counted(
    store: Store, database_url: str, tenant: Tenant
) -> None:
    settings = Settings(database_url=database_url, guess_budget=2)
    async with client_for(store, settings) as client:
        before = await scrape(client)
        answers = [
            (await client.post("/v1/codes/redeem", json={"code": guess}, headers=tenant.headers)).status_code
            for guess in ("NOPE1", "NOPE2", "NOPE3")
        ]
        redeemed = await client.post("/v1/codes/redeem", json={"code": "CODE001"}, headers=tenant.headers)
        after = await scrape(client)
    assert answers == [404, 404, 429]
    assert redeemed.status_code == 429  # the budget is spent, even for a good code
    assert moved(before, after, "promopool_failed_guesses_total") == 2
    assert moved(before, after, "promopool_rate_limited_total", budget="guessing") == 2
    latency = "promopool_http_request_duration_seconds_count"
    assert moved(before, after, latency, method="POST", route="/v1/codes/redeem", status="429") == 2


def invoke(url: str, *args: str) -> int:
    return CliRunner().invoke(cli, ["--database-url", url, *args]).exit_code


async def scrape_once(url: str) -> Samples:
    async with connected(url) as store, client_for(store, Settings(database_url=url)) as client:
        return await scrape(client)


def test_the_clis_imports_and_generations_are_counted_in_the_database(
    database_url: str, tmp_path: Path
) -> None:
    asyncio.run(_make_tenant(database_url))
    before = asyncio.run(scrape_once(database_url))
    good, bad = tmp_path / "good.txt", tmp_path / "bad.txt"
    good.write_text("G1\nG2\nG3\nCODE000\n")
    bad.write_text("B1\nbad\x01code\n")
    assert invoke(database_url, "import", "1", str(good), "--account", "acme") == 0
    assert invoke(database_url, "import", "1", str(bad), "--account", "acme", "--strict") == 1
    assert invoke(database_url, "generate", "1", "5", "--account", "acme") == 0
    after = asyncio.run(scrape_once(database_url))  # a new server process would see the same
    runs, codes = "promopool_cli_runs_total", "promopool_cli_codes_total"
    assert moved(before, after, runs, command="import", result="started") == 2
    assert moved(before, after, runs, command="import", result="succeeded") == 1
    assert moved(before, after, runs, command="import", result="failed") == 1
    assert moved(before, after, runs, command="generate", result="started") == 1
    assert moved(before, after, runs, command="generate", result="succeeded") == 1
    assert moved(before, after, codes, command="import") == 3  # CODE000 was there already
    assert moved(before, after, codes, command="generate") == 5


async def _make_tenant(url: str) -> None:
    async with connected(url) as store:
        tenant = await make_tenant(store, "acme", ["CODE000"])
        assert tenant.pool.id == 1


async def test_every_metric_is_documented(client: Client, tenant: Tenant) -> None:
    await client.post(f"/v1/pools/{tenant.pool.id}/claim", headers=tenant.headers)
    response = await client.get("/metrics")
    families = {family.name for family in text_string_to_metric_families(response.text)}
    documented = (Path(__file__).parent.parent / "docs" / "operations.md").read_text()
    for family in sorted(name for name in families if name.startswith("promopool_")):
        counter = f"`{family}_total`" in documented
        assert counter or f"`{family}`" in documented, f"{family} is not in docs/operations.md, Metrics"


@pytest.mark.slow
async def test_two_workers_sum_the_new_metrics(postgres_store: Store, two_workers: str) -> None:
    """Multiprocess mode: histograms and gauges from both workers, whichever answers the scrape."""
    tenant = await make_tenant(postgres_store, "shop", [f"W{i:03d}" for i in range(40)])
    clients = [httpx.AsyncClient(base_url=two_workers, headers=tenant.headers) for _ in range(8)]
    try:
        for _ in range(5):  # separate connections: the kernel spreads them over both workers
            for client in clients:
                assert (await client.post(f"/v1/pools/{tenant.pool.id}/claim")).status_code == 200
    finally:
        for client in clients:
            await client.aclose()
    for _ in range(4):
        async with httpx.AsyncClient(base_url=two_workers) as client:
            scraped = await scrape(client)
        assert value(scraped, "promopool_claim_duration_seconds_count") == 40
        assert value(scraped, "promopool_database_connections", state="max") == 2 * Settings().db_pool_size
        assert (
            value(scraped, "promopool_pool_codes", account="shop", pool=str(tenant.pool.id), state="issued")
            == 40
        )


def test_the_live_gauges_of_a_dead_worker_are_dropped_its_counters_kept(tmp_path: Path) -> None:
    child = "from promopool import metrics\nmetrics.CONNECTIONS_IN_USE.inc(3)\nmetrics.count_failed_guess()\n"
    env = {**os.environ, metrics.MULTIPROCESS_ENV: str(tmp_path)}
    subprocess.run([sys.executable, "-c", child], env=env, check=True)  # a worker that ended
    [dead] = tmp_path.glob("gauge_livesum_*.db")
    mine = tmp_path / f"gauge_livesum_{os.getpid()}.db"
    shutil.copy(dead, mine)  # the same figures, of a live process (this one): they stay

    def collected() -> Samples:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(tmp_path))
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in registry.collect()
            for s in family.samples
        }

    assert value(collected(), "promopool_database_connections", state="in_use") == 6
    metrics.forget_dead_workers(str(tmp_path))
    after = collected()
    assert value(after, "promopool_database_connections", state="in_use") == 3
    assert not dead.exists()
    assert value(after, "promopool_failed_guesses_total") == 1
    assert mine.exists()
