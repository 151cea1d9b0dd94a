"""Exactly-once claims across OS processes (both engines) and across two servers sharing PostgreSQL.

8 processes x 8 concurrent claimers drain a pool of 20,000 codes; there are more claimers than codes at
the end. Every code must be handed out exactly once, none missing, and every claimer ends on
"pool exhausted".
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import httpx
import pytest

from promopool import service
from promopool.domain import CodeState
from promopool.domain.errors import PoolExhausted
from promopool.storage import Store, open_store
from tests.conftest import Tenant, make_tenant

PROCESSES = 8
CLAIMERS = 8
CODES = 20_000

pytestmark = pytest.mark.slow


async def _drain_in_process(url: str, account_name: str, pool_id: int) -> tuple[list[str], int]:
    store = open_store(url)
    await store.connect()
    try:
        account = await store.account_by_name(account_name)
        assert account is not None

        async def claimer() -> tuple[list[str], int]:
            got: list[str] = []
            while True:
                try:
                    got.append((await service.claim(store, account=account, pool_id=pool_id)).code.value)
                except PoolExhausted:
                    return got, 1

        results = await asyncio.gather(*[claimer() for _ in range(CLAIMERS)])
        return [code for codes, _ in results for code in codes], sum(ended for _, ended in results)
    finally:
        await store.close()


def drain_worker(url: str, account_name: str, pool_id: int) -> tuple[list[str], int]:
    return asyncio.run(_drain_in_process(url, account_name, pool_id))


async def _drain_over_http(
    base_urls: list[str], api_key: str, pool_id: int, offset: int
) -> tuple[list[str], int]:
    headers = {"Authorization": f"Bearer {api_key}"}

    async def claimer(index: int) -> tuple[list[str], int]:
        base = base_urls[(offset + index) % len(base_urls)]  # claimers split across the servers
        got: list[str] = []
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
            while True:
                response = await client.post(f"/v1/pools/{pool_id}/claim")
                if response.status_code == 409 and response.json()["error"]["code"] == "pool_exhausted":
                    return got, 1
                assert response.status_code == 200, response.text
                got.append(response.json()["code"])

    results = await asyncio.gather(*[claimer(i) for i in range(CLAIMERS)])
    return [code for codes, _ in results for code in codes], sum(ended for _, ended in results)


def http_worker(base_urls: list[str], api_key: str, pool_id: int, offset: int) -> tuple[list[str], int]:
    return asyncio.run(_drain_over_http(base_urls, api_key, pool_id, offset))


def run_workers(fn: object, argument_sets: list[tuple[object, ...]]) -> tuple[list[str], int]:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(len(argument_sets), mp_context=context) as pool:
        futures = [pool.submit(fn, *args) for args in argument_sets]  # type: ignore[arg-type]
        results = [f.result(timeout=600) for f in futures]
    return [code for codes, _ in results for code in codes], sum(ended for _, ended in results)


async def assert_drained_exactly_once(
    store: Store, tenant: Tenant, handed_out: list[str], ended: int
) -> None:
    duplicates = [code for code, n in Counter(handed_out).items() if n > 1]
    assert duplicates == [], f"{len(duplicates)} codes handed out twice"
    assert len(handed_out) == CODES
    assert set(handed_out) == {f"P{i:06d}" for i in range(CODES)}
    assert ended == PROCESSES * CLAIMERS  # every claimer was told "pool exhausted"
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    assert (pool.counts.available, pool.counts.issued) == (0, CODES)
    left = await service.list_codes(
        store, account=tenant.account, pool_id=tenant.pool.id, state=CodeState.AVAILABLE
    )
    assert left == []


async def seeded(store: Store) -> Tenant:
    tenant = await make_tenant(store, "concurrent")
    await service.import_codes(
        store, account=tenant.account, pool_id=tenant.pool.id, values=(f"P{i:06d}" for i in range(CODES))
    )
    return tenant


async def test_processes_drain_a_pool_exactly_once(store: Store, database_url: str) -> None:
    tenant = await seeded(store)
    handed_out, ended = await asyncio.to_thread(
        run_workers, drain_worker, [(database_url, "concurrent", tenant.pool.id)] * PROCESSES
    )
    await assert_drained_exactly_once(store, tenant, handed_out, ended)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def two_servers(postgres_url: str) -> Iterator[list[str]]:
    """Two `promopool serve` processes on one PostgreSQL database (SQLite is served by one server)."""
    ports = [free_port(), free_port()]
    env = {**os.environ, "PROMOPOOL_DATABASE_URL": postgres_url}
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", "promopool", "serve", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        deadline = time.monotonic() + 30
        for url, server in zip(urls, servers, strict=True):
            while True:
                assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
                try:
                    if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        yield urls
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=30)
            if server.stderr is not None:
                server.stderr.close()


async def test_two_servers_on_one_postgres_hand_out_each_code_once(
    postgres_store: Store, two_servers: list[str]
) -> None:
    store = postgres_store
    tenant = await seeded(store)
    handed_out, ended = await asyncio.to_thread(
        run_workers,
        http_worker,
        [(two_servers, tenant.api_key, tenant.pool.id, offset) for offset in range(PROCESSES)],
    )
    await assert_drained_exactly_once(store, tenant, handed_out, ended)
