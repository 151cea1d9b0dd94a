"""Speed and peak memory of generating and storing codes with ``promopool generate`` (10,000,000 by default).

For each engine, on a fresh database: ``accounts create``, ``pools create``, then the real CLI ``generate POOL
N`` as a subprocess, timed, with its peak RSS from wait4 (and polled every 50 ms as a cross-check). Then the
database is asked: exactly N codes in the pool, N distinct values, every one of the pattern's shape. Last, a
raw baseline from the same run: as many codes from the same generator written straight into a bare table
with the same indexes (binary COPY on PostgreSQL, executemany on SQLite; 50,000 a transaction), so the
ratio says what promopool's path costs over the database itself — and how loaded the machine was.

    python bench/generate_codes.py [--engine sqlite|postgresql|both] [--codes 10000000]
                                   [--pattern P] [--check-character] [--no-baseline] [--pg-url URL]

The target is under 60 s for 10,000,000 codes on PostgreSQL. Figures taken while other work runs on the
machine are noisy: the 1-minute load average before and after is printed and kept with the results.
PostgreSQL: ``--pg-url``, else $PROMOPOOL_TEST_POSTGRES_URL, else postgresql://postgres@127.0.0.1:5432/test;
the run uses a schema of its own and drops it afterwards. Results: bench/results/generate_codes-<engine>-<UTC
timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _harness
import asyncpg
from _common import BenchFailure, host_info, load_average, log, pg_connect, promopool_executable, sqlite_path
from _harness import Context, measured_run

from promopool.domain.generation import CodeSpec, generate

TARGET_S = 60.0
BASELINE_BATCH = 50_000
SUMMARY = re.compile(r"generated (\d+) codes \(job (\d+)\)")


@dataclass(slots=True)
class EngineResult:
    engine: str
    codes: int
    pattern: str
    check_character: bool
    elapsed_s: float
    codes_per_s: float
    # From wait4(): the kernel's own high-water mark for the CLI process; the authoritative figure.
    peak_rss_mb: float
    sampled_peak_rss_mb: float
    verified: str
    baseline_elapsed_s: float | None
    baseline_codes_per_s: float | None
    ratio_to_baseline: float | None
    load_before: float
    load_after: float
    started_at: str
    host: dict[str, Any] = field(default_factory=host_info)


def spec_of(args: argparse.Namespace) -> CodeSpec:
    return CodeSpec.of(pattern=args.pattern, check_character=args.check_character)


def shape_regex(spec: CodeSpec) -> str:
    """A POSIX regex for the codes of ``spec`` (its skeleton holds NUL where a drawn character goes)."""
    drawn = "[" + re.escape(spec.alphabet) + "]"
    return "^" + "".join(drawn if char == "\0" else re.escape(char) for char in spec.skeleton) + "$"


def run_generate(
    ctx: Context, database_url: str, pool_id: int, codes: int, spec: CodeSpec
) -> _harness.MeasuredRun:
    """``promopool generate``, timed, with its peak RSS."""
    command = [promopool_executable(), "--database-url", database_url, "generate", str(pool_id), str(codes)]
    command += ["--pattern", spec.pattern] + (["--check-character"] if spec.check_character else [])
    measured = measured_run(ctx, "generate", command)
    match = SUMMARY.search(measured.stdout)
    if match is None or int(match.group(1)) != codes:
        raise BenchFailure(f"generate did not report {codes} codes:\n{measured.stdout}")
    return measured


def verify_sqlite(path: Path, pool_id: int, codes: int, spec: CodeSpec) -> str:
    with sqlite3.connect(path) as conn:
        pattern = re.compile(shape_regex(spec))
        conn.create_function("shaped", 1, lambda value: pattern.match(value) is not None, deterministic=True)
        total, distinct, misshapen = conn.execute(
            "SELECT count(*), count(DISTINCT value), sum(NOT shaped(value)) FROM codes WHERE pool_id = ?",
            (pool_id,),
        ).fetchone()
    return check_counts(total, distinct, misshapen or 0, codes)


async def verify_postgres(url: str, pool_id: int, codes: int, spec: CodeSpec) -> str:
    conn = await pg_connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT count(*), count(DISTINCT value), count(*) FILTER (WHERE value !~ $2)"
            " FROM codes WHERE pool_id = $1",
            pool_id,
            shape_regex(spec),
        )
    finally:
        await conn.close()
    return check_counts(row[0], row[1], row[2], codes)


def check_counts(total: int, distinct: int, misshapen: int, codes: int) -> str:
    if (total, distinct, misshapen) != (codes, codes, 0):
        raise BenchFailure(f"in the database: {total} codes, {distinct} distinct, {misshapen} misshapen")
    return f"{total} codes, {distinct} distinct, 0 misshapen"


def baseline_sqlite(path: Path, codes: int, spec: CodeSpec) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")  # what promopool runs with
    conn.execute(
        "CREATE TABLE baseline (id INTEGER PRIMARY KEY, pool_id INTEGER, seq INTEGER, value TEXT,"
        " UNIQUE (pool_id, value))"
    )
    conn.execute("CREATE UNIQUE INDEX baseline_seq ON baseline (pool_id, seq)")
    started, done = time.perf_counter(), 0
    while done < codes:
        values = sorted(set(generate(spec, min(BASELINE_BATCH, codes - done))))
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT OR IGNORE INTO baseline (pool_id, seq, value) VALUES (1, ?, ?)",
            ((done + i, value) for i, value in enumerate(values)),
        )
        conn.execute("COMMIT")
        done += len(values)
    conn.close()
    return time.perf_counter() - started


async def baseline_postgres(url: str, codes: int, spec: CodeSpec) -> float:
    conn = await pg_connect(url)
    try:
        await conn.execute(
            "CREATE TABLE baseline (id bigserial PRIMARY KEY, pool_id bigint, seq bigint, value text,"
            " UNIQUE (pool_id, value), UNIQUE (pool_id, seq))"
        )
        started, done = time.perf_counter(), 0
        while done < codes:
            values = sorted(set(generate(spec, min(BASELINE_BATCH, codes - done))))
            try:
                async with conn.transaction():
                    await conn.copy_records_to_table(
                        "baseline",
                        records=[(1, done + i, value) for i, value in enumerate(values)],
                        columns=["pool_id", "seq", "value"],
                    )
            except asyncpg.UniqueViolationError:  # a value drawn twice across batches: draw the batch again
                continue
            done += len(values)
        return time.perf_counter() - started
    finally:
        await conn.close()


def run_engine(ctx: Context, engine: str) -> EngineResult:
    args = ctx.args
    spec = spec_of(args)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    load_before = load_average()
    with ctx.database(engine) as database_url:
        ctx.cli(database_url, "accounts", "create", "default")
        pool_id = int(ctx.cli(database_url, "pools", "create", "bench").split()[-1])
        log(f"{engine}: generating {args.codes:,} codes of {spec.pattern!r} (load {load_before})")
        run = run_generate(ctx, database_url, pool_id, args.codes, spec)
        elapsed, peak, sampled = run.seconds, run.peak_rss_mb, run.sampled_peak_rss_mb
        log(f"{engine}: {elapsed:.1f}s, {args.codes / elapsed:,.0f} codes/s, peak RSS {peak:.1f} MB")
        if engine == "sqlite":
            verified = verify_sqlite(sqlite_path(database_url), pool_id, args.codes, spec)
        else:
            verified = asyncio.run(verify_postgres(database_url, pool_id, args.codes, spec))
        log(f"{engine}: verified in the database: {verified}")
        baseline = None
        if args.baseline:
            if engine == "sqlite":
                baseline = baseline_sqlite(ctx.workdir / "baseline.db", args.codes, spec)
            else:
                baseline = asyncio.run(baseline_postgres(database_url, args.codes, spec))
            log(f"{engine}: raw baseline {baseline:.1f}s ({args.codes / baseline:,.0f} codes/s)")
    return EngineResult(
        engine=engine,
        codes=args.codes,
        pattern=spec.pattern,
        check_character=spec.check_character,
        elapsed_s=round(elapsed, 2),
        codes_per_s=round(args.codes / elapsed, 1),
        peak_rss_mb=round(peak, 1),
        sampled_peak_rss_mb=round(sampled, 1),
        verified=verified,
        baseline_elapsed_s=None if baseline is None else round(baseline, 2),
        baseline_codes_per_s=None if baseline is None else round(args.codes / baseline, 1),
        ratio_to_baseline=None if baseline is None else round(elapsed / baseline, 2),
        load_before=load_before,
        load_after=load_average(),
        started_at=started_at,
    )


def print_table(results: list[EngineResult]) -> None:
    print()
    print(
        f"{'engine':<12} {'codes':>11} {'seconds':>8} {'codes/s':>10} {'peak RSS MB':>12}"
        f" {'raw s':>7} {'x raw':>6} {'load':>10}"
    )
    for r in results:
        raw = "-" if r.baseline_elapsed_s is None else f"{r.baseline_elapsed_s:.1f}"
        ratio = "-" if r.ratio_to_baseline is None else f"{r.ratio_to_baseline:.2f}"
        print(
            f"{r.engine:<12} {r.codes:>11,} {r.elapsed_s:>8.1f} {r.codes_per_s:>10,.0f}"
            f" {r.peak_rss_mb:>12.1f} {raw:>7} {ratio:>6} {r.load_before:>4}->{r.load_after:<4}"
        )
    for r in results:
        if r.engine == "postgresql" and r.codes == 10_000_000:
            verdict = "within" if r.elapsed_s < TARGET_S else "OVER"
            print(f"PostgreSQL, 10,000,000 codes: {r.elapsed_s:.1f}s, {verdict} the {TARGET_S:.0f}s target")


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pattern", default="#" * 12, help="default: 12 random characters")
    parser.add_argument("--check-character", action="store_true")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false")


def main() -> int:
    return _harness.main(
        "generate_codes", __doc__, run_engine, codes=10_000_000, arguments=arguments, table=print_table
    )


if __name__ == "__main__":
    raise SystemExit(main())
