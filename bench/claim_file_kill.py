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

    python bench/claim_file_kill.py --engine sqlite|postgresql [--codes 1000000] [--pg-url URL]

PostgreSQL: ``--pg-url``, else $PROMOPOOL_TEST_POSTGRES_URL, else postgresql://postgres@127.0.0.1:5432/test;
the run uses a schema of its own, dropped afterwards. Results are printed and written as JSON to
bench/results/claim_file_kill-<engine>-<UTC timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sqlite3
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from _common import (
    BenchFailure,
    cli,
    drop_schema,
    host_info,
    load_average,
    log,
    pg_schema_url,
    promopool_executable,
    without_schema,
    write_json,
)

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
    url: str, pool_id: int, count: int, output: Path, *, kill_at: int | None, how: str | None
) -> Run:
    """Run the claim command; with ``kill_at``, interrupt it (``how``) once the file has that many lines."""
    command = [
        promopool_executable(),
        "--database-url",
        url,
        "claim",
        str(pool_id),
        "--count",
        str(count),
        "-o",
        str(output),
        "--idempotency-key",
        KEY,
    ]
    before = lines_in(output)
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    at: int | None = None
    terminated: list[int] = []
    while child.poll() is None:
        if kill_at is not None and at is None and (lines := lines_in(output)) >= kill_at:
            at = lines
            if how == "kill -9 cli":
                child.send_signal(signal.SIGKILL)
            else:
                terminated = asyncio.run(terminate_backends(url, child.pid))
                log(f"terminated backends {terminated} of the CLI (pid {child.pid})")
        time.sleep(POLL_S)
    stderr = child.stderr.read().decode(errors="replace") if child.stderr else ""
    elapsed = time.perf_counter() - started
    if child.returncode not in (0, -signal.SIGKILL):
        log(f"claim exited {child.returncode}: {stderr.strip()[-500:]}")
    if at is None and child.returncode != 0:
        raise BenchFailure(f"the claim failed without being interrupted ({child.returncode}): {stderr}")
    return Run(
        elapsed_s=round(elapsed, 2),
        exit_code=child.returncode,
        lines_before=before,
        lines_after=lines_in(output),
        interrupted_by=how if at is not None else None,
        lines_at_interrupt=at,
        backends_terminated=terminated,
    )


HANDED_OUT = "SELECT value FROM codes WHERE pool_id = $1 AND state <> 'available'"
COUNTERS = "SELECT n_available, n_issued, n_redeemed FROM pools WHERE id = $1"


async def database_state(url: str, pool_id: int, other_id: int) -> tuple[set[str], int, dict[str, int]]:
    """The pool's handed-out codes, how many the other pool handed out, the pool's counters."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            values = {row[0] for row in conn.execute(HANDED_OUT.replace("$1", "?"), (pool_id,))}
            other = len(conn.execute(HANDED_OUT.replace("$1", "?"), (other_id,)).fetchall())
            counters = conn.execute(COUNTERS.replace("$1", "?"), (pool_id,)).fetchone()
        return values, other, dict(zip(("available", "issued", "redeemed"), counters, strict=True))
    schema = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&"))["schema"]
    conn = await asyncpg.connect(without_schema(url), server_settings={"search_path": schema})
    try:
        values = {row[0] for row in await conn.fetch(HANDED_OUT, pool_id)}
        other = len(await conn.fetch(HANDED_OUT, other_id))
        row = await conn.fetchrow(COUNTERS, pool_id)
    finally:
        await conn.close()
    return values, other, dict(zip(("available", "issued", "redeemed"), row, strict=True))


def run(args: argparse.Namespace, url: str, workdir: Path) -> KillResult:
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    load_before = load_average()
    cli(url, "accounts", "create", "default")
    other_id = int(cli(url, "pools", "create", "other").split()[-1])
    pool_id = int(cli(url, "pools", "create", "target").split()[-1])
    generate_started = time.perf_counter()
    cli(url, "generate", str(other_id), str(args.other_codes))
    cli(url, "generate", str(pool_id), str(args.codes + args.spare))
    generate_s = round(time.perf_counter() - generate_started, 2)
    log(f"generated {args.other_codes} + {args.codes + args.spare} codes in {generate_s} s")

    output = workdir / "claimed.txt"
    runs = [claim_run(url, pool_id, args.codes, output, kill_at=args.kill_at, how="kill -9 cli")]
    log(f"run 1: {runs[-1]}")
    if args.engine == "postgresql":
        backend_kill = claim_run(
            url, pool_id, args.codes, output, kill_at=args.backend_kill_at, how="pg_terminate_backend"
        )
        runs.append(backend_kill)
        log(f"run 2: {backend_kill}")
    if runs[-1].exit_code != 0 or runs[-1].lines_after < args.codes:
        runs.append(claim_run(url, pool_id, args.codes, output, kill_at=None, how=None))
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
    return KillResult(
        engine=args.engine,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument("--codes", type=int, default=1_000_000, help="codes to claim into the file")
    parser.add_argument("--spare", type=int, default=10_000, help="codes the pool holds beyond --codes")
    parser.add_argument("--other-codes", type=int, default=100_000, help="codes of the other pool")
    parser.add_argument("--kill-at", type=int, help="kill -9 the CLI at this many lines (default: 30%%)")
    parser.add_argument("--backend-kill-at", type=int, help="PostgreSQL: terminate its backend here (60%%)")
    parser.add_argument("--pg-url", help="PostgreSQL server (default: $PROMOPOOL_TEST_POSTGRES_URL or local)")
    args = parser.parse_args()
    args.kill_at = args.kill_at or int(args.codes * 0.3)
    args.backend_kill_at = args.backend_kill_at or int(args.codes * 0.6)
    with tempfile.TemporaryDirectory(prefix="claim-file-kill-") as tmp:
        workdir = Path(tmp)
        schema = None
        if args.engine == "sqlite":
            url = f"sqlite:///{workdir}/promopool.db"
        else:
            url, schema = pg_schema_url(args.pg_url, "claim_kill")
        try:
            result = run(args, url, workdir)
        finally:
            if schema is not None:
                asyncio.run(drop_schema(url, schema))
    for key, value in asdict(result).items():
        print(f"{key}: {value}")
    path = write_json("claim_file_kill", args.engine, result)
    log(f"written {path}")
    if not result.ok:
        raise BenchFailure("the checks failed: see the result above")


if __name__ == "__main__":
    main()
