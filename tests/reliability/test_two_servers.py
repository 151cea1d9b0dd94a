"""Two `promopool serve` processes on one PostgreSQL: 64 HTTP clients split across them drain a pool of
100,000 codes. 0 duplicates, 0 lost: the issued counter equals the codes received, every code is issued.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from promopool import service
from promopool.storage import Store
from tests.conftest import drop_schema, make_tenant, with_schema
from tests.reliability.conftest import Tally
from tests.reliability.integrity import integrity_problems, pool_rows
from tests.reliability.load import drain_raw
from tests.reliability.servers import Server

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

CODES = 100_000
CLIENTS = 64  # each on its own keep-alive connection, alternating between the two servers


async def test_two_servers_hand_out_100k_codes_exactly_once(
    postgres_store: Store, postgres_url: str, two_servers: list[str], tally: Tally
) -> None:
    tenant = await make_tenant(postgres_store, "two-servers")
    await service.import_codes(
        postgres_store,
        account=tenant.account,
        pool_id=tenant.pool.id,
        values=(f"T{i:07d}" for i in range(CODES)),
    )
    started = time.monotonic()
    results = await asyncio.gather(
        *[drain_raw(two_servers[i % 2], tenant.api_key, tenant.pool.id) for i in range(CLIENTS)]
    )
    took = time.monotonic() - started
    handed_out = [code for codes, _ in results for code in codes]
    ended = sum(end for _, end in results)
    duplicates = [code for code, n in Counter(handed_out).items() if n > 1]
    assert duplicates == [], f"{len(duplicates)} codes handed out twice, e.g. {duplicates[:5]}"
    assert ended == CLIENTS  # every client drained to "pool exhausted"
    rows = await pool_rows(postgres_url, tenant.pool.id)
    assert rows.counters == {"available": 0, "issued": CODES, "redeemed": 0}
    assert len(handed_out) == CODES  # 0 lost: every issued code reached a client
    assert set(handed_out) == rows.issued
    assert await integrity_problems(postgres_url) == []
    print(f"two servers: {CODES} codes to {CLIENTS} clients in {took:.0f}s")
    tally.add("two servers, one PostgreSQL: claims (64 clients)", len(handed_out) + ended)


ROUNDS = 3


async def test_two_servers_start_together_on_an_empty_database(
    postgres_server_url: str, tmp_path: Path, tally: Tally
) -> None:
    """Both create the default account if there is none: one must win, and the other start anyway."""
    for round_ in range(ROUNDS):
        schema = f"r_empty_{uuid.uuid4().hex[:10]}"
        url = with_schema(postgres_server_url, schema)
        servers = [Server(url, tmp_path / f"start-{round_}-{i}.log") for i in range(2)]
        try:
            await asyncio.gather(*[asyncio.to_thread(server.start) for server in servers])
            printed = [server.log().count("API key:") for server in servers]
            assert sorted(printed) == [0, 1], printed  # the default account's key, shown once
        finally:
            for server in servers:
                server.stop()
            await drop_schema(postgres_server_url, schema)
    tally.add("two servers started at once on an empty PostgreSQL", ROUNDS)
