"""Server memory while the SuperSaaS dialect streams a whole promotion list: it must stay flat.

For each engine and each list size: a fresh database, ``promopool accounts create`` / ``pools create`` /
``import`` through the real CLI, then a real ``promopool serve`` process. After a warm-up request, the bench
downloads ``GET /api/promotions.json`` and then ``.xml`` without ``limit`` (HTTP Basic, as the official
clients), sampling the server's resident memory every 20 ms from /proc. The downloaded bodies are checked:
one JSON array, one XML ``<promotions type="array">``, each with every code exactly once, and as long as
the ``Content-Length`` said (the server spools a long list to a temporary file to know it).

The figure that matters is the growth of the server's RSS during a download (peak minus the RSS just before
it); it must not grow with the list: a 10 times longer list must not cost more than ``GROWTH_LIMIT_MB``.

    python bench/promotions_stream_rss.py [--engine sqlite|postgresql|both] [--codes 100000,1000000]
                                         [--pg-url URL]

PostgreSQL: ``--pg-url``, else $PROMOPOOL_TEST_POSTGRES_URL, else postgresql://postgres@127.0.0.1:5432/test;
each run uses a schema of its own and drops it afterwards. Results are printed and written as JSON to
bench/results/promotions_stream_rss-<engine>-<UTC timestamp>.json.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _harness
import defusedxml.ElementTree as SafeET
import httpx
import msgspec
from _common import BenchFailure, current_rss_mb, host_info, log, write_codes
from _harness import Context, RssSampler, serve
from _server import create_account

GROWTH_LIMIT_MB = 30.0
SAMPLE_INTERVAL_S = 0.02
ACCOUNT = "bench"


class Promotion(msgspec.Struct):
    code: str
    description: str
    usage: int


@dataclass(slots=True)
class Download:
    fmt: str
    seconds: float
    body_mb: float
    promotions: int
    rss_before_mb: float
    rss_peak_mb: float
    rss_growth_mb: float
    samples: int


@dataclass(slots=True)
class SizeResult:
    codes: int
    server_rss_idle_mb: float
    downloads: list[Download]


@dataclass(slots=True)
class EngineResult:
    engine: str
    sizes: list[SizeResult]
    started_at: str
    host: dict[str, Any] = field(default_factory=host_info)


def count_json(path: Path, expected: set[str]) -> int:
    promotions = msgspec.json.decode(path.read_bytes(), type=list[Promotion])
    codes = {p.code for p in promotions}
    if len(promotions) != len(expected) or codes != expected:
        raise BenchFailure(
            f"JSON list has {len(promotions)} items, {len(codes)} distinct; expected {len(expected)}"
        )
    return len(promotions)


def count_xml(path: Path, expected: set[str]) -> int:
    seen: set[str] = set()
    count = 0
    root_ok = False
    for event, element in SafeET.iterparse(str(path), events=("start", "end")):
        if event == "start" and not root_ok:
            root_ok = element.tag == "promotions" and element.get("type") == "array"
            if not root_ok:
                raise BenchFailure(f"XML root is <{element.tag}>, not <promotions type='array'>")
        elif event == "end" and element.tag == "promotion":
            seen.add(element.findtext("code") or "")
            count += 1
            element.clear()
    if count != len(expected) or seen != expected:
        raise BenchFailure(f"XML list has {count} items, {len(seen)} distinct; expected {len(expected)}")
    return count


def download(base: str, api_key: str, fmt: str, pid: int, workdir: Path, expected: set[str]) -> Download:
    path = workdir / f"promotions.{fmt}"
    rss_before = current_rss_mb(pid) or 0.0
    started = time.perf_counter()
    with (
        RssSampler(pid, SAMPLE_INTERVAL_S) as sampler,
        path.open("wb") as out,
        httpx.stream(
            "GET",
            f"{base}/api/promotions.{fmt}",
            auth=(ACCOUNT, api_key),
            headers={"Accept": "application/json"},
            timeout=300,
        ) as response,
    ):
        if response.status_code != 200:
            raise BenchFailure(f".{fmt}: HTTP {response.status_code}: {response.read()[:500]!r}")
        if "content-length" not in response.headers:
            raise BenchFailure(f".{fmt}: no Content-Length (the Node.js client would read no body)")
        length = int(response.headers["content-length"])
        for chunk in response.iter_bytes():
            out.write(chunk)
    seconds = time.perf_counter() - started
    if path.stat().st_size != length:
        raise BenchFailure(f".{fmt}: Content-Length {length}, body {path.stat().st_size} bytes")
    count = count_json(path, expected) if fmt == "json" else count_xml(path, expected)
    result = Download(
        fmt=fmt,
        seconds=round(seconds, 2),
        body_mb=round(path.stat().st_size / 1024 / 1024, 1),
        promotions=count,
        rss_before_mb=round(rss_before, 1),
        rss_peak_mb=round(sampler.peak, 1),
        rss_growth_mb=round(max(0.0, sampler.peak - rss_before), 1),
        samples=len(sampler.samples),
    )
    path.unlink()
    return result


def run_size(ctx: Context, engine: str, database_url: str, codes: int) -> SizeResult:
    api_key = create_account(ctx.processes, database_url, ACCOUNT).api_key
    pool_id = ctx.cli(database_url, "pools", "create", "stream", "--account", ACCOUNT).split()[-1]
    path = ctx.workdir / "codes.txt"
    write_codes(path, codes)
    ctx.cli(database_url, "import", pool_id, str(path), "--account", ACCOUNT)
    path.unlink()
    expected = {f"C{i:09d}" for i in range(codes)}

    with serve(ctx.processes, database_url, api_key=api_key) as server:
        base, pid = server.base_url, server.worker_pid()
        # Warm-up: imports, caches, the first database connections, a first short list.
        warm = httpx.get(f"{base}/api/promotions.json?limit=1000", auth=(ACCOUNT, api_key), timeout=60)
        if warm.status_code != 200:
            raise BenchFailure(f"warm-up: HTTP {warm.status_code}: {warm.text[:500]}")
        time.sleep(0.5)
        idle = current_rss_mb(pid) or 0.0
        downloads = []
        for fmt in ("json", "xml"):
            result = download(base, api_key, fmt, pid, ctx.workdir, expected)
            log(
                f"{engine}: {codes:,} promotions .{fmt}: {result.body_mb} MB in {result.seconds}s;"
                f" server worker RSS {result.rss_before_mb} MB before, peak {result.rss_peak_mb} MB"
                f" (+{result.rss_growth_mb} MB, {result.samples} samples)"
            )
            downloads.append(result)
    return SizeResult(codes=codes, server_rss_idle_mb=round(idle, 1), downloads=downloads)


def check_flat(result: EngineResult) -> None:
    sizes = sorted(result.sizes, key=lambda s: s.codes)
    for fmt in ("json", "xml"):
        growth = [next(d.rss_growth_mb for d in s.downloads if d.fmt == fmt) for s in sizes]
        if max(growth) - min(growth) > GROWTH_LIMIT_MB or max(growth) > GROWTH_LIMIT_MB:
            raise BenchFailure(f"{result.engine} .{fmt}: RSS growth {growth} MB over sizes is not flat")


def run_engine(ctx: Context, engine: str) -> EngineResult:
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    results = []
    for codes in ctx.args.sizes:
        with ctx.database(engine) as database_url:
            results.append(run_size(ctx, engine, database_url, codes))
    result = EngineResult(engine=engine, sizes=results, started_at=started_at)
    check_flat(result)
    return result


def print_table(results: list[EngineResult]) -> None:
    print()
    print(
        f"{'engine':<12} {'codes':>10} {'fmt':<5} {'MB':>7} {'seconds':>8}"
        f" {'RSS before':>11} {'peak':>7} {'growth':>7}"
    )
    for r in results:
        for s in r.sizes:
            for d in s.downloads:
                print(
                    f"{r.engine:<12} {s.codes:>10,} {d.fmt:<5} {d.body_mb:>7.1f} {d.seconds:>8.2f}"
                    f" {d.rss_before_mb:>11.1f} {d.rss_peak_mb:>7.1f} {d.rss_growth_mb:>7.1f}"
                )


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--codes", default="100000,1000000", help="comma-separated list sizes")


def check(args: argparse.Namespace) -> str | None:
    args.sizes = [int(n) for n in args.codes.split(",")]
    return "--codes must be at least 1" if min(args.sizes) < 1 else None


def main() -> int:
    return _harness.main(
        "promotions_stream_rss", __doc__, run_engine, arguments=arguments, check=check, table=print_table
    )


if __name__ == "__main__":
    raise SystemExit(main())
