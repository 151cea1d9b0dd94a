"""What people would otherwise do, measured on the same machine in the same run as promopool.

- PostgreSQL: the naive claim (``SKIP LOCKED``, one claim per transaction) with pgbench, and a raw binary
  COPY, both into promopool's own ``codes`` table in a scratch schema migrated by promopool itself (so "the
  same shape" is the same DDL: columns, indexes, the foreign key).
- SQLite: an in-process sqlite3 loop of one claim per transaction, and a raw ``executemany``, on a fresh
  file with promopool's schema, in WAL mode with synchronous=FULL like promopool.
- Redis: ``LPOP`` of a list, the non-durable reference, when a Redis answers.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
from _common import BenchFailure, pg_connect, schema_of, without_schema
from _procs import Processes, ensure_tool

from promopool.storage import open_store

# The claim a developer writes first. No pool filter: the table holds one pool, as in promopool's run.
PG_NAIVE_CLAIM = (
    "UPDATE codes SET state = 'issued', issued_at = now()"
    " WHERE id = (SELECT id FROM codes WHERE state = 'available' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)"
    " RETURNING value;"
)
# SQLite has no row locks (BEGIN IMMEDIATE serializes writers), hence no SKIP LOCKED.
SQLITE_NAIVE_CLAIM = (
    "UPDATE codes SET state = 'issued', issued_at = ?"
    " WHERE id = (SELECT id FROM codes WHERE state = 'available' ORDER BY id LIMIT 1)"
    " RETURNING value"
)
PGBENCH_TPS = re.compile(r"^tps = ([\d.]+) \(without initial connection time\)", re.MULTILINE)
PGBENCH_DONE = re.compile(r"^number of transactions actually processed: (\d+)", re.MULTILINE)
PGBENCH_FAILED = re.compile(r"^number of failed transactions: (\d+)", re.MULTILINE)
PGBENCH_LATENCY = re.compile(r"^latency average = ([\d.]+) ms", re.MULTILINE)
PGBENCH_PROGRESS = re.compile(r"^progress: ([\d.]+) s, ([\d.]+) tps", re.MULTILINE)


def code_value(i: int) -> str:
    return f"C{i:09d}"


@dataclass(slots=True)
class RawImport:
    codes: int
    seconds: float
    codes_per_s: float
    method: str


@dataclass(slots=True)
class PgbenchResult:
    clients: int
    threads: int
    seconds: int
    table_rows: int
    script: str
    plan: str
    transactions: int
    failed: int
    tps: float
    latency_avg_ms: float
    # tps per second of the run (pgbench -P 1): the naive claim slows as issued rows pile up at the head.
    progress_tps: list[float] = field(default_factory=list)
    issued_rows_after: int = 0


@dataclass(slots=True)
class SqliteLoopResult:
    seconds: float
    claims: int
    claims_per_s: float
    query: str
    plan: str


@dataclass(slots=True)
class RedisResult:
    reachable: bool
    note: str
    list_length: int = 0
    clients: int = 0
    lpop_per_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0


# -- PostgreSQL ---------------------------------------------------------------------------------------------


async def _pg_scratch(url: str) -> tuple[asyncpg.Connection, int]:
    """promopool's schema (migrated by promopool) at ``url``, one account and one pool; (conn, pool id)."""
    store = open_store(url)
    await store.connect()
    try:
        await store.migrate()
    finally:
        await store.close()
    conn = await pg_connect(url)
    account = await conn.fetchval(
        "INSERT INTO accounts (name, public_key) VALUES ('raw', 'raw') RETURNING id"
    )
    pool = await conn.fetchval(
        "INSERT INTO pools (account_id, name) VALUES ($1, 'raw') RETURNING id", account
    )
    return conn, int(pool)


async def pg_raw_copy(url: str, codes: int) -> RawImport:
    """Binary COPY of ``codes`` codes into an empty ``codes`` table: one statement, one commit.

    The table is then left for ``pgbench``: the naive claim runs on a table of the pool's size."""
    conn, pool = await _pg_scratch(url)
    try:
        # Built before the clock starts: the baseline is the database's speed, not Python's.
        records = [(pool, i, code_value(i)) for i in range(1, codes + 1)]
        started = time.perf_counter()
        await conn.copy_records_to_table("codes", records=records, columns=["pool_id", "seq", "value"])
        seconds = time.perf_counter() - started
        del records
        # Statistics as autovacuum would soon have them: the naive claim's plan depends on them.
        await conn.execute("VACUUM ANALYZE codes")
    finally:
        await conn.close()
    return RawImport(codes, round(seconds, 3), round(codes / seconds, 1), "asyncpg copy_records_to_table")


async def _pg_plan_and_issued(url: str) -> tuple[str, int]:
    conn = await pg_connect(url)
    try:
        inner = PG_NAIVE_CLAIM.split("id = (", 1)[1].rsplit(")", 1)[0]
        plan = "\n".join(row[0] for row in await conn.fetch("EXPLAIN " + inner))
        issued = await conn.fetchval("SELECT count(*) FROM codes WHERE state = 'issued'")
    finally:
        await conn.close()
    return plan, int(issued)


def pgbench(
    processes: Processes, url: str, workdir: Path, *, rows: int, clients: int, seconds: int
) -> PgbenchResult:
    """The naive claim with pgbench on the table ``pg_raw_copy`` filled (``rows`` codes, all available)."""
    executable = ensure_tool(processes, "pgbench", "postgresql-client")
    plan, issued_before = asyncio.run(_pg_plan_and_issued(url))
    if issued_before:
        raise BenchFailure(f"the pgbench table has {issued_before} issued rows before the run")
    script = workdir / "naive_claim.sql"
    script.write_text(PG_NAIVE_CLAIM + "\n", encoding="utf-8")
    # Durability on whatever the server's default: the comparison is between durable claims.
    env = {"PGOPTIONS": f"-c search_path={schema_of(url)} -c synchronous_commit=on"}
    command = [executable, "-n", "-M", "prepared", "-c", str(clients), "-j", "2", "-T", str(seconds)]
    command += ["-P", "1", "-f", str(script), without_schema(url)]
    output = processes.run("pgbench", command, timeout=seconds + 120, env=env).output()
    tps, done = PGBENCH_TPS.search(output), PGBENCH_DONE.search(output)
    if tps is None or done is None:
        raise BenchFailure(f"could not read pgbench's output:\n{output}")
    failed, latency = PGBENCH_FAILED.search(output), PGBENCH_LATENCY.search(output)
    _, issued_after = asyncio.run(_pg_plan_and_issued(url))
    return PgbenchResult(
        clients=clients,
        threads=2,
        seconds=seconds,
        table_rows=rows,
        script=PG_NAIVE_CLAIM,
        plan=plan,
        transactions=int(done.group(1)),
        failed=int(failed.group(1)) if failed else 0,
        tps=round(float(tps.group(1)), 1),
        latency_avg_ms=float(latency.group(1)) if latency else 0.0,
        progress_tps=[float(m.group(2)) for m in PGBENCH_PROGRESS.finditer(output)],
        issued_rows_after=issued_after,
    )


# -- SQLite -------------------------------------------------------------------------------------------------


def _sqlite_open(path: Path) -> sqlite3.Connection:
    # The same settings as promopool's own connections (SQLiteDriver._open in storage/sqlite/driver.py).
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def sqlite_raw_executemany(path: Path, codes: int) -> RawImport:
    """``executemany`` of plain INSERTs into an empty ``codes`` table of a fresh promopool file, one commit.

    The file is then left for ``sqlite_claim_loop``."""

    async def migrate() -> None:
        store = open_store(f"sqlite:///{path}")
        await store.connect()
        try:
            await store.migrate()
        finally:
            await store.close()

    asyncio.run(migrate())
    conn = _sqlite_open(path)
    try:
        now = "2026-01-01T00:00:00.000000Z"
        conn.execute("INSERT INTO accounts VALUES (1, 'raw', 'raw', ?)", (now,))
        conn.execute("INSERT INTO pools (id, account_id, name, created_at) VALUES (1, 1, 'raw', ?)", (now,))
        rows = [(1, i, code_value(i), now) for i in range(1, codes + 1)]  # built before the clock starts
        started = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO codes (pool_id, seq, value, created_at) VALUES (?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
        seconds = time.perf_counter() - started
        conn.execute("ANALYZE")
    finally:
        conn.close()
    return RawImport(codes, round(seconds, 3), round(codes / seconds, 1), "sqlite3 executemany")


def sqlite_claim_loop(path: Path, seconds: float) -> SqliteLoopResult:
    """One claim per ``BEGIN IMMEDIATE`` … ``COMMIT`` for ``seconds``, on the file sqlite_raw_executemany
    filled: what one process gets without group commit (each commit an fsync)."""
    conn = _sqlite_open(path)
    try:
        plan = "\n".join(
            str(row[-1]) for row in conn.execute("EXPLAIN QUERY PLAN " + SQLITE_NAIVE_CLAIM, ("",))
        )
        claims = 0
        now = "2026-01-01T00:00:00.000000Z"
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(SQLITE_NAIVE_CLAIM, (now,)).fetchone()
            conn.execute("COMMIT")
            if row is None:
                raise BenchFailure("the SQLite baseline ran out of codes: give it a larger table")
            claims += 1
        elapsed = time.perf_counter() - started
    finally:
        conn.close()
    return SqliteLoopResult(round(elapsed, 3), claims, round(claims / elapsed, 1), SQLITE_NAIVE_CLAIM, plan)


# -- Redis --------------------------------------------------------------------------------------------------

# Fills the list server-side in chunks (one round trip, and no huge command line).
REDIS_FILL = (
    "local n = tonumber(ARGV[1]) for i = 1, n, 1000 do local t = {} "
    "for j = i, math.min(i + 999, n) do t[#t + 1] = j end redis.call('RPUSH', KEYS[1], unpack(t)) end "
    "return redis.call('LLEN', KEYS[1])"
)


def redis_lpop(processes: Processes, redis_url: str, *, length: int, clients: int) -> RedisResult:
    cli, bench = shutil.which("redis-cli"), shutil.which("redis-benchmark")
    if cli is None or bench is None:
        return RedisResult(False, "skipped: redis-cli / redis-benchmark not installed")
    parts = urlsplit(redis_url)
    target = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379)]
    try:
        pong = processes.run("redis-ping", [cli, *target, "PING"], timeout=10).output().strip()
    except BenchFailure as exc:
        return RedisResult(False, f"skipped: no Redis answers at {redis_url} ({str(exc).splitlines()[0]})")
    if pong != "PONG":
        return RedisResult(False, f"skipped: Redis at {redis_url} answered {pong!r} to PING")
    # A key of our own: the Redis may be shared, and the list is deleted afterwards.
    key = f"promopool-bench:{secrets.token_hex(4)}"
    try:
        filled = processes.run(
            "redis-fill", [cli, *target, "EVAL", REDIS_FILL, "1", key, str(length)], timeout=120
        )
        if filled.output().strip() != str(length):
            raise BenchFailure(f"filling the Redis list answered {filled.output()!r}")
        command = [bench, *target, "-c", str(clients), "-n", str(length), "--csv", "LPOP", key]
        output = processes.run("redis-benchmark", command, timeout=300).output()
    finally:
        processes.run("redis-del", [cli, *target, "DEL", key], timeout=30)
    row = next((line for line in output.splitlines() if line.startswith('"LPOP')), None)
    if row is None:
        raise BenchFailure(f"could not read redis-benchmark's output:\n{output}")
    fields = [value.strip('"') for value in row.split(",")]
    return RedisResult(
        True,
        "non-durable reference (in memory, no fsync per pop)",
        list_length=length,
        clients=clients,
        lpop_per_s=float(fields[1]),
        p50_ms=float(fields[4]),
        p99_ms=float(fields[6]),
    )
