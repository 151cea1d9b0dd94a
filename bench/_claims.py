"""The claim load and the exactly-once checks around it.

Every code a client received (each 200 from wrk, each code of the in-process drain) goes into the pool's
``Ledger``; a code seen twice fails the run at once. wrk stops on a clock and drops the requests still in
flight, and the server still commits those claims (a client that goes away does not undo its claim, by
design), so after a wrk run the pool's issued counter has grown by the 200s wrk counted plus at most one
claim per connection (plus one per socket error). The end-of-pool check is exact: the counters equal the rows
by state, every code received is stored as issued, and issued = received + the abandoned claims counted run
by run.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from _common import BenchFailure, DuplicateCodes, fetch_rows, log
from _procs import Processes
from _server import Server
from _wrk import WrkStats, claimed_codes, run_wrk

from promopool.domain import Claimed
from promopool.storage import Store, open_store

DRAIN_BATCH = 5000
SETTLE_S = 0.5  # longer than the slowest claim seen (p99 under contention is a few hundred ms)
SETTLE_TIMEOUT_S = 30.0


@dataclass(slots=True)
class ClaimRun:
    label: str
    wrk: WrkStats
    issued_before: int
    issued_after: int
    # Claims committed whose response wrk never read (in flight when it stopped): issued delta - 200s.
    abandoned: int
    allowance: int


@dataclass(slots=True)
class Ledger:
    pool_id: int
    seen: set[str] = field(default_factory=set)
    abandoned: int = 0

    def record(self, codes: list[str], source: str) -> None:
        before = len(self.seen)
        self.seen.update(codes)
        added = len(self.seen) - before
        if added != len(codes):
            # Which ones: recount only on failure, so the common path stays a set update.
            counts: dict[str, int] = {}
            for code in codes:
                counts[code] = counts.get(code, 0) + 1
            within = [code for code, n in counts.items() if n > 1]
            raise DuplicateCodes(
                f"{len(codes) - added} code(s) of pool {self.pool_id} handed out more than once ({source});"
                f" repeated within this batch: {within[:5]}"
            )


def settled_issued(server: Server, pool_id: int) -> int:
    """The pool's issued counter once it stops moving: the claims wrk abandoned at its stop are still
    committing for a moment after wrk exits."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    last = server.issued(pool_id)
    while time.monotonic() < deadline:
        time.sleep(SETTLE_S)
        now = server.issued(pool_id)
        if now == last:
            return now
        last = now
    raise BenchFailure(
        f"pool {pool_id}: the issued counter still moves {SETTLE_TIMEOUT_S:.0f}s after the load"
    )


def measure_claims(
    processes: Processes,
    server: Server,
    ledger: Ledger,
    workdir: Path,
    *,
    label: str,
    script: Path,
    seconds: float,
    connections: int,
) -> ClaimRun:
    """wrk on POST /v1/pools/{id}/claim; checks its codes against the ledger and the pool's counter."""
    codes_dir = workdir / f"codes-{label}"
    codes_dir.mkdir()
    before = server.issued(ledger.pool_id)
    stats = run_wrk(
        processes,
        f"wrk-{label}",
        f"{server.base_url}/v1/pools/{ledger.pool_id}/claim",
        script=script,
        script_args=[str(codes_dir), server.api_key],
        seconds=seconds,
        connections=connections,
    )
    after = settled_issued(server, ledger.pool_id)
    codes = claimed_codes(codes_dir)
    if len(codes) != stats.ok:
        raise BenchFailure(f"{label}: wrk counted {stats.ok} 200s but recorded {len(codes)} codes")
    ledger.record(codes, f"wrk run {label}")
    if stats.non_2xx:
        raise BenchFailure(f"{label}: {stats.non_2xx} claim(s) answered other than 2xx (pool too small?)")
    abandoned = after - before - stats.ok
    allowance = connections + sum(stats.socket_errors.values())
    if not 0 <= abandoned <= allowance:
        raise BenchFailure(
            f"{label}: the issued counter grew by {after - before} for {stats.ok} codes received;"
            f" at most {allowance} claims can have been in flight when wrk stopped"
        )
    ledger.abandoned += abandoned
    log(
        f"  {label}: {stats.ok_per_s:,.0f} claims/s, p50 {stats.latency_p50_ms} ms,"
        f" p99 {stats.latency_p99_ms} ms ({stats.ok:,} codes, all distinct;"
        f" {abandoned} committed while in flight at wrk's stop)"
    )
    return ClaimRun(label, stats, before, after, abandoned, allowance)


async def drain(url: str, account_id: int, ledger: Ledger, count: int) -> None:
    """``drain_store`` through a store of its own on ``url``."""
    store = open_store(url)
    await store.connect()
    try:
        await drain_store(store, account_id, ledger, count)
    finally:
        await store.close()


async def drain_store(store: Store, account_id: int, ledger: Ledger, count: int) -> None:
    """Claim ``count`` codes in-process through the store, in big batches: the same row updates (and, on
    PostgreSQL, dead tuples and index entries) a drain by real claims leaves, without a commit per claim."""
    left = count
    while left > 0:
        size = min(DRAIN_BATCH, left)
        values = []
        for result in await store.claim_batch(account_id, ledger.pool_id, [None] * size):
            if not isinstance(result, Claimed):
                raise BenchFailure(f"drain claim failed with {left} still to go: {result!r}")
            values.append(result.code.value)
        ledger.record(values, "in-process drain")
        left -= size


async def _stored(url: str, pool_id: int) -> tuple[dict[str, int], set[str]]:
    """(the pool's rows by state, the values of its issued rows), read from the database itself."""
    by_state = "SELECT state, count(*) FROM codes WHERE pool_id = ? GROUP BY state"
    issued = "SELECT value FROM codes WHERE pool_id = ? AND state = 'issued'"
    states = {state: n for state, n in await fetch_rows(url, by_state, pool_id)}
    return states, {value for (value,) in await fetch_rows(url, issued, pool_id)}


def verify_pool(server: Server, url: str, ledger: Ledger) -> dict[str, int]:
    """The exact end-of-pool check (see the module docstring); returns the pool's counters."""
    counts = server.counts(ledger.pool_id)
    states, issued_values = asyncio.run(_stored(url, ledger.pool_id))
    for state in ("available", "issued", "redeemed"):
        if states.get(state, 0) != counts[state]:
            raise BenchFailure(f"pool {ledger.pool_id}: counters {counts} != rows by state {states}")
    missing = ledger.seen - issued_values
    if missing:
        raise BenchFailure(
            f"pool {ledger.pool_id}: {len(missing)} code(s) handed out are not stored as issued,"
            f" e.g. {sorted(missing)[:5]}"
        )
    if counts["issued"] != len(ledger.seen) + ledger.abandoned:
        raise BenchFailure(
            f"pool {ledger.pool_id}: {counts['issued']} issued != {len(ledger.seen)} received"
            f" + {ledger.abandoned} abandoned in flight"
        )
    return counts
