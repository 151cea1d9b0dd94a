"""Peak memory and speed of the CLI bulk import (``promopool import``), which must run in constant memory.

Generates a file of ``--codes`` codes, one per line, then runs the real CLI as subprocesses: ``accounts
create default``, ``pools create bench``, and ``import POOL FILE`` twice. The first import must insert every
code, the second must report them all as duplicates; each import's peak RSS must stay under 200 MB.

    python bench/import_rss.py [--engine sqlite|postgresql|both] [--codes 1000000] [--pg-url URL]

PostgreSQL: ``--pg-url``, else $PROMOPOOL_TEST_POSTGRES_URL, else postgresql://postgres@127.0.0.1:5432/test;
the run uses a schema of its own and drops it afterwards. Results are printed and written as JSON to
bench/results/import_rss-<engine>-<UTC timestamp>.json.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _harness
from _common import BenchFailure, host_info, log, promopool_executable, write_codes
from _harness import Context, measured_run

RSS_LIMIT_MB = 200.0
SUMMARY = re.compile(r"inserted (\d+), duplicates (\d+), invalid (\d+)")


@dataclass(slots=True)
class ImportRun:
    elapsed_s: float
    codes_per_s: float
    # From wait4(): the kernel's own high-water mark for exactly this process; the authoritative figure.
    peak_rss_mb: float
    # Polled every 50 ms; a lower bound of the true peak, kept as a cross-check of the figure above.
    sampled_peak_rss_mb: float
    samples: int
    inserted: int
    duplicates: int
    invalid: int
    summary: str


@dataclass(slots=True)
class EngineResult:
    engine: str
    codes: int
    file_mb: float
    first: ImportRun
    second: ImportRun
    started_at: str
    host: dict[str, Any] = field(default_factory=host_info)


def run_import(ctx: Context, database_url: str, pool_id: int, path: Path, codes: int) -> ImportRun:
    command = [promopool_executable(), "--database-url", database_url, "import", str(pool_id), str(path)]
    measured = measured_run(ctx, "import", command)
    match = SUMMARY.search(measured.stdout)
    if match is None:
        raise BenchFailure(
            f"no 'inserted X, duplicates Y, invalid Z' line in the import output:\n{measured.stdout}"
        )
    inserted, duplicates, invalid = (int(group) for group in match.groups())
    return ImportRun(
        elapsed_s=round(measured.seconds, 2),
        codes_per_s=round(codes / measured.seconds, 1),
        peak_rss_mb=round(measured.peak_rss_mb, 1),
        sampled_peak_rss_mb=round(measured.sampled_peak_rss_mb, 1),
        samples=measured.samples,
        inserted=inserted,
        duplicates=duplicates,
        invalid=invalid,
        summary=match.group(0),
    )


def check(run: ImportRun, label: str, *, inserted: int, duplicates: int) -> None:
    got = (run.inserted, run.duplicates, run.invalid)
    if got != (inserted, duplicates, 0):
        raise BenchFailure(
            f"{label}: CLI reported '{run.summary}', expected inserted {inserted}, duplicates {duplicates},"
            " invalid 0"
        )
    # The kernel batches RSS accounting per thread, so the two figures can differ by a fraction of a MB
    # either way; the limit applies to the larger.
    peak = max(run.peak_rss_mb, run.sampled_peak_rss_mb)
    if peak >= RSS_LIMIT_MB:
        raise BenchFailure(f"{label}: peak RSS {peak} MB >= {RSS_LIMIT_MB} MB")


def run_engine(ctx: Context, engine: str) -> EngineResult:
    codes = ctx.args.codes
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    with ctx.database(engine) as database_url:
        path = ctx.workdir / "codes.txt"
        t0 = time.perf_counter()
        write_codes(path, codes)
        file_mb = path.stat().st_size / 1024 / 1024
        log(f"{engine}: wrote {codes:,} codes ({file_mb:.1f} MB) in {time.perf_counter() - t0:.1f}s")

        ctx.cli(database_url, "accounts", "create", "default")
        pool_output = ctx.cli(database_url, "pools", "create", "bench").split()
        if not pool_output or not pool_output[-1].isdigit():
            raise BenchFailure(f"pools create printed no pool id: {pool_output!r}")
        pool_id = int(pool_output[-1])

        runs = []
        for label, expect_inserted in (("first import", codes), ("second import", 0)):
            run = run_import(ctx, database_url, pool_id, path, codes)
            log(
                f"{engine}: {label}: {run.elapsed_s:.1f}s, {run.codes_per_s:,.0f} codes/s,"
                f" peak RSS {run.peak_rss_mb:.1f} MB (sampled {run.sampled_peak_rss_mb:.1f} MB"
                f" over {run.samples} samples); CLI: {run.summary}"
            )
            check(run, f"{engine} {label}", inserted=expect_inserted, duplicates=codes - expect_inserted)
            runs.append(run)
    return EngineResult(
        engine=engine,
        codes=codes,
        file_mb=round(file_mb, 1),
        first=runs[0],
        second=runs[1],
        started_at=started_at,
    )


def print_table(results: list[EngineResult]) -> None:
    print()
    print(f"{'engine':<12} {'run':<7} {'seconds':>8} {'codes/s':>10} {'peak RSS MB':>12}  CLI summary")
    for r in results:
        for name, run in (("first", r.first), ("second", r.second)):
            print(
                f"{r.engine:<12} {name:<7} {run.elapsed_s:>8.1f} {run.codes_per_s:>10,.0f}"
                f" {run.peak_rss_mb:>12.1f}  {run.summary}"
            )


def main() -> int:
    return _harness.main("import_rss", __doc__, run_engine, codes=1_000_000, table=print_table)


if __name__ == "__main__":
    raise SystemExit(main())
