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
import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as SafeET
import httpx
import msgspec
from _common import BenchFailure, drop_schema, host_info, log, pg_schema_url, write_json
from import_rss import cli, current_rss_mb, promopool_executable, write_codes

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
    host: dict[str, Any] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Sampler:
    """Polls a process's RSS in a thread until stopped; keeps the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = current_rss_mb(self.pid)
            if rss is not None:
                self.peak, self.samples = max(self.peak, rss), self.samples + 1
            time.sleep(SAMPLE_INTERVAL_S)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


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
        Sampler(pid) as sampler,
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
        samples=sampler.samples,
    )
    path.unlink()
    return result


def run_size(engine: str, database_url: str, codes: int, workdir: Path) -> SizeResult:
    created = cli(database_url, "accounts", "create", ACCOUNT)
    match = re.search(r"API key:\s+(pp_\S+)", created)
    if match is None:
        raise BenchFailure(f"accounts create printed no API key:\n{created}")
    api_key = match.group(1)
    pool_id = cli(database_url, "pools", "create", "stream", "--account", ACCOUNT).split()[-1]
    path = workdir / "codes.txt"
    write_codes(path, codes)
    cli(database_url, "import", pool_id, str(path), "--account", ACCOUNT)
    path.unlink()
    expected = {f"C{i:09d}" for i in range(codes)}

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMOPOOL_")}
    command = [promopool_executable(), "--database-url", database_url, "serve", "--port", str(port)]
    with (workdir / "serve.log").open("wb") as server_log:
        server = subprocess.Popen(command, env=env, stdout=server_log, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise BenchFailure(
                        "promopool serve did not come up:\n" + (workdir / "serve.log").read_text()
                    )
                time.sleep(0.1)
            # Warm-up: imports, caches, the first database connections, a first short list.
            warm = httpx.get(f"{base}/api/promotions.json?limit=1000", auth=(ACCOUNT, api_key), timeout=60)
            if warm.status_code != 200:
                raise BenchFailure(f"warm-up: HTTP {warm.status_code}: {warm.text[:500]}")
            time.sleep(0.5)
            idle = current_rss_mb(server.pid) or 0.0
            downloads = []
            for fmt in ("json", "xml"):
                result = download(base, api_key, fmt, server.pid, workdir, expected)
                log(
                    f"{engine}: {codes:,} promotions .{fmt}: {result.body_mb} MB in {result.seconds}s;"
                    f" server RSS {result.rss_before_mb} MB before, peak {result.rss_peak_mb} MB"
                    f" (+{result.rss_growth_mb} MB, {result.samples} samples)"
                )
                downloads.append(result)
        finally:
            server.terminate()
            server.wait(timeout=30)
    return SizeResult(codes=codes, server_rss_idle_mb=round(idle, 1), downloads=downloads)


def check_flat(result: EngineResult) -> None:
    sizes = sorted(result.sizes, key=lambda s: s.codes)
    for fmt in ("json", "xml"):
        growth = [next(d.rss_growth_mb for d in s.downloads if d.fmt == fmt) for s in sizes]
        if max(growth) - min(growth) > GROWTH_LIMIT_MB or max(growth) > GROWTH_LIMIT_MB:
            raise BenchFailure(f"{result.engine} .{fmt}: RSS growth {growth} MB over sizes is not flat")


def run_engine(engine: str, pg_url: str | None, sizes: list[int]) -> EngineResult:
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    results = []
    for codes in sizes:
        with tempfile.TemporaryDirectory(prefix="promopool-bench-") as tmp:
            workdir = Path(tmp)
            if engine == "sqlite":
                results.append(run_size(engine, f"sqlite:///{workdir}/bench.db", codes, workdir))
                continue
            url, schema = pg_schema_url(pg_url, "bench_stream")
            try:
                results.append(run_size(engine, url, codes, workdir))
            finally:
                asyncio.run(drop_schema(url, schema))
    result = EngineResult(engine=engine, sizes=results, started_at=started_at, host=host_info())
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--codes", default="100000,1000000", help="comma-separated list sizes")
    parser.add_argument("--pg-url", default=None)
    args = parser.parse_args()
    sizes = [int(n) for n in args.codes.split(",")]
    if min(sizes) < 1:
        parser.error("--codes must be at least 1")
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    results = []
    for engine in engines:
        try:
            result = run_engine(engine, args.pg_url, sizes)
        except BenchFailure as exc:
            print(f"\n!!! FAILED ({engine}): {exc}\n", file=sys.stderr, flush=True)
            return 1
        log(f"{engine}: results in {write_json('promotions_stream_rss', engine, result)}")
        results.append(result)
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
