"""Lock order and lock waits (issue 15): a pool's row first, and a bounded wait for it, answered 503."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import httpx

from promopool import service
from promopool.api.app import create_app
from promopool.config import Settings
from promopool.domain.alerts import hour_of
from promopool.storage import Store, open_store
from tests.conftest import make_tenant
from tests.helpers import pool_held
from tests.reliability.integrity import integrity_problems, pg_connection

LOCK_TIMEOUT = 1.0


async def test_delete_code_takes_the_pool_row_before_the_code(
    postgres_store: Store, postgres_url: str
) -> None:
    """A claim batch holds the pool's row, then updates a code; a delete of that code which locked the code
    first and waited for the pool second would deadlock with it (docs/design.md, lock order)."""
    tenant = await make_tenant(postgres_store, "acme", ["ONLY"])
    now = datetime.now(UTC)
    async with pg_connection(postgres_url) as claim, claim.transaction():
        cursor = await claim.fetchval(
            "SELECT lock_claimable_pool($1, $2, $3)", tenant.account.id, tenant.pool.id, now
        )
        delete = asyncio.create_task(
            service.delete_code(postgres_store, account=tenant.account, pool_id=tenant.pool.id, value="ONLY")
        )
        await asyncio.sleep(0.5)  # the delete is under way, waiting for the pool's row we hold
        assert not delete.done()
        taken = await claim.fetch(
            "SELECT value FROM take_codes($1, $2, 1, $3, $4)", tenant.pool.id, cursor, now, hour_of(now)
        )
        assert [row["value"] for row in taken] == ["ONLY"]
    await delete  # after the claim: it deletes the issued code, counters and all
    pool = await service.get_pool(postgres_store, account=tenant.account, pool_id=tenant.pool.id)
    assert (pool.counts.available, pool.counts.issued) == (0, 0)
    assert await integrity_problems(postgres_url) == []


async def test_a_claim_waits_for_a_held_pool_no_longer_than_the_lock_timeout(database_url: str) -> None:
    store = open_store(database_url, lock_timeout=LOCK_TIMEOUT)
    await store.connect()
    await store.migrate()
    try:
        tenant = await make_tenant(store, "acme", ["A1", "A2"])
        app = create_app(Settings(database_url=database_url, lock_timeout_seconds=LOCK_TIMEOUT), store=store)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://promopool.test") as client:
            async with pool_held(database_url, tenant.pool.id):
                started = time.monotonic()
                claim = client.post(f"/v1/pools/{tenant.pool.id}/claim", headers=tenant.headers)
                # Before the fix it waited as long as the pool was held (or SQLite's 10 s busy timeout).
                answer = await asyncio.wait_for(claim, timeout=LOCK_TIMEOUT + 3)
                waited = time.monotonic() - started
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["code"] == "storage_busy"
            assert answer.headers["Retry-After"] == "1"
            assert LOCK_TIMEOUT * 0.9 <= waited < LOCK_TIMEOUT + 3
            retried = await client.post(f"/v1/pools/{tenant.pool.id}/claim", headers=tenant.headers)
            assert retried.status_code == 200 and retried.json()["code"] == "A1"  # nothing was taken
    finally:
        await store.close()
