"""Speed and peak memory of ``promopool copy`` from SQLite to PostgreSQL, and claims on the copy.

Builds a SQLite database with the real CLI (``accounts create default``, ``pools create``, ``import`` of
``--codes`` random 12-character codes), then through the store: ``--issued`` codes claimed in batches,
``--redeemed`` of them redeemed (every tenth rolled back) by ``--profiles`` distinct profiles, and a profile
database with ``--attached`` codes attached to profiles. Runs ``copy --to`` a fresh PostgreSQL schema as a
subprocess (rows/s, seconds, the child's peak RSS from wait4), requires the verification to report every
count and checksum equal, then makes ``--claims`` claims on the copy: none may be a code issued before the
copy, and the first must be the one the source would have handed out next.

    python bench/copy_database.py [--codes 1000000] [--claims 10000] [--pg-url URL]

PostgreSQL: ``--pg-url``, else $PROMOPOOL_TEST_POSTGRES_URL, else postgresql://postgres@127.0.0.1:5432/test;
the copy goes to a schema of its own, dropped afterwards. Results are printed and written as JSON to
bench/results/copy_database-<UTC timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import _harness
from _common import BenchFailure, host_info, load_average, log, promopool_executable, sqlite_path
from _harness import Context, measured_run

from promopool import service
from promopool.domain.profiles import identity
from promopool.storage import Store, open_store

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CLAIM_BATCH = 1_000


@dataclass(slots=True)
class CopyResult:
    codes: int
    rows: int
    tables: dict[str, int]
    elapsed_s: float
    rows_per_s: float
    # From wait4(): the kernel's high-water mark for the copy process alone.
    peak_rss_mb: float
    claims_on_copy: int
    claims_on_copy_s: float
    previously_issued_among_them: int
    first_claim_matches_source: bool
    load_average_before: float
    started_at: str
    host: dict[str, Any] = field(default_factory=host_info)


def write_random_codes(path: Path, count: int) -> None:
    """``count`` distinct random 12-character codes, one per line."""
    seen: set[str] = set()
    with path.open("w", encoding="ascii", newline="\n") as out:
        while len(seen) < count:
            code = "".join(secrets.choice(ALPHABET) for _ in range(12))
            if code not in seen:
                seen.add(code)
                out.write(code + "\n")


async def mix_states(url: str, pool_id: int, issued: int, redeemed: int, attached: int) -> None:
    """Issued, redeemed (some rolled back) and attached codes, with profiles, through the store."""
    store = open_store(url)
    await store.connect()
    try:
        account = await store.account_by_name("default")
        assert account is not None
        values: list[str] = []
        for start in range(0, issued, CLAIM_BATCH):
            batch = await store.claim_batch(account.id, pool_id, [None] * min(CLAIM_BATCH, issued - start))
            values += [result.code.value for result in batch if not isinstance(result, Exception)]
        for i, value in enumerate(values[:redeemed]):
            done = await service.redeem(
                store,
                account=account,
                code=value,
                pool_id=pool_id,
                profile=f"customer-{i}",
                order_ref=f"order-{i}",
                amount=Decimal("9.90"),
                metadata={"channel": "web", "n": i},
            )
            if i % 10 == 0:
                await service.rollback_redemption(store, account=account, redemption_id=done.redemption.id)
        crm = await service.create_profile_database(store, account=account, name="crm")
        for i in range(attached):
            who = identity(matching="email", email=f"person{i}@example.com")
            await service.attach_code(
                store, account=account, pool_id=pool_id, database_id=crm.id, identity=who, code=None
            )
    finally:
        await store.close()


def handed_out(path: Path, pool_id: int) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT value FROM codes WHERE pool_id = ? AND state <> 'available'", (pool_id,))
        return {row[0] for row in rows}


def run_copy(ctx: Context, source_url: str, target_url: str) -> _harness.MeasuredRun:
    """``promopool copy``: its time, peak RSS and output."""
    command = [promopool_executable(), "--database-url", source_url, "copy", "--to", target_url]
    return measured_run(ctx, "copy", command)


async def claims_on(url: str, pool_id: int, count: int) -> tuple[list[str], float]:
    store: Store = open_store(url)
    await store.connect()
    try:
        account = await store.account_by_name("default")
        assert account is not None
        started = time.perf_counter()
        values = [
            (await service.claim(store, account=account, pool_id=pool_id)).code.value for _ in range(count)
        ]
        return values, time.perf_counter() - started
    finally:
        await store.close()


def run(ctx: Context) -> CopyResult:
    codes, claims = ctx.args.codes, ctx.args.claims
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    with ctx.database("sqlite") as source_url, ctx.database("postgresql") as target_url:
        path = ctx.workdir / "codes.txt"
        write_random_codes(path, codes)
        ctx.cli(source_url, "accounts", "create", "default")
        pool_id = int(ctx.cli(source_url, "pools", "create", "bench", "--max-uses", "2").split()[-1])
        t0 = time.perf_counter()
        ctx.cli(source_url, "import", str(pool_id), str(path))
        log(f"imported {codes:,} codes in {time.perf_counter() - t0:.1f}s")
        issued, redeemed, attached = codes // 10, codes // 100, codes // 1000
        asyncio.run(mix_states(source_url, pool_id, issued, redeemed, attached))
        before = handed_out(sqlite_path(source_url), pool_id)
        log(f"source: {len(before):,} codes handed out, {redeemed:,} redeemed, {attached:,} attached")
        load = load_average()
        copied = run_copy(ctx, source_url, target_url)
        elapsed, peak_mb, output = copied.seconds, copied.peak_rss_mb, copied.stdout
        if "counts and checksums equal" not in output:
            raise BenchFailure(f"the copy's verification did not pass:\n{output}")
        # The verification table's rows: "│ codes │ 1000000 │ 1000000 │ equal │"
        cells = [line.split("│")[1:-1] for line in output.splitlines() if line.count("│") == 5]
        tables = {name.strip(): int(rows) for name, rows, *_ in cells}
        rows = sum(tables.values())
        rate = rows / elapsed
        log(f"copy: {rows:,} rows in {elapsed:.1f}s ({rate:,.0f} rows/s), peak RSS {peak_mb:.1f} MB")
        on_copy, claim_s = asyncio.run(claims_on(target_url, pool_id, claims))
        on_source, _ = asyncio.run(claims_on(source_url, pool_id, 1))
    again = len(set(on_copy) & before)
    log(f"{claims:,} claims on the copy in {claim_s:.1f}s; previously issued among them: {again}")
    if again or len(set(on_copy)) != len(on_copy):
        raise BenchFailure(f"{again} codes issued before the copy were handed out again")
    if on_copy[0] != on_source[0]:
        raise BenchFailure(f"the copy's next claim {on_copy[0]} is not the source's {on_source[0]}")
    return CopyResult(
        codes=codes,
        rows=rows,
        tables=tables,
        elapsed_s=round(elapsed, 2),
        rows_per_s=round(rate, 1),
        peak_rss_mb=round(peak_mb, 1),
        claims_on_copy=claims,
        claims_on_copy_s=round(claim_s, 2),
        previously_issued_among_them=again,
        first_claim_matches_source=True,
        load_average_before=load,
        started_at=started_at,
    )


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--claims", type=int, default=10_000)


def check(args: argparse.Namespace) -> str | None:
    if args.codes < 10_000 or args.claims < 1:
        return "--codes must be at least 10000 and --claims at least 1"
    return None


def main() -> int:
    return _harness.main_once(
        "copy_database", __doc__, run, codes=1_000_000, arguments=arguments, check=check
    )


if __name__ == "__main__":
    raise SystemExit(main())
