"""A serving process killed with SIGKILL ten times under claim load, on each engine.

What must hold afterwards: no code was handed out twice; every code a client received is issued in the
database; the database is sound (SQLite's own integrity check; on both engines the pool counters match the
rows and no two codes share a place in a pool's queue); the server starts cleanly once more.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path

import pytest

from tests.helpers import seed
from tests.reliability.conftest import Tally
from tests.reliability.integrity import integrity_problems, pool_rows
from tests.reliability.load import ClaimLoad
from tests.reliability.servers import Server

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

KILLS = 10
CLIENTS = 16
CODES = 40_000
# Between kills the clients must first get this many codes from the restarted server, then a random
# further stretch of load runs: the kill lands mid-stream, at a different point each time.
CODES_BEFORE_KILL = 50
MAX_EXTRA_LOAD_SECONDS = 2.0


def clean_start_problems(log: str) -> list[str]:
    """What the log of one start may not contain."""
    return [line for line in log.splitlines() if "Traceback" in line or "ERROR" in line]


async def test_sigkill_under_claim_load_loses_and_duplicates_nothing(
    fresh_url: str, engine: str, tmp_path: Path, tally: Tally
) -> None:
    api_key, pool_id = await seed(fresh_url, "crash", CODES)
    seed_value = int(os.environ.get("PROMOPOOL_CRASH_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed_value)
    print(f"crash test on {engine}: random seed {seed_value} (PROMOPOOL_CRASH_SEED to replay)")
    server = Server(fresh_url, tmp_path / "server.log")
    with server:
        await asyncio.to_thread(server.start)
        load = ClaimLoad([server.url], api_key, pool_id, clients=CLIENTS)
        load.start()
        try:
            for _ in range(KILLS):
                await load.wait_for_codes(len(load.ledger.owner) + CODES_BEFORE_KILL)
                await asyncio.sleep(rng.uniform(0, MAX_EXTRA_LOAD_SECONDS))
                server.kill()
                await asyncio.sleep(rng.uniform(0, 0.5))  # clients hammer a dead port meanwhile
                await asyncio.to_thread(server.start)
            # The 11th start: it serves, and its log is clean.
            await load.wait_for_codes(len(load.ledger.owner) + CODES_BEFORE_KILL)
        finally:
            ledger = await load.stop()
        last_start = server.log().rsplit(f"--- start {server.starts}", 1)[1]
        assert clean_start_problems(last_start) == [], last_start[-3000:]
        assert server.stop() == 0, server.log()[-3000:]
        assert "Granian shutdown completed" in server.log().rsplit("--- start", 1)[1], server.log()[-3000:]

    rows = await pool_rows(fresh_url, pool_id)
    received = ledger.received
    assert ledger.duplicates == [], f"codes handed out twice: {ledger.duplicates[:5]}"
    assert received - rows.issued == set(), "codes received but not recorded as issued"
    assert await integrity_problems(fresh_url) == []
    assert rows.counters["issued"] == len(rows.issued)
    assert rows.counters["available"] + rows.counters["issued"] == rows.total == CODES
    assert set(ledger.statuses) <= {"200", "200 replayed"}, ledger.statuses
    in_flight = len(rows.issued - received)
    # Only a claim cut off by a kill may be issued without having reached its client (at most one batch
    # per kill, and a batch holds at most one claim per client).
    assert in_flight <= KILLS * CLIENTS, in_flight
    print(
        f"{engine}: {server.starts} starts, {ledger.requests} claim requests, {len(received)} codes received,"
        f" {in_flight} issued but cut off by a kill, {ledger.transport_errors} requests failed in transit,"
        f" {ledger.statuses['200 replayed']} replays after a retry"
    )
    tally.add(f"crash ({engine}): SIGKILL of a serving process", KILLS)
    tally.add(f"crash ({engine}): claim requests under kills", ledger.requests)
