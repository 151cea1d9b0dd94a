"""Bulk claims under contention, issue 18's acceptance run: many concurrent claims of N codes on one pool.

For each engine: a fresh database holding another pool first (``--other-codes`` codes, which must stay
untouched), a real ``promopool serve`` with ``--workers`` workers, a pool of ``--codes`` random codes, and
``--claims`` concurrent ``POST /v1/pools/{id}/claim {"count": --count}``. Checked: exactly
``codes // count`` claims get their codes (600,000 / 5,000: 120), the others 409 ``pool_exhausted`` with
nothing taken; every code handed out once (a code seen twice fails the run at once); every code handed out
stored as issued and nothing else issued; the pool's counters equal its rows by state. Then the ``partial``
variant on a pool of ``--codes`` + ``--count // 2`` codes: as many whole claims, the remainder to exactly one
claim, the rest 409.

Each claim carries its own Idempotency-Key, and a 503 ``storage_busy`` (a lock wait past
PROMOPOOL_LOCK_TIMEOUT_SECONDS: nothing was done) is retried with the same key after its Retry-After, as
the API documents; the retries are counted in the result. Any other answer fails the run.

    python bench/bulk_claims.py [--engine sqlite|postgresql|both] [--codes 600000] [--claims 200]
                                [--count 5000] [--other-codes 100000] [--workers 2] [--pg-url URL]

Quick correctness check with tiny sizes: ``--codes 6000 --claims 20 --count 500 --other-codes 1000``.
PostgreSQL: ``--pg-url``, else $PROMOPOOL_TEST_POSTGRES_URL, else postgresql://postgres@127.0.0.1:5432/test;
the run uses a schema of its own and drops it afterwards. Results are printed and written as JSON to
bench/results/bulk_claims-<engine>-<UTC timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _harness
import httpx
from _claims import Ledger, verify_pool
from _common import BenchFailure, host_info, load_average, log
from _harness import Context, at_least, serve
from _server import Server, create_account

REQUEST_TIMEOUT_S = 900.0  # a claim may queue behind all the others on the pool's row
MAX_BUSY_RETRIES = 100


@dataclass(slots=True)
class Answer:
    status: int
    codes: list[str]
    error: str | None
    seconds: float  # from the first attempt to the final answer
    busy_retries: int


@dataclass(slots=True)
class Phase:
    label: str
    pool_codes: int
    claims: int
    count: int
    partial: bool
    seconds: float
    whole: int  # answers with `count` codes
    remainders: list[int]  # sizes of the answers with fewer (partial only)
    refused: int  # 409 pool_exhausted
    busy_retries: int  # 503 storage_busy answers retried
    codes_handed_out: int
    codes_per_s: float
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    final_counts: dict[str, int]
    load_before: float
    load_after: float


@dataclass(slots=True)
class EngineResult:
    engine: str
    workers: int
    codes: int
    other_codes: int
    claims: int
    count: int
    import_s: float
    phases: list[Phase]
    other_pool_counts: dict[str, int]
    started_at: str
    host: dict[str, Any] = field(default_factory=host_info)


def write_random_codes(path: Path, count: int, prefix: str) -> None:
    """``count`` distinct random codes (``prefix`` + 12 hex digits), one per line."""
    codes: set[str] = set()
    while len(codes) < count:
        codes.update(f"{prefix}{secrets.token_hex(6).upper()}" for _ in range(count - len(codes)))
    path.write_text("".join(f"{code}\n" for code in codes), encoding="ascii")


async def claim(
    client: httpx.AsyncClient, server: Server, pool_id: int, count: int, partial: bool, key: str
) -> Answer:
    body: dict[str, Any] = {"count": count, **({"partial": True} if partial else {})}
    headers = {"Authorization": f"Bearer {server.api_key}", "Idempotency-Key": key}
    started = time.perf_counter()
    for retries in range(MAX_BUSY_RETRIES + 1):
        response = await client.post(f"/v1/pools/{pool_id}/claim", json=body, headers=headers)
        payload = response.json()
        if response.status_code == 503 and payload["error"]["code"] == "storage_busy":
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
            continue
        seconds = time.perf_counter() - started
        if response.status_code == 200:
            return Answer(200, payload["codes"], None, seconds, retries)
        return Answer(response.status_code, [], payload["error"]["code"], seconds, retries)
    raise BenchFailure(f"claim {key}: still 503 storage_busy after {MAX_BUSY_RETRIES} retries")


async def burst(server: Server, pool_id: int, claims: int, count: int, partial: bool) -> list[Answer]:
    """``claims`` bulk claims sent at once, each on its own connection."""
    limits = httpx.Limits(max_connections=claims, max_keepalive_connections=claims)
    async with httpx.AsyncClient(
        base_url=server.base_url, limits=limits, timeout=REQUEST_TIMEOUT_S
    ) as client:
        run = secrets.token_hex(4)
        return await asyncio.gather(
            *[claim(client, server, pool_id, count, partial, f"bulk-{run}-{i}") for i in range(claims)]
        )


def expected(pool_codes: int, claims: int, count: int, partial: bool) -> tuple[int, list[int], int]:
    """(whole claims, remainder sizes, refused claims) the answers must show."""
    whole = min(claims, pool_codes // count)
    left = pool_codes - whole * count
    remainders = [left] if partial and left and whole < claims else []
    return whole, remainders, claims - whole - len(remainders)


def run_phase(
    server: Server, url: str, label: str, pool_codes: int, args: argparse.Namespace, file: Path, partial: bool
) -> Phase:
    pool_id = server.create_pool(label)
    server.import_file(pool_id, file, pool_codes)
    ledger = Ledger(pool_id)
    load_before = load_average()
    started = time.perf_counter()
    answers = asyncio.run(burst(server, pool_id, args.claims, args.count, partial))
    seconds = time.perf_counter() - started
    for answer in answers:
        ledger.record(answer.codes, f"{label} claims")
    ok = [a for a in answers if a.status == 200]
    refused = [a for a in answers if (a.status, a.error) == (409, "pool_exhausted")]
    others = [a for a in answers if a.status != 200 and (a.status, a.error) != (409, "pool_exhausted")]
    if others:
        raise BenchFailure(
            f"{label}: {len(others)} answer(s) neither 200 nor 409 pool_exhausted: {others[:3]}"
        )
    whole = sum(1 for a in ok if len(a.codes) == args.count)
    remainders = sorted(len(a.codes) for a in ok if len(a.codes) != args.count)
    want = expected(pool_codes, args.claims, args.count, partial)
    if (whole, remainders, len(refused)) != want:
        raise BenchFailure(
            f"{label}: {whole} whole claims, remainders {remainders}, {len(refused)} refused;"
            f" expected {want[0]}, {want[1]}, {want[2]}"
        )
    # The exact end-of-pool check: counters = rows by state, every code received stored as issued, and
    # issued = received (a refused claim took nothing).
    counts = verify_pool(server, url, ledger)
    handed_out = len(ledger.seen)
    if counts["available"] != pool_codes - handed_out:
        raise BenchFailure(f"{label}: {counts} after handing out {handed_out} of {pool_codes} codes")
    latencies = sorted(a.seconds for a in answers)
    phase = Phase(
        label=label,
        pool_codes=pool_codes,
        claims=args.claims,
        count=args.count,
        partial=partial,
        seconds=round(seconds, 3),
        whole=whole,
        remainders=remainders,
        refused=len(refused),
        busy_retries=sum(a.busy_retries for a in answers),
        codes_handed_out=handed_out,
        codes_per_s=round(handed_out / seconds, 1),
        latency_p50_ms=round(statistics.median(latencies) * 1000, 1),
        latency_p99_ms=round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 1),
        latency_max_ms=round(latencies[-1] * 1000, 1),
        final_counts=counts,
        load_before=load_before,
        load_after=load_average(),
    )
    log(
        f"  {label}: {whole} whole, remainders {remainders}, {len(refused)} refused in {seconds:.1f}s"
        f" ({phase.codes_per_s:,.0f} codes/s, p50 {phase.latency_p50_ms} ms, max {phase.latency_max_ms} ms,"
        f" {phase.busy_retries} busy retries); every code once, counters = rows"
    )
    return phase


def run_engine(ctx: Context, engine: str) -> EngineResult:
    with ctx.database(engine) as url:
        return measure_engine(ctx, engine, url)


def measure_engine(ctx: Context, engine: str, url: str) -> EngineResult:
    args, workdir = ctx.args, ctx.workdir
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    api_key = create_account(ctx.processes, url, "bench").api_key
    files = {name: workdir / f"{engine}-{name}.txt" for name in ("other", "whole", "partial")}
    sizes = {"other": args.other_codes, "whole": args.codes, "partial": args.codes + args.count // 2}
    for name, path in files.items():
        write_random_codes(path, sizes[name], name[0].upper())
    with serve(ctx.processes, url, api_key=api_key, workers=args.workers, name=f"serve-{engine}") as server:
        t0 = time.perf_counter()
        other = server.create_pool("other")  # the database already holds another pool
        server.import_file(other, files["other"], sizes["other"])
        import_s = time.perf_counter() - t0
        log(f"{engine}: {args.workers} workers; another pool of {sizes['other']:,} codes in {import_s:.1f}s")
        phases = [
            run_phase(server, url, "whole", sizes["whole"], args, files["whole"], partial=False),
            run_phase(server, url, "partial", sizes["partial"], args, files["partial"], partial=True),
        ]
        other_counts = server.counts(other)
        if (other_counts["available"], other_counts["issued"]) != (sizes["other"], 0):
            raise BenchFailure(f"the other pool changed: {other_counts}")
    return EngineResult(
        engine=engine,
        workers=args.workers,
        codes=args.codes,
        other_codes=args.other_codes,
        claims=args.claims,
        count=args.count,
        import_s=round(import_s, 3),
        phases=phases,
        other_pool_counts=other_counts,
        started_at=started_at,
    )


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--claims", type=at_least(1), default=200)
    parser.add_argument("--count", type=at_least(1), default=5_000)
    parser.add_argument("--other-codes", type=at_least(1), default=100_000)
    parser.add_argument("--workers", type=at_least(1), default=2)


def check(args: argparse.Namespace) -> str | None:
    if args.count > 10_000:
        return "--count must be at most 10,000 (one bulk claim's limit)"
    return None


def main() -> int:
    return _harness.main("bulk_claims", __doc__, run_engine, codes=600_000, arguments=arguments, check=check)


if __name__ == "__main__":
    raise SystemExit(main())
