"""The lock order (docs/design.md): every write that changes a code's state takes its pool's row first.

PostgreSQL only: SQLite runs one write at a time in its writer thread, so no two writes ever hold locks
against each other there.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import asyncpg
import pytest

from promopool.storage import Store
from tests.conftest import make_tenant


@pytest.fixture
async def raw(postgres_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A second connection to the test's schema, playing a claim batch."""
    parts = urlsplit(postgres_url)
    schema = dict(parse_qsl(parts.query))["schema"]
    dsn = urlunsplit(("postgresql", parts.netloc, parts.path, "", ""))
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    yield conn
    await conn.close()


async def blocked_by(conn: asyncpg.Connection) -> None:
    """Wait until some session waits for a lock ``conn`` holds."""
    for _ in range(500):
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
            conn.get_server_pid(),
        )
        if waiting:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("nothing came to wait for the claim batch's locks")


async def test_delete_code_takes_the_pool_row_before_the_code(
    postgres_store: Store, raw: asyncpg.Connection
) -> None:
    # A delete that took the code's row first and then waited for the pool's would deadlock here: the claim
    # batch holds the pool's row and comes to take that very code.
    tenant = await make_tenant(postgres_store, "acme", ["A", "B"])
    pool_id = tenant.pool.id
    async with raw.transaction():
        cursor = await raw.fetchval("SELECT lock_claimable_pool($1, $2, now())", tenant.account.id, pool_id)
        deleting = asyncio.create_task(postgres_store.delete_code(pool_id=pool_id, value="A"))
        await blocked_by(raw)
        taken = await raw.fetch(
            "SELECT value FROM take_codes($1, $2, 1, now(), date_trunc('hour', now()))", pool_id, cursor
        )
        assert [row["value"] for row in taken] == ["A"]
    assert await deleting is True  # after the claim: the issued code is deleted, counted as issued
    pool = await postgres_store.get_pool(account_id=tenant.account.id, pool_id=pool_id)
    assert pool is not None
    assert (pool.counts.available, pool.counts.issued) == (1, 0)
