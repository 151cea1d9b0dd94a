"""Time and server memory of a PersonaClick upload of many codes in one JSON body (``POST /promo_codes``).

Creates an account and a pool with the CLI, starts ``promopool serve`` (one worker), posts one body with
``--codes`` codes and polls the server's RSS meanwhile. The upload must add every code; the server's peak RSS
is reported beside its RSS before the upload and the body's size.

    python bench/personaclick_upload_rss.py [--engine sqlite|postgresql|both] [--codes 1000000] [--pg-url URL]

Results are printed and written as JSON to bench/results/personaclick_upload_rss-<engine>-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _common import BenchFailure, drop_schema, host_info, log, pg_schema_url, promopool_executable, write_json
from _procs import free_port


@dataclass(slots=True)
class UploadResult:
    engine: str
    codes: int
    body_mb: float
    elapsed_s: float
    rss_before_mb: float
    peak_rss_mb: float  # the kernel's high-water mark (VmHWM) of the server process
    rss_after_mb: float
    message: str
    host: dict[str, Any] = field(default_factory=dict)


def memory(pid: int) -> dict[str, float]:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        return {
            line.split(":")[0]: int(line.split()[1]) / 1024
            for line in status
            if line.startswith(("VmRSS:", "VmHWM:"))
        }


def cli(database_url: str, *args: str) -> str:
    done = subprocess.run(
        [promopool_executable(), "--database-url", database_url, *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchFailure(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout


def run_engine(engine: str, database_url: str, codes: int, workdir: Path) -> UploadResult:
    created = cli(database_url, "accounts", "create", "shop")
    shop_id = next(line.split()[-1] for line in created.splitlines() if "shop_id" in line)
    secret = next(line.split()[-1] for line in created.splitlines() if line.startswith("API key"))
    pool_id = int(cli(database_url, "pools", "create", "-a", "shop", "bench").split()[-1])
    body = json.dumps(
        {
            "shop_id": shop_id,
            "shop_secret": secret,
            "id": pool_id,
            "codes": [f"M{i:09d}" for i in range(codes)],
        }
    ).encode()
    port = free_port()
    with (workdir / f"{engine}.log").open("wb") as out:
        server = subprocess.Popen(
            [promopool_executable(), "--database-url", database_url, "serve", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        time.sleep(1)
        before = memory(server.pid)["VmRSS"]
        started = time.perf_counter()
        response = httpx.post(
            f"{base}/promo_codes", content=body, headers={"content-type": "application/json"}, timeout=900
        )
        elapsed = time.perf_counter() - started
        after = memory(server.pid)
    finally:
        server.terminate()
        server.wait()
    expected = f"{codes} promo codes added, 0 non-unique skipped"
    if response.status_code != 200 or response.json().get("message") != expected:
        raise BenchFailure(f"{engine}: upload answered {response.status_code} {response.text}")
    return UploadResult(
        engine=engine,
        codes=codes,
        body_mb=round(len(body) / 1024 / 1024, 1),
        elapsed_s=round(elapsed, 1),
        rss_before_mb=round(before, 1),
        peak_rss_mb=round(after["VmHWM"], 1),
        rss_after_mb=round(after["VmRSS"], 1),
        message=response.json()["message"],
        host=host_info(),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--codes", type=int, default=1_000_000)
    parser.add_argument("--pg-url")
    args = parser.parse_args()
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    with tempfile.TemporaryDirectory(prefix="promopool-bench-") as tmp:
        for engine in engines:
            if engine == "sqlite":
                result = run_engine(engine, f"sqlite:///{tmp}/bench.db", args.codes, Path(tmp))
            else:
                url, schema = pg_schema_url(args.pg_url, "bench_pc")
                try:
                    result = run_engine(engine, url, args.codes, Path(tmp))
                finally:
                    asyncio.run(drop_schema(url, schema))
            log(
                f"{engine}: {result.codes:,} codes ({result.body_mb} MB body) in {result.elapsed_s}s;"
                f" server RSS {result.rss_before_mb} MB before, peak {result.peak_rss_mb} MB,"
                f" {result.rss_after_mb} MB after"
            )
            write_json("personaclick_upload_rss", engine, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
