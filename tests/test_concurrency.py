"""Exactly-once claims across OS processes (both engines) and across two servers sharing PostgreSQL.

8 processes x 8 concurrent claimers drain a pool of 20,000 codes; there are more claimers than codes at
the end. Every code must be handed out exactly once, none missing, and every claimer ends on
"pool exhausted".
"""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from promopool import service
from promopool.domain import CodeState
from promopool.storage import Store
from tests.conftest import Tenant, make_tenant
from tests.helpers import CLAIMERS, drain_worker, run_workers

PROCESSES = 8
CODES = 20_000

pytestmark = pytest.mark.slow


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
