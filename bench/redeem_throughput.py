"""Redeem throughput: distinct single-use codes of one pool, one multi-use code, and validate (a read).

For each engine: a fresh database, one pool of ``--codes`` single-use codes and one pool holding a code with
``--codes`` uses, then ``--concurrency`` asyncio tasks calling ``service.redeem`` / ``service.validate_code``
(every redeem with a profile, so the per-profile counter is exercised). Afterwards the counts are checked
against the redemptions: any difference fails the run.

    python bench/redeem_throughput.py [--engine sqlite|postgresql|both] [--codes 10000] [--concurrency 64]
                                      [--pg-url URL]

Results are printed and written as JSON to bench/results/redeem_throughput-<engine>-<UTC timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import _harness
from _common import BenchFailure, host_info, log
from _harness import Context

from promopool import service
from promopool.domain import Account, PoolSettings
from promopool.storage import Store, open_store


@dataclass(slots=True)
class Phase:
    calls: int
    seconds: float
    per_s: float
    latency_p50_ms: float
    latency_p99_ms: float


@dataclass(slots=True)
class Result:
    engine: str
    codes: int
    concurrency: int
    phases: dict[str, Phase] = field(default_factory=dict)
    host: dict[str, Any] = field(default_factory=host_info)


async def measure(calls: list[Callable[[], Awaitable[Any]]], concurrency: int) -> Phase:
    queue = list(reversed(calls))
    latencies: list[float] = []

    async def worker() -> None:
        while queue:
            call = queue.pop()
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    seconds = time.perf_counter() - started
    latencies.sort()
    return Phase(
        calls=len(latencies),
        seconds=round(seconds, 3),
        per_s=round(len(latencies) / seconds),
        latency_p50_ms=round(statistics.median(latencies) * 1000, 2),
        latency_p99_ms=round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
    )


def run_engine(ctx: Context, engine: str) -> Result:
    with ctx.database(engine) as url:
        return asyncio.run(measure_engine(engine, url, ctx.args))


async def measure_engine(engine: str, url: str, args: argparse.Namespace) -> Result:
    store: Store = open_store(url, pool_size=20)
    await store.connect()
    try:
        await store.migrate()
        account: Account = (await service.create_account(store, name="bench")).account
        single = await service.create_pool(store, account=account, name="single", settings=PoolSettings())
        values = [f"S{i:07d}" for i in range(args.codes)]
        await service.import_codes(store, account=account, pool_id=single.id, values=values)
        multi = await service.create_pool(
            store, account=account, name="multi", settings=PoolSettings(max_uses=args.codes)
        )
        await service.import_codes(store, account=account, pool_id=multi.id, values=["MULTI"])
        result = Result(engine=engine, codes=args.codes, concurrency=args.concurrency)

        def redeem(code: str, pool_id: int, n: int) -> Callable[[], Awaitable[Any]]:
            return lambda: service.redeem(store, account=account, code=code, pool_id=pool_id, profile=f"p{n}")

        def validate(code: str) -> Callable[[], Awaitable[Any]]:
            return lambda: service.validate_code(store, account=account, code=code)

        phases = {
            "validate": [validate(v) for v in values],
            "redeem_distinct_codes": [redeem(v, single.id, i) for i, v in enumerate(values)],
            "redeem_one_multi_use_code": [redeem("MULTI", multi.id, i) for i in range(args.codes)],
        }
        for name, calls in phases.items():
            result.phases[name] = await measure(calls, args.concurrency)
            log(f"{engine} {name}: {result.phases[name]}")
        pool = await service.get_pool(store, account=account, pool_id=single.id)
        code = await service.get_code(store, account=account, pool_id=multi.id, value="MULTI")
        if (pool.counts.redeemed, pool.counts.available, code.usage_count) != (args.codes, 0, args.codes):
            raise BenchFailure(f"counts disagree: {pool.counts}, MULTI used {code.usage_count} times")
        return result
    finally:
        await store.close()


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concurrency", type=_harness.at_least(1), default=64)


def main() -> int:
    return _harness.main("redeem_throughput", __doc__, run_engine, codes=10_000, arguments=arguments)


if __name__ == "__main__":
    raise SystemExit(main())
