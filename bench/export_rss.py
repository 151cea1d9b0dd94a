"""Server memory while a large pool is exported over HTTP, and the round trip export → delete → re-import.

For each engine, on a fresh database: one pool of ``--codes`` (1,000,000) codes made by ``promopool
generate``, ``--claimed`` of them claimed, and a real ``promopool serve`` subprocess. The export (``GET
/v1/pools/{id}/export``, CSV) is streamed over HTTP to a file while the server's RSS is sampled every 50 ms;
it must stay flat: less than 25 MB above what the server held just before. Then the pool is deleted, a new
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
import asyncio
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import zip_longest
from pathlib import Path
from typing import Any

import httpx
from _common import (
    BenchFailure,
    cli,
    current_rss_mb,
    drop_schema,
    host_info,
    load_average,
    log,
    pg_schema_url,
    promopool_executable,
    write_json,
)

RSS_GROWTH_LIMIT_MB = 25.0
SAMPLE_INTERVAL_S = 0.05
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
    host: dict[str, Any] = field(default_factory=dict)


class RssSampler:
    """Samples a process's RSS in a thread until stopped."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.perf_counter()
        while not self._stop.is_set():
            rss = current_rss_mb(self.pid)
            if rss is not None:
                self.samples.append((time.perf_counter() - started, rss))
            time.sleep(SAMPLE_INTERVAL_S)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def per_second(self) -> list[float]:
        timeline: dict[int, float] = {}
        for at, rss in self.samples:
            timeline[int(at)] = max(timeline.get(int(at), 0.0), rss)
        return [round(timeline[second], 1) for second in sorted(timeline)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(database_url: str, workdir: Path) -> Iterator[tuple[int, str]]:
    """A `promopool serve` process: (pid, base URL)."""
    port = free_port()
    command = [promopool_executable(), "--database-url", database_url, "serve", "--port", str(port)]
    with (workdir / "serve.log").open("wb") as server_log:
        process = subprocess.Popen(command, stdout=server_log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise BenchFailure(f"server exited:\n{(workdir / 'serve.log').read_text(errors='replace')}")
            try:
                if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise BenchFailure("server did not start")
            time.sleep(0.1)
        yield process.pid, base
    finally:
        process.terminate()
        process.wait(timeout=60)


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


def run_engine(engine: str, database_url: str, args: argparse.Namespace, workdir: Path) -> EngineResult:
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    load_before = load_average()
    created = cli(database_url, "accounts", "create", "default")
    key_match = re.search(r"API key:\s+(pp_\S+)", created)
    if key_match is None:
        raise BenchFailure(f"no API key in:\n{created}")
    headers = {"Authorization": f"Bearer {key_match.group(1)}"}
    pool_id = int(cli(database_url, "pools", "create", "export").split()[-1])
    t0 = time.perf_counter()
    cli(database_url, "generate", str(pool_id), str(args.codes))
    log(f"{engine}: generated {args.codes:,} codes in {time.perf_counter() - t0:.1f}s")

    with (
        serve(database_url, workdir) as (pid, base),
        httpx.Client(base_url=base, headers=headers, timeout=600) as client,
    ):
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
        peak = max(rss for _, rss in sampler.samples)
        log(
            f"{engine}: exported {size / 1e6:.1f} MB in {export_s:.1f}s; server RSS {before:.1f} MB before,"
            f" peak {peak:.1f} MB, {after:.1f} MB after ({len(sampler.samples)} samples)"
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
        host=host_info(),
    )


def run(engine: str, args: argparse.Namespace) -> EngineResult:
    with tempfile.TemporaryDirectory(prefix="promopool-bench-") as tmp:
        workdir = Path(tmp)
        if engine == "sqlite":
            return run_engine(engine, f"sqlite:///{workdir}/bench.db", args, workdir)
        url, schema = pg_schema_url(args.pg_url, "bench_export")
        try:
            return run_engine(engine, url, args, workdir)
        finally:
            asyncio.run(drop_schema(url, schema))


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--codes", type=int, default=1_000_000)
    parser.add_argument("--claimed", type=int, default=1_000)
    parser.add_argument("--pg-url", default=None)
    args = parser.parse_args()
    if args.codes < 1 or not 0 <= args.claimed <= args.codes:
        parser.error("--codes must be at least 1 and --claimed between 0 and --codes")
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    results = []
    for engine in engines:
        try:
            result = run(engine, args)
        except BenchFailure as exc:
            print(f"\n!!! FAILED ({engine}): {exc}\n", file=sys.stderr, flush=True)
            return 1
        log(f"{engine}: results in {write_json('export_rss', engine, result)}")
        results.append(result)
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
