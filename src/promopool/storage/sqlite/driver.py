"""The SQLite driver: WAL mode, synchronous=FULL, one writer thread with group commit (``writer.py``),
a few reader threads. Operations run synchronously in those threads, each statement rewritten once (cached)
from the shared PostgreSQL spelling."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from promopool.domain import Code
from promopool.domain.alerts import LOW_STOCK_EVENT
from promopool.domain.errors import InvalidInput, StorageUnavailable
from promopool.storage.driver import (
    DEFAULT_LOCK_TIMEOUT,
    Driver,
    Fetch,
    FetchRow,
    InsertCodes,
    Op,
    Script,
    SnapshotReader,
    Statement,
    TakeCodes,
    performers,
    run_steps,
)
from promopool.storage.failures import cannot_open, sqlite_hint
from promopool.storage.migrations import Migration, apply, load_migrations
from promopool.storage.ops.claims import take_fresh
from promopool.storage.rows import CODE_COLUMNS, code_of
from promopool.storage.sqlite.backup import PagesCopied, backup_into
from promopool.storage.sqlite.writer import Writer

T = TypeVar("T")

# A migration may wait for another process's long write (a 50,000-code batch) longer than a request would.
MIGRATION_BUSY_TIMEOUT_MS = 60_000
READER_THREADS = 4


def ts(value: datetime) -> str:
    """Fixed-width UTC text, so that timestamps compare correctly as strings."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# Registered once for the process: promopool is SQLite's only user in it. A list is an array parameter
# (`= ANY($N)`, read by json_each), its timestamps as `ts` text.
sqlite3.register_adapter(datetime, ts)
sqlite3.register_adapter(list, lambda items: json.dumps(items, default=ts))

_ANY = re.compile(r"= ANY\(\$(\d+)(?:::\w+\[\])?\)")
_ALL = re.compile(r"<> ALL\(\$(\d+)(?:::\w+\[\])?\)")
_CAST = re.compile(r"::\w+(?:\[\])?")
_FOR_UPDATE = re.compile(r" FOR (?:NO KEY )?UPDATE(?: SKIP LOCKED)?\b")
_PARAM = re.compile(r"\$(\d+)")


@lru_cache(maxsize=2048)
def sqlite_sql(sql: str) -> str:
    """A statement written for PostgreSQL, as SQLite reads it: ``$N`` → ``?N``, ``= ANY($N)`` over a JSON
    array, casts dropped, and ``FOR [NO KEY] UPDATE [SKIP LOCKED]`` dropped (the writer already holds the
    database's write lock)."""
    sql = _ANY.sub(r"IN (SELECT value FROM json_each(?\1))", sql)
    sql = _ALL.sub(r"NOT IN (SELECT value FROM json_each(?\1))", sql)
    sql = _FOR_UPDATE.sub("", _CAST.sub("", sql))
    return _PARAM.sub(r"?\1", sql)


def _text(sql: Statement) -> str:
    return sqlite_sql(sql if isinstance(sql, str) else sql.sqlite)


def _path_from_url(url: str) -> str:
    parts = urlsplit(url)
    path = unquote(parts.path)
    if parts.netloc or not path.startswith("/") or path in ("/", "/:memory:"):
        raise InvalidInput(
            f"bad SQLite URL {url!r}: use sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    return path[1:]


def _cursor(conn: sqlite3.Connection, step: Fetch | FetchRow) -> sqlite3.Cursor:
    cursor = conn.cursor()
    cursor.row_factory = sqlite3.Row  # rows by column name, as asyncpg's records
    return cursor.execute(_text(step.sql), step.args)


# The crossing rule: available went from above the threshold (before the batch: available + taken) to at or
# below it. Pools without a webhook URL get no delivery row.
LOW_STOCK_SQL = f"""
INSERT INTO webhook_deliveries (account_id, pool_id, event, url, data, next_attempt_at, created_at)
SELECT ?1, a.pool_id, '{LOW_STOCK_EVENT}', a.webhook_url,
       json_object('pool_id', a.pool_id, 'pool_name', ?3, 'available', ?4, 'threshold', a.threshold), ?6, ?6
FROM pool_alerts a
WHERE a.pool_id = ?2 AND a.webhook_url IS NOT NULL AND ?4 <= a.threshold AND ?4 + ?5 > a.threshold
"""


def take(conn: sqlite3.Connection, step: TakeCodes) -> list[Code]:
    """The claim algorithm: take_codes of migrations/postgres/0008_claim_functions.sql, the same steps."""
    pool_id, cursor, wanted, now = step.pool_id, step.cursor, step.wanted, ts(step.now)
    taken: list[tuple[int, Code]] = []
    start = cursor
    while len(taken) < wanted:
        ahead = conn.execute(
            "SELECT id, seq, state, expires_at FROM codes WHERE pool_id = ? AND seq >= ?"
            " ORDER BY seq LIMIT ?",
            (pool_id, cursor, wanted - len(taken)),
        ).fetchall()
        if not ahead:  # nothing ahead of the cursor: the pool is drained
            break
        ids = [row[0] for row in ahead if row[2] == "available" and (row[3] is None or row[3] > now)]
        if ids:
            marks = ",".join("?" * len(ids))
            cur = conn.cursor()
            cur.row_factory = sqlite3.Row
            rows = cur.execute(
                f"UPDATE codes SET state = 'issued', issued_at = ? WHERE id IN ({marks})"
                f" RETURNING seq, {CODE_COLUMNS}",
                (now, *ids),
            ).fetchall()
            taken += [(row["seq"], code_of(row)) for row in rows]
        cursor = ahead[-1][1] + 1
    if cursor != start:
        _record_claims(conn, pool_id, cursor, len(taken), now)
    return [code for _, code in sorted(taken, key=itemgetter(0))]


def _record_claims(conn: sqlite3.Connection, pool_id: int, cursor: int, taken: int, now: str) -> None:
    """After a batch took ``taken`` codes reading up to ``cursor``: the cursor and counters, the hour's
    claims, and a low-stock event if the batch crossed the alert's threshold (take_codes' last statement)."""
    account_id, pool_name, available = conn.execute(
        "UPDATE pools SET next_seq = ?, n_available = n_available - ?, n_issued = n_issued + ?"
        " WHERE id = ? RETURNING account_id, name, n_available",
        (cursor, taken, taken, pool_id),
    ).fetchone()
    if taken:
        hour = now[:13] + ":00:00.000000Z"  # `now` is ts() text: fixed width
        conn.execute(
            "INSERT INTO pool_activity (pool_id, hour, claims) VALUES (?, ?, ?)"
            " ON CONFLICT (pool_id, hour) DO UPDATE SET claims = claims + excluded.claims",
            (pool_id, hour, taken),
        )
        conn.execute(LOW_STOCK_SQL, (account_id, pool_id, pool_name, available, taken, now))


def _insert_codes(conn: sqlite3.Connection, step: InsertCodes) -> int:
    values, first = step.values, step.first_seq
    indexes = range(len(values)) if step.fresh is None else step.fresh
    # Rows go in value order, which keeps the (pool_id, value) index's inserts local; their seq keeps the
    # order given (the sort is stable, so of two equal values the first still wins). OR IGNORE skips values
    # the pool already holds, at no cost over a plain INSERT (so expect_duplicates is of no use here).
    numbered = sorted(((first + i, values[i]) for i in indexes), key=itemgetter(1))
    pool_id, now = step.pool_id, ts(step.now)  # converted once, not by the adapter for every row
    before = conn.total_changes
    conn.executemany(
        "INSERT OR IGNORE INTO codes (pool_id, seq, value, created_at) VALUES (?, ?, ?, ?)",
        ((pool_id, seq, value, now) for seq, value in numbered),
    )
    return conn.total_changes - before


def _script(conn: sqlite3.Connection, step: Script) -> None:
    for statement in _statements(step.sql):
        conn.execute(statement)


PERFORM = performers(
    fetch=lambda conn, step: _cursor(conn, step).fetchall(),
    fetch_row=lambda conn, step: _cursor(conn, step).fetchone(),
    fetch_val=lambda conn, step: (conn.execute(_text(step.sql), step.args).fetchone() or (None,))[0],
    execute=lambda conn, step: conn.execute(_text(step.sql), step.args).rowcount,
    take_codes=take,
    stage_codes=lambda conn, step: None,  # the values stay in memory until InsertCodes
    insert_codes=_insert_codes,
    script=_script,
)


def _unique(exc: Exception) -> bool:
    return isinstance(exc, sqlite3.IntegrityError) and str(exc).startswith("UNIQUE")


def run(conn: sqlite3.Connection, op: Op[T]) -> T:
    """Run ``op`` to its end on ``conn``, in the caller's thread and transaction."""
    return run_steps(conn, op, PERFORM, _unique)


def _read_on(connection: Callable[[], sqlite3.Connection], op: Op[T], paged: bool = False) -> T:
    """Run a read-only ``op`` on a reader's connection; ``paged``: in a transaction of its own (one
    snapshot). A failure is StorageUnavailable."""
    try:
        conn = connection()
        if not paged:
            return run(conn, op)
        conn.execute("BEGIN")
        try:
            return run(conn, op)
        finally:
            conn.execute("COMMIT")
    except sqlite3.Error as exc:
        raise StorageUnavailable(f"database read failed: {exc}") from exc


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name, from the state on; None without one."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def _owner_gone(owner: str) -> bool:
    """Whether the process ``job_owner`` named has ended (a zombie has: it runs nothing)."""
    pid_text, _, started = owner.partition(":")
    pid = int(pid_text)
    if started:
        fields = _stat(pid)
        return fields is None or fields[0] in ("Z", "X") or fields[19] != started
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's: it exists
        return False
    return False


class SQLiteDriver(Driver):
    engine = "sqlite"

    def __init__(self, url: str, *, pool_size: int, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        super().__init__(url, pool_size=pool_size, lock_timeout=lock_timeout)
        self.path = _path_from_url(url)
        self._writer: Writer | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # How long a write waits for another process's write lock: then 503 storage_busy (writer.py).
        conn.execute(f"PRAGMA busy_timeout = {round(self.lock_timeout * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit is on disk before anyone is told about it, so an acknowledged claim survives a
        # power cut. Never traded for speed; group commit recovers the throughput.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    async def connect(self) -> None:
        try:
            await asyncio.to_thread(lambda: self._open().close())
        except sqlite3.Error as exc:
            raise cannot_open("SQLite", self.url, exc, sqlite_hint(self.path, exc)) from exc
        self._writer = Writer(self._open)
        self._writer.start()
        # Reads run beside the single writer; a few threads suffice (SQLite reads are short and local).
        self._readers = ThreadPoolExecutor(
            min(READER_THREADS, self.pool_size), thread_name_prefix="promopool-sqlite-reader"
        )

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.to_thread(self._writer.stop)
            self._writer = None
        if self._readers is not None:
            self._readers.shutdown(wait=True)
            self._readers = None
        with self._reader_lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Run ``fn`` in the writer's next group commit, under its own savepoint."""
        if self._writer is None:
            raise StorageUnavailable("store is not connected")
        return self._writer.submit(fn)

    async def _write(self, op: Op[T]) -> T:
        return await self.submit(lambda conn: run(conn, op))

    async def _claim(self, account_id: int, pool_id: int, wanted: int, now: datetime) -> list[Code]:
        # No faster way than the shared operation: in the writer thread, a claim batch is one short write.
        return await self._write(take_fresh(account_id, pool_id, wanted, now))

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
            with self._reader_lock:
                self._reader_conns.append(conn)
        return conn

    async def _read(self, op: Op[T], *, paged: bool) -> T:
        if self._readers is None:
            raise StorageUnavailable("store is not connected")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, _read_on, self._reader, op, paged)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[SnapshotReader[Any]]:
        async with self._held_snapshot(None) as run:
            yield run

    @asynccontextmanager
    async def backup(self, path: str, on_pages: PagesCopied | None) -> AsyncIterator[SnapshotReader[Any]]:
        # The backup runs on the snapshot's own connection inside its read transaction: every step reads that
        # one WAL snapshot, so writers may go on (a step by another connection would restart on each of their
        # commits), and the reader yielded after it sees exactly what the file holds.
        async with self._held_snapshot(lambda conn: backup_into(conn, path, on_pages)) as run:
            yield run

    @asynccontextmanager
    async def _held_snapshot(
        self, first: Callable[[sqlite3.Connection], None] | None
    ) -> AsyncIterator[SnapshotReader[Any]]:
        """One read transaction held open on a connection and a thread of its own (the reader threads'
        connections serve one read at a time, and a transaction must stay on the connection, and so the
        thread, that began it); ``first`` runs in it before any operation."""
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(1, thread_name_prefix="promopool-sqlite-snapshot") as thread:

            def begin() -> sqlite3.Connection:
                conn = self._open()
                conn.execute("PRAGMA query_only = ON")
                conn.execute("BEGIN")
                # In WAL mode the snapshot is taken at the first read, not at BEGIN.
                conn.execute("SELECT count(*) FROM sqlite_master")
                return conn

            def end(conn: sqlite3.Connection) -> None:
                conn.execute("COMMIT")
                conn.close()

            conn = await loop.run_in_executor(thread, begin)
            try:
                if first is not None:
                    await loop.run_in_executor(thread, first, conn)
                yield lambda op: loop.run_in_executor(thread, _read_on, lambda: conn, op)
            finally:
                await loop.run_in_executor(thread, end, conn)

    async def job_owner(self) -> str:
        # Its pid, and its start time where Linux tells it, which a later process given the same pid does not
        # share. (Every process using a SQLite file is on its machine.)
        pid = os.getpid()
        fields = _stat(pid)
        return f"{pid}" if fields is None else f"{pid}:{fields[19]}"

    async def gone_owners(self, owners: Collection[str]) -> set[str]:
        return {owner for owner in owners if _owner_gone(owner)}

    async def migrate(self, now: datetime) -> list[int]:
        try:
            return await asyncio.to_thread(self._migrate, load_migrations("sqlite"), now)
        except sqlite3.Error as exc:
            raise StorageUnavailable(f"migration failed: {exc}") from exc

    def _migrate(self, migrations: list[Migration], now: datetime) -> list[int]:
        """Apply pending migrations in one transaction on a connection of their own, with foreign keys off.

        A migration that rebuilds a table drops the old one; with foreign keys on, that drop would first
        delete its rows and cascade into every table pointing at it. SQLite's documented procedure: foreign
        keys off (only possible outside a transaction, hence not the writer's connection), every key checked
        before the commit.
        """
        conn = self._open()
        try:
            conn.execute(f"PRAGMA busy_timeout = {MIGRATION_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = OFF")
            conn.execute("BEGIN IMMEDIATE")
            try:
                applied = run(conn, apply(migrations, now))
                if applied and (broken := conn.execute("PRAGMA foreign_key_check").fetchmany(5)):
                    raise sqlite3.IntegrityError(f"foreign keys broken by the migrations: {broken}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return applied
        finally:
            conn.close()


def _statements(script: str) -> list[str]:
    """Split a migration into statements (our migrations hold no semicolons inside literals)."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]
