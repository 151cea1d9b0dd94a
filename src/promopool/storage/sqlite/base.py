"""The sqlite engine's connection handling, row conversions and migrations; the data operations are
mixins in the sibling modules."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from promopool.domain import Account, Code, CodeState, Pool, PoolCounts, PoolSettings
from promopool.domain.errors import (
    InvalidInput,
    StorageUnavailable,
)
from promopool.storage.base import (
    Clock,
    Store,
    load_migrations,
    utc_now,
)
from promopool.storage.failures import cannot_open, sqlite_hint
from promopool.storage.sqlite.writer import Writer

T = TypeVar("T")

BUSY_TIMEOUT_MS = 10_000
READER_THREADS = 4

POOL_COLUMNS = (
    "id, account_id, name, max_uses, per_profile_limit, expires_at, public_fetch,"
    " n_available, n_issued, n_redeemed, created_at, case_insensitive, ignore_separators, holder_only"
)
CODE_COLUMNS = (
    "id, pool_id, value, state, description, usage_count, expires_at, issued_at, profile_id, created_at"
)


def ts(value: datetime) -> str:
    """Fixed-width UTC text, so that timestamps compare correctly as strings."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _path_from_url(url: str) -> str:
    parts = urlsplit(url)
    path = unquote(parts.path)
    if parts.netloc or not path.startswith("/") or path in ("/", "/:memory:"):
        raise InvalidInput(
            f"bad SQLite URL {url!r}: use sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    return path[1:]


def account_of(row: sqlite3.Row) -> Account:
    return Account(id=row[0], name=row[1], public_key=row[2], created_at=datetime.fromisoformat(row[3]))


def pool_of(row: sqlite3.Row) -> Pool:
    return Pool(
        id=row[0],
        account_id=row[1],
        name=row[2],
        settings=PoolSettings(
            max_uses=row[3],
            per_profile_limit=row[4],
            expires_at=_dt(row[5]),
            public_fetch=bool(row[6]),
            case_insensitive=bool(row[11]),
            ignore_separators=bool(row[12]),
            holder_only=bool(row[13]),
        ),
        counts=PoolCounts(available=row[7], issued=row[8], redeemed=row[9]),
        created_at=datetime.fromisoformat(row[10]),
    )


def code_of(row: sqlite3.Row) -> Code:
    return Code(
        id=row[0],
        pool_id=row[1],
        value=row[2],
        state=CodeState(row[3]),
        description=row[4],
        usage_count=row[5],
        expires_at=_dt(row[6]),
        issued_at=_dt(row[7]),
        profile_id=row[8],
        created_at=_dt(row[9]),
    )


class SQLiteBase(Store):
    engine = "sqlite"

    def __init__(self, url: str, *, clock: Clock = utc_now, pool_size: int = 10) -> None:
        super().__init__(url, clock=clock, pool_size=pool_size)
        self.path = _path_from_url(url)
        self._writer: Writer | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
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
        readers = min(READER_THREADS, self.pool_size)
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="promopool-sqlite-reader")

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

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._writer is None:
            raise StorageUnavailable("store is not connected")
        return await self._writer.submit(fn)

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
            with self._reader_lock:
                self._reader_conns.append(conn)
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._readers is None:
            raise StorageUnavailable("store is not connected")

        def run() -> T:
            try:
                return fn(self._reader())
            except sqlite3.Error as exc:
                raise StorageUnavailable(f"database read failed: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    async def migrate(self) -> list[int]:
        migrations = load_migrations("sqlite")

        def apply(conn: sqlite3.Connection) -> list[int]:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            applied = []
            for migration in migrations:
                if migration.version in done:
                    continue
                for statement in _statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    (migration.version, migration.name, ts(self.clock())),
                )
                applied.append(migration.version)
            return applied

        return await self._write(apply)

    async def ping(self) -> None:
        await self._read(lambda conn: conn.execute("SELECT 1").fetchone())


def _statements(script: str) -> list[str]:
    """Split a migration into statements (our migrations hold no semicolons inside literals)."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]
