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

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import (
    BenchFailure,
    cli,
    current_rss_mb,
    drop_schema,
    host_info,
    log,
    pg_schema_url,
    promopool_executable,
    write_json,
)

RSS_LIMIT_MB = 200.0
SAMPLE_INTERVAL_S = 0.05
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
    host: dict[str, Any] = field(default_factory=dict)


def write_codes(path: Path, count: int) -> None:
    with path.open("w", encoding="ascii", newline="\n") as out:
        chunk = 100_000
        for start in range(0, count, chunk):
            out.write("".join(f"C{i:09d}\n" for i in range(start, min(start + chunk, count))))


def run_import(database_url: str, pool_id: int, path: Path, codes: int, workdir: Path) -> ImportRun:
    command = [promopool_executable(), "--database-url", database_url, "import", str(pool_id), str(path)]
    # Output goes to files, not pipes: nobody reads a pipe while we poll, and a full pipe would stall the
    # child and distort both the timing and the memory figures.
    out_path, err_path = workdir / "import.out", workdir / "import.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err)
        sampled_peak, samples = 0.0, 0
        while True:
            # wait4 rather than Popen.wait: it reports this child's own ru_maxrss. getrusage(RUSAGE_CHILDREN)
            # is the maximum over every child waited for so far, so it cannot tell the two imports apart.
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid != 0:
                break
            rss = current_rss_mb(process.pid)
            if rss is not None:
                sampled_peak, samples = max(sampled_peak, rss), samples + 1
            time.sleep(SAMPLE_INTERVAL_S)
        elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    stdout = out_path.read_text(encoding="utf-8", errors="replace")
    stderr = err_path.read_text(encoding="utf-8", errors="replace")
    if process.returncode != 0:
        raise BenchFailure(f"import exited {process.returncode}:\n{stdout}{stderr}")
    match = SUMMARY.search(stdout)
    if match is None:
        raise BenchFailure(f"no 'inserted X, duplicates Y, invalid Z' line in the import output:\n{stdout}")
    inserted, duplicates, invalid = (int(group) for group in match.groups())
    # Linux reports ru_maxrss in KiB (macOS in bytes).
    peak_mb = usage.ru_maxrss / 1024 / (1024 if sys.platform == "darwin" else 1)
    return ImportRun(
        elapsed_s=round(elapsed, 2),
        codes_per_s=round(codes / elapsed, 1),
        peak_rss_mb=round(peak_mb, 1),
        sampled_peak_rss_mb=round(sampled_peak, 1),
        samples=samples,
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


def run_engine(engine: str, database_url: str | None, codes: int) -> EngineResult:
    """One engine's run; ``database_url`` None means a fresh SQLite file in the run's temp dir."""
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="promopool-bench-") as tmp:
        workdir = Path(tmp)
        if database_url is None:
            database_url = f"sqlite:///{workdir}/bench.db"
        path = workdir / "codes.txt"
        t0 = time.perf_counter()
        write_codes(path, codes)
        file_mb = path.stat().st_size / 1024 / 1024
        log(f"{engine}: wrote {codes:,} codes ({file_mb:.1f} MB) in {time.perf_counter() - t0:.1f}s")

        cli(database_url, "accounts", "create", "default")
        pool_output = cli(database_url, "pools", "create", "bench").split()
        if not pool_output or not pool_output[-1].isdigit():
            raise BenchFailure(f"pools create printed no pool id: {pool_output!r}")
        pool_id = int(pool_output[-1])

        runs = []
        for label, expect_inserted in (("first import", codes), ("second import", 0)):
            run = run_import(database_url, pool_id, path, codes, workdir)
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
        host=host_info(),
    )


def run_postgres(pg_url: str | None, codes: int) -> EngineResult:
    url, schema = pg_schema_url(pg_url, "bench_rss")
    try:
        return run_engine("postgresql", url, codes)
    finally:
        asyncio.run(drop_schema(url, schema))


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--codes", type=int, default=1_000_000)
    parser.add_argument("--pg-url", default=None)
    args = parser.parse_args()
    if args.codes < 1:
        parser.error("--codes must be at least 1")
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    results = []
    for engine in engines:
        try:
            result = (
                run_engine("sqlite", None, args.codes)
                if engine == "sqlite"
                else run_postgres(args.pg_url, args.codes)
            )
        except BenchFailure as exc:
            print(f"\n!!! FAILED ({engine}): {exc}\n", file=sys.stderr, flush=True)
            return 1
        log(f"{engine}: results in {write_json('import_rss', engine, result)}")
        results.append(result)
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
