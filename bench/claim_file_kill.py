"""Issue 18's acceptance check: a resumable ``claim --count N -o FILE`` killed with SIGKILL, then re-run.

Builds a database with the real CLI (``accounts create default``; a pool ``other`` of ``--other-codes``
generated codes, so that the claims run in a database that holds another pool; the pool ``target`` of
``--codes`` + ``--spare`` generated codes), then runs ``promopool claim TARGET --count --codes -o FILE
--idempotency-key K`` and kill -9s it once the file has ``--kill-at`` lines. PostgreSQL also: the re-run's
database backend is terminated (``pg_terminate_backend``: a SIGTERM to exactly the CLI's backends; a kill -9
of a backend would make the shared server restart every session) once the file has ``--backend-kill-at``
lines. Then the same command again, to completion. Checks: the file has exactly ``--codes`` lines, all
distinct; the codes the database records as handed out from the pool are exactly the file's; the other pool
handed out nothing; the pool's counters agree.

    python bench/claim_file_kill.py [--engine sqlite|postgresql|both] [--codes 1000000] [--spare 10000]
                                    [--other-codes 100000] [--kill-at N] [--backend-kill-at N] [--pg-url URL]

PostgreSQL: ``--pg-url``, else $PROMOPOOL_TEST_POSTGRES_URL, else postgresql://postgres@127.0.0.1:5432/test;
the run uses a schema of its own, dropped afterwards. Results are printed and written as JSON to
bench/results/claim_file_kill-<engine>-<UTC timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _harness
import asyncpg
from _common import (
    BenchFailure,
    fetch_rows,
    host_info,
    load_average,
    log,
    promopool_executable,
    without_schema,
)
from _harness import Context, at_least

KEY = "acceptance-run-1"
POLL_S = 0.02


@dataclass(slots=True)
class Run:
    """One invocation of the claim command."""

    elapsed_s: float
    exit_code: int
    lines_before: int
    lines_after: int
    interrupted_by: str | None  # "kill -9 cli", "pg_terminate_backend", None: ran to its end
    lines_at_interrupt: int | None = None
    backends_terminated: list[int] = field(default_factory=list)


@dataclass(slots=True)
class KillResult:
    engine: str
    codes: int
    pool_codes: int
    other_pool_codes: int
    generate_s: float
    runs: list[Run]
    total_claim_s: float
    file_lines: int
    file_distinct: int
    db_handed_out: int
    db_equals_file: bool
    other_pool_handed_out: int
    pool_counters: dict[str, int]
    ok: bool
    load_average_before: float
    load_average_after: float
    started_at: str
    host: dict[str, Any] = field(default_factory=dict)


def lines_in(path: Path) -> int:
    """Whole lines in the file (the claim appends whole chunks; a cut-off tail is not a line)."""
    if not path.exists():
        return 0
    with path.open("rb") as file:
        return sum(block.count(b"\n") for block in iter(lambda: file.read(1 << 20), b""))


def tcp_client_ports(pid: int) -> set[int]:
    """The local ports of the process's TCP sockets: how its backends are told apart in pg_stat_activity."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


async def terminate_backends(url: str, pid: int) -> list[int]:
    conn = await asyncpg.connect(without_schema(url))
    try:
        rows = await conn.fetch(
            "SELECT pid, pg_terminate_backend(pid) AS done FROM pg_stat_activity"
            " WHERE client_port = ANY($1::int[]) AND pid <> pg_backend_pid()",
            sorted(tcp_client_ports(pid)),
        )
    finally:
        await conn.close()
    return [row["pid"] for row in rows if row["done"]]


def claim_run(
    ctx: Context, url: str, pool_id: int, output: Path, *, kill_at: int | None, how: str | None
) -> Run:
    """Run the claim command; with ``kill_at``, interrupt it (``how``) once the file has that many lines."""
    command = [
        promopool_executable(),
        "--database-url",
        url,
        "claim",
        str(pool_id),
        "--count",
        str(ctx.args.codes),
        "-o",
        str(output),
        "--idempotency-key",
        KEY,
    ]
    before = lines_in(output)
    started = time.perf_counter()
    child = ctx.processes.start("claim", command)
    at: int | None = None
    terminated: list[int] = []
    while child.process.poll() is None:
        if kill_at is not None and at is None and (lines := lines_in(output)) >= kill_at:
            at = lines
            if how == "kill -9 cli":
                child.process.send_signal(signal.SIGKILL)
            else:
                terminated = asyncio.run(terminate_backends(url, child.pid))
                log(f"terminated backends {terminated} of the CLI (pid {child.pid})")
        time.sleep(POLL_S)
    elapsed = time.perf_counter() - started
    exit_code = child.process.returncode
    ctx.processes.stop(child)  # ended already; whatever it left in its process group goes too
    stderr = child.output()
    if exit_code not in (0, -signal.SIGKILL):
        log(f"claim exited {exit_code}: {stderr.strip()[-500:]}")
    if at is None and exit_code != 0:
        raise BenchFailure(f"the claim failed without being interrupted ({exit_code}): {stderr}")
    return Run(
        elapsed_s=round(elapsed, 2),
        exit_code=exit_code,
        lines_before=before,
        lines_after=lines_in(output),
        interrupted_by=how if at is not None else None,
        lines_at_interrupt=at,
        backends_terminated=terminated,
    )


HANDED_OUT = "SELECT value FROM codes WHERE pool_id = ? AND state <> 'available'"
COUNTERS = "SELECT n_available, n_issued, n_redeemed FROM pools WHERE id = ?"


async def database_state(url: str, pool_id: int, other_id: int) -> tuple[set[str], int, dict[str, int]]:
    """The pool's handed-out codes, how many the other pool handed out, the pool's counters."""
    values = {row[0] for row in await fetch_rows(url, HANDED_OUT, pool_id)}
    other = len(await fetch_rows(url, HANDED_OUT, other_id))
    (counters,) = await fetch_rows(url, COUNTERS, pool_id)
    return values, other, dict(zip(("available", "issued", "redeemed"), counters, strict=True))


def run_engine(ctx: Context, engine: str) -> KillResult:
    with ctx.database(engine) as url:
        return measure_engine(ctx, engine, url)


def measure_engine(ctx: Context, engine: str, url: str) -> KillResult:
    args = ctx.args
    kill_at = args.kill_at or int(args.codes * 0.3)
    backend_kill_at = args.backend_kill_at or int(args.codes * 0.6)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    load_before = load_average()
    ctx.cli(url, "accounts", "create", "default")
    other_id = int(ctx.cli(url, "pools", "create", "other").split()[-1])
    pool_id = int(ctx.cli(url, "pools", "create", "target").split()[-1])
    generate_started = time.perf_counter()
    ctx.cli(url, "generate", str(other_id), str(args.other_codes))
    ctx.cli(url, "generate", str(pool_id), str(args.codes + args.spare))
    generate_s = round(time.perf_counter() - generate_started, 2)
    log(f"generated {args.other_codes} + {args.codes + args.spare} codes in {generate_s} s")

    output = ctx.workdir / "claimed.txt"
    runs = [claim_run(ctx, url, pool_id, output, kill_at=kill_at, how="kill -9 cli")]
    log(f"run 1: {runs[-1]}")
    if engine == "postgresql":
        backend_kill = claim_run(
            ctx, url, pool_id, output, kill_at=backend_kill_at, how="pg_terminate_backend"
        )
        runs.append(backend_kill)
        log(f"run 2: {backend_kill}")
    if runs[-1].exit_code != 0 or runs[-1].lines_after < args.codes:
        runs.append(claim_run(ctx, url, pool_id, output, kill_at=None, how=None))
        log(f"run {len(runs)}: {runs[-1]}")

    with output.open(encoding="utf-8") as file:
        lines = file.read().splitlines()
    in_file = set(lines)
    handed_out, other, counters = asyncio.run(database_state(url, pool_id, other_id))
    ok = (
        len(lines) == args.codes
        and len(in_file) == args.codes
        and handed_out == in_file
        and other == 0
        and counters["issued"] == args.codes
        and counters["available"] == args.spare
    )
    result = KillResult(
        engine=engine,
        codes=args.codes,
        pool_codes=args.codes + args.spare,
        other_pool_codes=args.other_codes,
        generate_s=generate_s,
        runs=runs,
        total_claim_s=round(sum(r.elapsed_s for r in runs), 2),
        file_lines=len(lines),
        file_distinct=len(in_file),
        db_handed_out=len(handed_out),
        db_equals_file=handed_out == in_file,
        other_pool_handed_out=other,
        pool_counters=counters,
        ok=ok,
        load_average_before=load_before,
        load_average_after=load_average(),
        started_at=started_at,
        host=host_info(),
    )

    if not result.ok:
        raise BenchFailure(f"the checks failed: {asdict(result)}")
    return result


def print_result(results: list[KillResult]) -> None:
    for result in results:
        print()
        for key, value in asdict(result).items():
            print(f"{key}: {value}")


def arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--spare", type=at_least(0), default=10_000, help="codes the pool holds beyond --codes")
    add("--other-codes", type=at_least(1), default=100_000, help="codes of the other pool")
    add("--kill-at", type=at_least(1), help="kill -9 the CLI at this many lines (default: 30%%)")
    add("--backend-kill-at", type=at_least(1), help="PostgreSQL: terminate its backend here (60%%)")


def main() -> int:
    return _harness.main(
        "claim_file_kill", __doc__, run_engine, codes=1_000_000, arguments=arguments, table=print_result
    )


if __name__ == "__main__":
    raise SystemExit(main())
