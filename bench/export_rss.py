"""Server memory while a large pool is exported over HTTP, and the round trip export → delete → re-import.

For each engine, on a fresh database: one pool of ``--codes`` (1,000,000) codes made by ``promopool
generate``, ``--claimed`` of them claimed, and a real ``promopool serve`` subprocess. The export (``GET
/v1/pools/{id}/export``, CSV) is streamed over HTTP to a file while the RSS of the server's worker (the
process that serves it) is sampled every 50 ms; it must stay flat: less than 25 MB above what the worker held
just before. Then the pool is deleted, a new
one created, the file re-imported over HTTP (``text/csv``, streamed) and exported again: both exports are in
code order, so their code columns are compared line by line, in constant memory.

    python bench/export_rss.py [--engine sqlite|postgresql|both] [--codes 1000000] [--claimed 1000]
                               [--pg-url URL]

PostgreSQL: ``--pg-url``, else $PROMOPOOL_TEST_POSTGRES_URL, else postgresql://postgres@127.0.0.1:5432/test;
the run uses a schema of its own and drops it afterwards. Results: bench/results/export_rss-<engine>-<UTC
timestamp>.json. The 1-minute load average before and after is kept with them: figures taken while other
work runs on the machine are noisy.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import zip_longest
from pathlib import Path
from typing import Any

import _harness
import httpx
from _common import BenchFailure, current_rss_mb, host_info, load_average, log
from _harness import Context, RssSampler, serve
from _server import create_account

RSS_GROWTH_LIMIT_MB = 25.0
CHUNK = 1 << 16


@dataclass(slots=True)
class EngineResult:
    engine: str
    codes: int
    claimed: int
    export_s: float
    export_rows_per_s: float
    export_mb: float
    rss_before_mb: float
    rss_peak_mb: float
    rss_after_mb: float
    rss_growth_mb: float
    rss_timeline_mb: list[float]  # one sample per second of the export
    reimported: int
    round_trip: str
    load_before: float
    load_after: float
    started_at: str
    host: dict[str, Any] = field(default_factory=host_info)


def download(client: httpx.Client, url: str, target: Path) -> int:
    with client.stream("GET", url) as response, target.open("wb") as out:
        if response.status_code != 200:
            response.read()
            raise BenchFailure(f"GET {url}: {response.status_code} {response.text}")
        for chunk in response.iter_bytes(CHUNK):
            out.write(chunk)
    return target.stat().st_size


def file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def code_column(path: Path) -> Iterator[str]:
    # Generated codes hold no comma or quote, so the code is everything before the first comma.
    with path.open(encoding="utf-8") as handle:
        next(handle)  # the header
        for line in handle:
            yield line.split(",", 1)[0]


def compare_code_columns(first: Path, second: Path) -> int:
    count = 0
    for count, (a, b) in enumerate(zip_longest(code_column(first), code_column(second)), start=1):
        if a != b:
            raise BenchFailure(f"round trip: code {count} is {a!r} in the first export, {b!r} in the second")
    return count


def run_engine(ctx: Context, engine: str) -> EngineResult:
    with ctx.database(engine) as database_url:
        return measure_engine(ctx, engine, database_url)


def measure_engine(ctx: Context, engine: str, database_url: str) -> EngineResult:
    args, workdir = ctx.args, ctx.workdir
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    load_before = load_average()
    api_key = create_account(ctx.processes, database_url, "default").api_key
    pool_id = int(ctx.cli(database_url, "pools", "create", "export").split()[-1])
    t0 = time.perf_counter()
    ctx.cli(database_url, "generate", str(pool_id), str(args.codes))
    log(f"{engine}: generated {args.codes:,} codes in {time.perf_counter() - t0:.1f}s")

    with (
        serve(ctx.processes, database_url, api_key=api_key) as server,
        httpx.Client(
            base_url=server.base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=600
        ) as client,
    ):
        pid = server.worker_pid()
        for _ in range(args.claimed):
            claimed = client.post(f"/v1/pools/{pool_id}/claim")
            if claimed.status_code != 200:
                raise BenchFailure(f"claim: {claimed.status_code} {claimed.text}")
        download(client, f"/v1/pools/{pool_id}/export?state=issued", workdir / "warmup.csv")
        time.sleep(1.0)  # let the server settle after the warm-up
        before = current_rss_mb(pid) or 0.0
        first = workdir / "first.csv"
        with RssSampler(pid) as sampler:
            t0 = time.perf_counter()
            size = download(client, f"/v1/pools/{pool_id}/export", first)
            export_s = time.perf_counter() - t0
            time.sleep(0.5)
        after = current_rss_mb(pid) or 0.0
        peak = sampler.peak
        log(
            f"{engine}: exported {size / 1e6:.1f} MB in {export_s:.1f}s; server worker RSS {before:.1f} MB"
            f" before, peak {peak:.1f} MB, {after:.1f} MB after ({len(sampler.samples)} samples)"
        )

        if client.delete(f"/v1/pools/{pool_id}").status_code != 204:
            raise BenchFailure("could not delete the pool")
        fresh = client.post("/v1/pools", json={"name": "reimported"}).json()["id"]
        report = client.post(
            f"/v1/pools/{fresh}/codes",
            content=file_chunks(first),
            headers={"content-type": "text/csv"},
        ).json()
        if (report.get("inserted"), report.get("duplicates"), report.get("invalid")) != (args.codes, 0, 0):
            raise BenchFailure(f"re-import reported {report}")
        second = workdir / "second.csv"
        download(client, f"/v1/pools/{fresh}/export", second)
    compared = compare_code_columns(first, second)
    round_trip = f"{compared} codes, the same in both exports"
    log(f"{engine}: round trip: {round_trip}")
    growth = peak - before
    if growth >= RSS_GROWTH_LIMIT_MB:
        raise BenchFailure(f"server RSS grew {growth:.1f} MB during the export (limit {RSS_GROWTH_LIMIT_MB})")
    return EngineResult(
        engine=engine,
        codes=args.codes,
        claimed=args.claimed,
        export_s=round(export_s, 2),
        export_rows_per_s=round(args.codes / export_s, 1),
        export_mb=round(size / 1e6, 1),
        rss_before_mb=round(before, 1),
        rss_peak_mb=round(peak, 1),
        rss_after_mb=round(after, 1),
        rss_growth_mb=round(growth, 1),
        rss_timeline_mb=sampler.per_second(),
        reimported=report["inserted"],
        round_trip=round_trip,
        load_before=load_before,
        load_after=load_average(),
        started_at=started_at,
    )


def print_table(results: list[EngineResult]) -> None:
    print()
    print(
        f"{'engine':<12} {'codes':>10} {'export s':>9} {'rows/s':>9} {'MB':>6}"
        f" {'RSS before':>11} {'peak':>7} {'growth':>7} {'load':>10}"
    )
    for r in results:
        print(
            f"{r.engine:<12} {r.codes:>10,} {r.export_s:>9.1f} {r.export_rows_per_s:>9,.0f}"
            f" {r.export_mb:>6.1f} {r.rss_before_mb:>11.1f} {r.rss_peak_mb:>7.1f} {r.rss_growth_mb:>7.1f}"
            f" {r.load_before:>4}->{r.load_after:<4}"
        )
        print(f"{'':<12} server RSS per second (MB): {r.rss_timeline_mb}")
        print(f"{'':<12} round trip: {r.round_trip}")


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--claimed", type=int, default=1_000)


def check(args: argparse.Namespace) -> str | None:
    if not 0 <= args.claimed <= args.codes:
        return "--claimed must be between 0 and --codes"
    return None


def main() -> int:
    return _harness.main(
        "export_rss",
        __doc__,
        run_engine,
        codes=1_000_000,
        arguments=arguments,
        check=check,
        table=print_table,
    )


if __name__ == "__main__":
    raise SystemExit(main())
