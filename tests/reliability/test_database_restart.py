"""PostgreSQL stopped and started under claim load (a throwaway server the test owns).

While the database is away the server answers at once with 503 ``storage_unavailable`` (never a 500, never a
hang); when it is back the server recovers by itself, without a restart; no code is handed out twice and
every code received is issued.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pgserver
import pytest

from tests.helpers import seed
from tests.reliability.conftest import Tally
from tests.reliability.integrity import integrity_problems, pool_rows
from tests.reliability.load import ClaimLoad
from tests.reliability.servers import Server

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

OUTAGES = 3
OUTAGE_SECONDS = 4.0
CLIENTS = 8
CODES = 40_000
RECOVERY_TIMEOUT = 60.0


class OwnedPostgres:
    """A PostgreSQL server this test may stop and start (pgserver's binaries, its own data directory)."""

    def __init__(self) -> None:
        self.server = pgserver.get_server(Path(tempfile.mkdtemp(prefix="pp-restart-")), cleanup_mode="delete")
        self.url = self.server.get_uri()

    def stop(self) -> None:
        # fast: the way an operator restarts it; open sessions are told to go, transactions roll back
        pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user)

    def start(self) -> None:
        self.server.ensure_postgres_running()
        assert self.server.get_uri() == self.url, "restarted PostgreSQL listens elsewhere"


@pytest.fixture
def owned_postgres() -> Iterator[OwnedPostgres]:
    owned = OwnedPostgres()
    try:
        yield owned
    finally:
        owned.server.cleanup()


async def probe(client: httpx.AsyncClient, path: str, pool_id: int) -> tuple[int, str, float]:
    """One request while the database is away: its status, error code and how long the answer took."""
    started = time.monotonic()
    response = await client.post(path) if path.endswith("/claim") else await client.get(path)
    took = time.monotonic() - started
    code = response.json().get("error", {}).get("code", "") if path.endswith("/claim") else ""
    return response.status_code, code or response.json().get("status", ""), took


async def test_postgres_restart_under_load(
    owned_postgres: OwnedPostgres, tmp_path: Path, tally: Tally
) -> None:
    api_key, pool_id = await seed(owned_postgres.url, "restart", CODES)
    probes: Counter[str] = Counter()
    slowest_probe = 0.0
    recoveries: list[float] = []
    with Server(owned_postgres.url, tmp_path / "server.log") as server:
        await asyncio.to_thread(server.start)
        load = ClaimLoad([server.url], api_key, pool_id, clients=CLIENTS)
        load.start()
        headers = {"Authorization": f"Bearer {api_key}"}
        try:
            async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
                for _ in range(OUTAGES):
                    await load.wait_for_codes(len(load.ledger.owner) + 200)
                    await asyncio.to_thread(owned_postgres.stop)
                    away_until = time.monotonic() + OUTAGE_SECONDS
                    while time.monotonic() < away_until:
                        for path in (f"/v1/pools/{pool_id}/claim", "/health/ready"):
                            status, code, took = await probe(client, path, pool_id)
                            probes[f"{status} {code}"] += 1
                            slowest_probe = max(slowest_probe, took)
                        await asyncio.sleep(0.1)
                    await asyncio.to_thread(owned_postgres.start)
                    back = time.monotonic()
                    await load.wait_for_codes(len(load.ledger.owner) + 200, within=RECOVERY_TIMEOUT)
                    recoveries.append(time.monotonic() - back)
        finally:
            ledger = await load.stop()
        assert server.process is not None and server.process.poll() is None, "the server died"
        log = server.log()

    # While away: only 503s, with the storage error on claims and "unavailable" on the readiness check.
    assert set(probes) == {"503 storage_unavailable", "503 unavailable"}, probes
    assert slowest_probe < 10, f"a request waited {slowest_probe:.1f}s for the missing database"
    # The clients saw codes, or 503 storage_unavailable; nothing else (no 500).
    assert set(ledger.statuses) <= {"200", "200 replayed", "503 storage_unavailable"}, ledger.statuses
    assert "unhandled error" not in log, log[-3000:]
    # The outages said in a line when they began and when they ended, no traceback (test_outage_log).
    assert "Traceback" not in log, log[-3000:]
    assert 1 <= log.count("database unavailable") <= OUTAGES, log[-3000:]
    rows = await pool_rows(owned_postgres.url, pool_id)
    assert ledger.duplicates == [], ledger.duplicates[:5]
    assert ledger.received - rows.issued == set()
    assert await integrity_problems(owned_postgres.url) == []
    print(
        f"{OUTAGES} outages: {sum(probes.values())} probes while away {dict(probes)}, slowest"
        f" {slowest_probe:.2f}s; recovered after {[round(r, 1) for r in recoveries]}s;"
        f" load: {ledger.requests} requests {dict(ledger.statuses)}, {len(ledger.received)} codes,"
        f" {ledger.transport_errors} failed"
    )
    tally.add("database restart: PostgreSQL stopped (fast) and started under load", OUTAGES)
    tally.add("database restart: probe requests while PostgreSQL was away", sum(probes.values()))
    tally.add("database restart: claim requests under outages", ledger.requests)


async def test_an_outage_is_two_lines_in_the_log(owned_postgres: OwnedPostgres, tmp_path: Path) -> None:
    """Every kind of request during an outage answers 503, and the server log says the outage began and
    ended, in one line each: no traceback (there were dozens: asyncpg's reconnects, each background loop)."""
    api_key, pool_id = await seed(owned_postgres.url, "outage", 1_000)
    statuses: Counter[int] = Counter()
    requests = [
        ("POST", f"/v1/pools/{pool_id}/claim"),  # the fast claim path
        ("POST", f"/v1/pools/{pool_id}/claim?lease_seconds=60"),  # the route
        ("GET", "/health/ready"),
        ("GET", f"/promo_codes?shop_id=x&shop_secret={api_key}"),
        ("GET", "/api/promotions.json?account=outage&api_key=" + api_key),
    ]
    with Server(owned_postgres.url, tmp_path / "server.log") as server:
        await asyncio.to_thread(server.start)
        headers = {"Authorization": f"Bearer {api_key}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
            assert (await client.post(requests[0][1])).status_code == 200
            await asyncio.to_thread(owned_postgres.stop)
            away_until = time.monotonic() + OUTAGE_SECONDS
            while time.monotonic() < away_until:
                for method, path in requests:
                    statuses[(await client.request(method, path)).status_code] += 1
                await asyncio.sleep(0.1)
            await asyncio.to_thread(owned_postgres.start)
            deadline = time.monotonic() + RECOVERY_TIMEOUT
            while "database available again" not in server.log():
                assert time.monotonic() < deadline, server.log()[-3000:]
                await asyncio.sleep(0.2)
            assert (await client.post(requests[0][1])).status_code == 200
        log = server.log()
    assert set(statuses) == {503}, statuses
    assert "Traceback" not in log and '"exc"' not in log, log[-3000:]
    assert log.count("database unavailable") == 1, log[-3000:]
    assert log.count("database available again") == 1, log[-3000:]
