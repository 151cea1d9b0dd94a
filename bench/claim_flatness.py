"""Claim throughput on a fresh pool versus the same pool 99% drained: the cost of a claim must stay flat.

For each engine: a fresh database, one pool of ``--codes`` codes, then ``--rounds`` rounds of ``--claims``
claims issued by ``--concurrency`` asyncio tasks through ``service.claim`` (the real, coalesced claim path),
measured on the fresh pool and again after the pool has been drained (with real claims, in big batches)
until only 1% + the measured amount is left. The figure per phase is the median round. Every code handed
out is checked to be unique, and the pool's counters are checked against its rows.

    python bench/claim_flatness.py [--engine sqlite|postgresql|both] [--codes 1000000] [--claims 20000]
                                   [--rounds 3] [--concurrency 64] [--pg-url URL]

PostgreSQL: ``--pg-url``, else $PROMOPOOL_TEST_POSTGRES_URL, else postgresql://postgres@127.0.0.1:5432/test;
the run uses a schema of its own and drops it afterwards. Results are printed and written as JSON to
bench/results/claim_flatness-<engine>-<UTC timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import _harness
from _claims import Ledger, drain_store
from _common import BenchFailure, fetch_rows, host_info, log, pg_connect
from _harness import Context

from promopool import service
from promopool.domain import Account, Claimed, CodeState, PoolSettings
from promopool.storage import Store, open_store


@dataclass(slots=True)
class Measurement:
    claims: int
    seconds: float
    claims_per_s: float
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float


@dataclass(slots=True)
class EngineResult:
    engine: str
    codes: int
    claims: int
    rounds: int
    concurrency: int
    import_s: float
    drain_s: float
    drained_claims: int
    fresh_claims_per_s: float  # median round
    drained_claims_per_s: float
    ratio_drained_to_fresh: float
    fresh_rounds: list[Measurement]
    drained_rounds: list[Measurement]
    final_counts: dict[str, int]
    started_at: str
    # PostgreSQL only: the codes table's statistics just before each measurement. Claim plans depend on
    # whether autovacuum has analyzed the table yet, and on how many dead tuples the drain left.
    table_stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    host: dict[str, Any] = field(default_factory=host_info)


def code_values(count: int) -> Iterator[str]:
    for i in range(count):
        yield f"C{i:09d}"


async def measure(
    store: Store, account: Account, pool_id: int, claims: int, concurrency: int, ledger: Ledger
) -> Measurement:
    """``claims`` claims from ``concurrency`` tasks; every value handed out goes into the ledger."""
    remaining = claims
    latencies: list[float] = []
    values: list[str] = []

    async def worker() -> None:
        nonlocal remaining
        # No await between the check and the decrement, so exactly ``claims`` claims are made.
        while remaining > 0:
            remaining -= 1
            t0 = time.perf_counter()
            claimed: Claimed = await service.claim(store, account=account, pool_id=pool_id)
            latencies.append(time.perf_counter() - t0)
            if (
                claimed.replayed
                or claimed.code.state is not CodeState.ISSUED
                or claimed.code.pool_id != pool_id
            ):
                raise BenchFailure(f"unexpected claim result: {claimed!r}")
            values.append(claimed.code.value)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    ledger.record(values, "claims")
    latencies.sort()
    return Measurement(
        claims=claims,
        seconds=round(seconds, 3),
        claims_per_s=round(claims / seconds, 1),
        latency_p50_ms=round(statistics.median(latencies) * 1000, 2),
        latency_p99_ms=round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 2),
        latency_max_ms=round(latencies[-1] * 1000, 2),
    )


async def measure_rounds(
    engine: str,
    phase: str,
    store: Store,
    account: Account,
    pool_id: int,
    args: argparse.Namespace,
    ledger: Ledger,
) -> list[Measurement]:
    # One untimed round first, so connection set-up and statement preparation are not measured.
    await measure(store, account, pool_id, args.concurrency, args.concurrency, ledger)
    rounds = []
    for number in range(1, args.rounds + 1):
        rounds.append(await measure(store, account, pool_id, args.claims, args.concurrency, ledger))
        log(f"{engine}: {phase} round {number}: {describe(rounds[-1])}")
    return rounds


def median_rate(rounds: list[Measurement]) -> float:
    return round(statistics.median(m.claims_per_s for m in rounds), 1)


async def row_counts(url: str, pool_id: int) -> dict[str, int]:
    """The pool's codes by state, counted from the rows themselves, to check the stored counters."""
    sql = "SELECT state, count(*) FROM codes WHERE pool_id = ? GROUP BY state"
    return {state: n for state, n in await fetch_rows(url, sql, pool_id)}


async def pg_table_stats(store: Store, url: str) -> dict[str, Any]:
    if store.engine == "sqlite":
        return {}
    conn = await pg_connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT n_live_tup, n_dead_tup,"
            " last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL AS analyzed,"
            " last_vacuum IS NOT NULL OR last_autovacuum IS NOT NULL AS vacuumed"
            " FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = 'codes'"
        )
    finally:
        await conn.close()
    return {} if row is None else dict(row)


async def check_counts(
    store: Store, url: str, account: Account, pool_id: int, *, available: int, issued: int
) -> dict[str, int]:
    counts = (await service.get_pool(store, account=account, pool_id=pool_id)).counts
    expected = {"available": available, "issued": issued, "redeemed": 0}
    got = {"available": counts.available, "issued": counts.issued, "redeemed": counts.redeemed}
    if got != expected:
        raise BenchFailure(f"pool counters {got} != expected {expected}")
    rows = await row_counts(url, pool_id)
    rows_full = {state: rows.get(state, 0) for state in expected}
    if rows_full != expected or sum(rows.values()) != available + issued:
        raise BenchFailure(f"rows by state {rows} != pool counters {got}")
    return got


def describe(m: Measurement) -> str:
    return (
        f"{m.claims_per_s:8,.0f} claims/s (p50 {m.latency_p50_ms} ms, p99 {m.latency_p99_ms} ms,"
        f" max {m.latency_max_ms} ms, {m.seconds}s)"
    )


def stats_note(stats: dict[str, Any]) -> str:
    if not stats:
        return ""
    return (
        f" [codes table: analyzed={'yes' if stats['analyzed'] else 'no'},"
        f" vacuumed={'yes' if stats['vacuumed'] else 'no'}, dead tuples~{stats['n_dead_tup']:,}]"
    )


def run_engine(ctx: Context, engine: str) -> EngineResult:
    with ctx.database(engine) as url:
        return asyncio.run(measure_engine(engine, url, ctx.args))


async def measure_engine(engine: str, url: str, args: argparse.Namespace) -> EngineResult:
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    n, concurrency = args.codes, args.concurrency
    measured = args.claims * args.rounds
    reserve = n // 100
    store = open_store(url)
    await store.connect()
    try:
        await store.migrate()
        account = (await service.create_account(store, name="bench")).account
        pool = await service.create_pool(store, account=account, name="flatness", settings=PoolSettings())
        ledger = Ledger(pool.id)

        t0 = time.perf_counter()
        report = await service.import_codes(store, account=account, pool_id=pool.id, values=code_values(n))
        import_s = time.perf_counter() - t0
        if (report.inserted, report.duplicates, report.invalid) != (n, 0, 0):
            raise BenchFailure(f"import reported {report}, expected {n} inserted")
        log(f"{engine}: imported {n:,} codes in {import_s:.1f}s ({n / import_s:,.0f} codes/s)")
        await check_counts(store, url, account, pool.id, available=n, issued=0)

        table_stats = {"fresh": await pg_table_stats(store, url)}
        log(f"{engine}: measuring the fresh pool{stats_note(table_stats['fresh'])}")
        fresh = await measure_rounds(engine, "fresh", store, account, pool.id, args, ledger)

        available = (await service.get_pool(store, account=account, pool_id=pool.id)).counts.available
        to_drain = available - (reserve + measured)
        t0 = time.perf_counter()
        await drain_store(store, account.id, ledger, to_drain)
        drain_s = time.perf_counter() - t0
        log(f"{engine}: drained {to_drain:,} codes in {drain_s:.1f}s ({to_drain / drain_s:,.0f} codes/s)")
        await check_counts(
            store, url, account, pool.id, available=reserve + measured, issued=n - reserve - measured
        )

        table_stats["drained"] = await pg_table_stats(store, url)
        log(f"{engine}: measuring the drained pool{stats_note(table_stats['drained'])}")
        drained = await measure_rounds(engine, "drained", store, account, pool.id, args, ledger)
        # The second untimed round came out of the 1% reserve; everything else is accounted for exactly.
        final_available = reserve - concurrency
        final = await check_counts(
            store, url, account, pool.id, available=final_available, issued=n - final_available
        )
        if len(ledger.seen) != n - final_available:
            raise BenchFailure(
                f"{len(ledger.seen)} distinct codes handed out, expected {n - final_available}"
            )
        if not all(value.startswith("C") and int(value[1:]) < n for value in ledger.seen):
            raise BenchFailure("a claim returned a value that was never imported")
    finally:
        await store.close()
    return EngineResult(
        engine=engine,
        codes=n,
        claims=args.claims,
        rounds=args.rounds,
        concurrency=concurrency,
        import_s=round(import_s, 2),
        drain_s=round(drain_s, 2),
        drained_claims=to_drain,
        fresh_claims_per_s=median_rate(fresh),
        drained_claims_per_s=median_rate(drained),
        ratio_drained_to_fresh=round(median_rate(drained) / median_rate(fresh), 3),
        fresh_rounds=fresh,
        drained_rounds=drained,
        final_counts=final,
        started_at=started_at,
        table_stats=table_stats,
    )


def print_table(results: list[EngineResult]) -> None:
    print()
    print(
        f"{'engine':<12} {'fresh claims/s':>15} {'drained claims/s':>17} {'drained/fresh':>14}"
        f"   {'slowest round fresh / drained':>30}"
    )
    for r in results:
        slowest = (min(m.claims_per_s for m in rounds) for rounds in (r.fresh_rounds, r.drained_rounds))
        print(
            f"{r.engine:<12} {r.fresh_claims_per_s:>15,.0f} {r.drained_claims_per_s:>17,.0f}"
            f" {r.ratio_drained_to_fresh:>14.2f}   {'{:,.0f} / {:,.0f}'.format(*slowest):>30}"
        )
    print("(claims/s: median of the measured rounds)")


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--claims", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per phase (median reported)")
    parser.add_argument("--concurrency", type=int, default=64)


def check(args: argparse.Namespace) -> str | None:
    if min(args.concurrency, args.claims, args.rounds) < 1:
        return "--claims, --rounds and --concurrency must be at least 1"
    # Room for both phases (warm-up + measured rounds each) plus a 1% reserve the second warm-up comes out of.
    per_phase = args.concurrency + args.claims * args.rounds
    if args.codes // 100 < args.concurrency or args.codes < args.codes // 100 + 2 * per_phase:
        return (
            "--codes too small: need 1% >= --concurrency, and room for"
            " 2 x (--concurrency + --claims x --rounds) claims besides the 1%"
        )
    return None


def main() -> int:
    return _harness.main(
        "claim_flatness",
        __doc__,
        run_engine,
        codes=1_000_000,
        arguments=arguments,
        check=check,
        table=print_table,
    )


if __name__ == "__main__":
    raise SystemExit(main())
