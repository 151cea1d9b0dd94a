"""Time and server memory of a PersonaClick upload of many codes in one JSON body (``POST /promo_codes``).

Creates an account and a pool with the CLI, starts ``promopool serve`` (one worker), posts one body with
``--codes`` codes. The upload must add every code; the peak RSS of the server's worker (the kernel's
high-water mark, VmHWM) is reported beside its RSS before the upload and the body's size.

    python bench/personaclick_upload_rss.py [--engine sqlite|postgresql|both] [--codes 1000000] [--pg-url URL]

Results are printed and written as JSON to bench/results/personaclick_upload_rss-<engine>-<timestamp>.json.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import _harness
import httpx
from _common import BenchFailure, current_rss_mb, host_info, log, peak_rss_mb
from _harness import Context, serve
from _server import create_account


@dataclass(slots=True)
class UploadResult:
    engine: str
    codes: int
    body_mb: float
    elapsed_s: float
    rss_before_mb: float
    peak_rss_mb: float  # the kernel's high-water mark (VmHWM) of the server's worker
    rss_after_mb: float
    message: str
    host: dict[str, Any] = field(default_factory=host_info)


def run_engine(ctx: Context, engine: str) -> UploadResult:
    with ctx.database(engine) as database_url:
        return upload(ctx, engine, database_url, ctx.args.codes)


def upload(ctx: Context, engine: str, database_url: str, codes: int) -> UploadResult:
    account = create_account(ctx.processes, database_url, "shop")
    pool_id = int(ctx.cli(database_url, "pools", "create", "-a", "shop", "bench").split()[-1])
    body = json.dumps(
        {
            "shop_id": account.shop_id,
            "shop_secret": account.api_key,
            "id": pool_id,
            "codes": [f"M{i:09d}" for i in range(codes)],
        }
    ).encode()
    with serve(ctx.processes, database_url, api_key=account.api_key) as server:
        pid = server.worker_pid()
        time.sleep(1)
        before = current_rss_mb(pid) or 0.0
        started = time.perf_counter()
        response = httpx.post(
            f"{server.base_url}/promo_codes",
            content=body,
            headers={"content-type": "application/json"},
            timeout=900,
        )
        elapsed = time.perf_counter() - started
        after, peak = current_rss_mb(pid) or 0.0, peak_rss_mb(pid) or 0.0
    expected = f"{codes} promo codes added, 0 non-unique skipped"
    if response.status_code != 200 or response.json().get("message") != expected:
        raise BenchFailure(f"{engine}: upload answered {response.status_code} {response.text}")
    return UploadResult(
        engine=engine,
        codes=codes,
        body_mb=round(len(body) / 1024 / 1024, 1),
        elapsed_s=round(elapsed, 1),
        rss_before_mb=round(before, 1),
        peak_rss_mb=round(peak, 1),
        rss_after_mb=round(after, 1),
        message=response.json()["message"],
    )


def print_table(results: list[UploadResult]) -> None:
    for r in results:
        log(
            f"{r.engine}: {r.codes:,} codes ({r.body_mb} MB body) in {r.elapsed_s}s; server worker RSS"
            f" {r.rss_before_mb} MB before, peak {r.peak_rss_mb} MB, {r.rss_after_mb} MB after"
        )


def main() -> int:
    return _harness.main("personaclick_upload_rss", __doc__, run_engine, codes=1_000_000, table=print_table)


if __name__ == "__main__":
    raise SystemExit(main())
