"""Real ``promopool serve`` processes: 64 concurrent claims for one recipient, spread over two workers (each
engine) or two servers on one PostgreSQL, take one code. The binding is in the database, not a process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from promopool.storage import Store
from tests.conftest import make_tenant
from tests.reliability.servers import Server

pytestmark = pytest.mark.slow

CLAIMS = 64


@pytest.fixture(params=["two workers", "two servers"])
def server_urls(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> Iterator[list[str]]:
    if request.param == "two servers" and not database_url.startswith("postgresql"):
        pytest.skip("SQLite is served by one server")
    shape = [2] if request.param == "two workers" else [1, 1]
    with ExitStack() as stack:
        servers = [
            stack.enter_context(Server(database_url, tmp_path / f"server{n}.log", workers=workers))
            for n, workers in enumerate(shape)
        ]
        for server in servers:
            server.start()
        yield [server.url for server in servers]


async def test_one_recipient_one_code_across_processes(store: Store, server_urls: list[str]) -> None:
    tenant = await make_tenant(store, "sender", [f"S{i:03d}" for i in range(100)])
    limits = httpx.Limits(max_connections=CLAIMS)  # every claim on a connection of its own
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    f"{server_urls[n % len(server_urls)]}/v1/pools/{tenant.pool.id}/claim",
                    json={"recipient": "customer-42"},
                    headers=tenant.headers,
                )
                for n in range(CLAIMS)
            )
        )
    assert [a.status_code for a in answers] == [200] * CLAIMS
    assert len({a.json()["code"] for a in answers}) == 1
    assert sum(not a.json()["replayed"] for a in answers) == 1
    pool = await store.get_pool(account_id=tenant.account.id, pool_id=tenant.pool.id)
    assert pool is not None and (pool.counts.available, pool.counts.issued) == (99, 1)
