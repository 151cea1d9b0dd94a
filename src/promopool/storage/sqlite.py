"""SQLite engine: the embedded default. WAL mode, synchronous=FULL, one writer thread, pooled readers."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from promopool.domain import Account, Claimed, Code, CodeState, Pool, PoolCounts, PoolSettings
from promopool.domain.errors import (
    AlreadyExists,
    CodeNotFound,
    InvalidInput,
    PoolExpired,
    PoolNotFound,
    StorageUnavailable,
)
from promopool.storage.base import (
    ClaimPlan,
    ClaimResult,
    Clock,
    Store,
    claim_scope,
    key_reused,
    load_migrations,
    utc_now,
)
from promopool.storage.sqlite_writer import Writer

T = TypeVar("T")

BUSY_TIMEOUT_MS = 10_000
READER_THREADS = 4

POOL_COLUMNS = (
    "id, account_id, name, max_uses, per_profile_limit, expires_at, public_fetch,"
    " n_available, n_issued, n_redeemed, created_at"
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


def _account(row: sqlite3.Row) -> Account:
    return Account(id=row[0], name=row[1], public_key=row[2], created_at=datetime.fromisoformat(row[3]))


def _pool(row: sqlite3.Row) -> Pool:
    return Pool(
        id=row[0],
        account_id=row[1],
        name=row[2],
        settings=PoolSettings(
            max_uses=row[3], per_profile_limit=row[4], expires_at=_dt(row[5]), public_fetch=bool(row[6])
        ),
        counts=PoolCounts(available=row[7], issued=row[8], redeemed=row[9]),
        created_at=datetime.fromisoformat(row[10]),
    )


def _code(row: sqlite3.Row) -> Code:
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


class SQLiteStore(Store):
    engine = "sqlite"

    def __init__(self, url: str, *, clock: Clock = utc_now, pool_size: int = 10) -> None:
        super().__init__(url, clock=clock, pool_size=pool_size)
        self.path = _path_from_url(url)
        self._writer: Writer | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------------------
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
            raise StorageUnavailable(f"cannot open SQLite database {self.path!r}: {exc}") from exc
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

    # -- accounts ----------------------------------------------------------------------------------------
    async def create_account(self, *, name: str, public_key: str, key_hash: str) -> Account:
        now = ts(self.clock())

        def op(conn: sqlite3.Connection) -> Account:
            try:
                row = conn.execute(
                    "INSERT INTO accounts (name, public_key, created_at) VALUES (?, ?, ?)"
                    " RETURNING id, name, public_key, created_at",
                    (name, public_key, now),
                ).fetchone()
            except sqlite3.IntegrityError as exc:
                raise AlreadyExists(f"an account named {name!r} already exists", name=name) from exc
            conn.execute("INSERT INTO api_keys VALUES (?, ?, ?)", (key_hash, row[0], now))
            return _account(row)

        return await self._write(op)

    async def add_api_key(self, *, account_id: int, key_hash: str) -> None:
        now = ts(self.clock())
        await self._write(
            lambda conn: conn.execute("INSERT INTO api_keys VALUES (?, ?, ?)", (key_hash, account_id, now))
        )

    async def _account_where(self, clause: str, value: str) -> Account | None:
        sql = f"SELECT a.id, a.name, a.public_key, a.created_at FROM accounts a {clause}"
        row = await self._read(lambda conn: conn.execute(sql, (value,)).fetchone())
        return None if row is None else _account(row)

    async def account_by_key_hash(self, key_hash: str) -> Account | None:
        return await self._account_where(
            "JOIN api_keys k ON k.account_id = a.id WHERE k.key_hash = ?", key_hash
        )

    async def account_by_public_key(self, public_key: str) -> Account | None:
        return await self._account_where("WHERE a.public_key = ?", public_key)

    async def account_by_name(self, name: str) -> Account | None:
        return await self._account_where("WHERE a.name = ?", name)

    async def count_accounts(self) -> int:
        row = await self._read(lambda conn: conn.execute("SELECT count(*) FROM accounts").fetchone())
        return int(row[0])

    # -- pools -------------------------------------------------------------------------------------------
    async def create_pool(self, *, account_id: int, name: str, settings: PoolSettings) -> Pool:
        now = ts(self.clock())
        expires = None if settings.expires_at is None else ts(settings.expires_at)

        def op(conn: sqlite3.Connection) -> Pool:
            row = conn.execute(
                "INSERT INTO pools (account_id, name, max_uses, per_profile_limit, expires_at, public_fetch,"
                f" created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING {POOL_COLUMNS}",
                (
                    account_id,
                    name,
                    settings.max_uses,
                    settings.per_profile_limit,
                    expires,
                    int(settings.public_fetch),
                    now,
                ),
            ).fetchone()
            return _pool(row)

        return await self._write(op)

    async def list_pools(self, *, account_id: int) -> list[Pool]:
        sql = f"SELECT {POOL_COLUMNS} FROM pools WHERE account_id = ? ORDER BY id"
        rows = await self._read(lambda conn: conn.execute(sql, (account_id,)).fetchall())
        return [_pool(row) for row in rows]

    async def get_pool(self, *, account_id: int, pool_id: int) -> Pool | None:
        sql = f"SELECT {POOL_COLUMNS} FROM pools WHERE id = ? AND account_id = ?"
        row = await self._read(lambda conn: conn.execute(sql, (pool_id, account_id)).fetchone())
        return None if row is None else _pool(row)

    async def update_pool(
        self, *, account_id: int, pool_id: int, name: str, settings: PoolSettings
    ) -> Pool | None:
        expires = None if settings.expires_at is None else ts(settings.expires_at)

        def op(conn: sqlite3.Connection) -> Pool | None:
            row = conn.execute(
                "UPDATE pools SET name = ?, max_uses = ?, per_profile_limit = ?, expires_at = ?,"
                f" public_fetch = ? WHERE id = ? AND account_id = ? RETURNING {POOL_COLUMNS}",
                (
                    name,
                    settings.max_uses,
                    settings.per_profile_limit,
                    expires,
                    int(settings.public_fetch),
                    pool_id,
                    account_id,
                ),
            ).fetchone()
            return None if row is None else _pool(row)

        return await self._write(op)

    async def delete_pool(self, *, account_id: int, pool_id: int) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("DELETE FROM pools WHERE id = ? AND account_id = ?", (pool_id, account_id))
            return cur.rowcount > 0

        return await self._write(op)

    # -- codes -------------------------------------------------------------------------------------------
    async def insert_codes(self, *, pool_id: int, values: Sequence[str]) -> int:
        now = ts(self.clock())

        def op(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT last_seq FROM pools WHERE id = ?", (pool_id,)).fetchone()
            if row is None:
                raise PoolNotFound(pool_id)
            base = row[0] + 1
            before = conn.total_changes
            # OR IGNORE skips values the pool already holds; their seq numbers stay unused, which costs a
            # claim nothing (it seeks along the index, it does not count through numbers).
            conn.executemany(
                "INSERT OR IGNORE INTO codes (pool_id, seq, value, created_at) VALUES (?, ?, ?, ?)",
                ((pool_id, base + i, value, now) for i, value in enumerate(values)),
            )
            inserted = conn.total_changes - before
            conn.execute(
                "UPDATE pools SET last_seq = last_seq + ?, n_available = n_available + ? WHERE id = ?",
                (len(values), inserted, pool_id),
            )
            return inserted

        return await self._write(op)

    async def list_codes(
        self, *, pool_id: int, state: CodeState | None, after: str | None, limit: int
    ) -> list[Code]:
        where = ["pool_id = ?"]
        params: list[Any] = [pool_id]
        if state is not None:
            where.append("state = ?")
            params.append(state.value)
        if after is not None:
            where.append("value > ?")
            params.append(after)
        sql = f"SELECT {CODE_COLUMNS} FROM codes WHERE {' AND '.join(where)} ORDER BY value LIMIT ?"
        params.append(limit)
        rows = await self._read(lambda conn: conn.execute(sql, params).fetchall())
        return [_code(row) for row in rows]

    async def get_code(self, *, pool_id: int, value: str) -> Code | None:
        sql = f"SELECT {CODE_COLUMNS} FROM codes WHERE pool_id = ? AND value = ?"
        row = await self._read(lambda conn: conn.execute(sql, (pool_id, value)).fetchone())
        return None if row is None else _code(row)

    async def delete_code(self, *, pool_id: int, value: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "DELETE FROM codes WHERE pool_id = ? AND value = ? RETURNING state", (pool_id, value)
            ).fetchone()
            if row is None:
                return False
            column = {"available": "n_available", "issued": "n_issued", "redeemed": "n_redeemed"}[row[0]]
            conn.execute(f"UPDATE pools SET {column} = {column} - 1 WHERE id = ?", (pool_id,))
            return True

        return await self._write(op)

    # -- claims ------------------------------------------------------------------------------------------
    async def claim_batch(
        self, account_id: int, pool_id: int, keys: Sequence[str | None]
    ) -> list[ClaimResult]:
        return await self._write(lambda conn: self._claim_batch(conn, account_id, pool_id, keys))

    def _claim_batch(
        self, conn: sqlite3.Connection, account_id: int, pool_id: int, keys: Sequence[str | None]
    ) -> list[ClaimResult]:
        now = ts(self.clock())
        pool = conn.execute(
            "SELECT next_seq, expires_at FROM pools WHERE id = ? AND account_id = ?", (pool_id, account_id)
        ).fetchone()
        if pool is None:
            raise PoolNotFound(pool_id)
        if pool[1] is not None and pool[1] <= now:
            raise PoolExpired(pool_id)
        scope = claim_scope(pool_id)
        plan = ClaimPlan(keys)
        for key in plan.keyed():
            found = conn.execute(
                "SELECT scope, result_id FROM idempotency_keys WHERE account_id = ? AND key = ?",
                (account_id, key),
            ).fetchone()
            if found is not None:
                plan.replay(key, self._replay(conn, scope, found[0], found[1], key))
        codes = self._take(conn, pool_id, pool[0], plan.needed(), now)
        for key, code in plan.assign(codes, pool_id):
            conn.execute(
                "INSERT INTO idempotency_keys VALUES (?, ?, ?, ?, ?)", (account_id, key, scope, code.id, now)
            )
        return plan.results()

    def _take(self, conn: sqlite3.Connection, pool_id: int, cursor: int, wanted: int, now: str) -> list[Code]:
        """Issue up to ``wanted`` codes read forward from the cursor; move the cursor past all rows read
        (see TAKE_SQL in postgres.py: the same algorithm)."""
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
                rows = conn.execute(
                    f"UPDATE codes SET state = 'issued', issued_at = ? WHERE id IN ({marks})"
                    f" RETURNING seq, {CODE_COLUMNS}",
                    (now, *ids),
                ).fetchall()
                taken += [(row[0], _code(row[1:])) for row in rows]
            cursor = ahead[-1][1] + 1
        if cursor != start:
            conn.execute(
                "UPDATE pools SET next_seq = ?, n_available = n_available - ?, n_issued = n_issued + ?"
                " WHERE id = ?",
                (cursor, len(taken), len(taken), pool_id),
            )
        return [code for _, code in sorted(taken, key=lambda pair: pair[0])]

    def _replay(
        self, conn: sqlite3.Connection, scope: str, used_scope: str, code_id: int | None, key: str
    ) -> ClaimResult:
        if used_scope != scope:
            return key_reused(key)
        row = conn.execute(f"SELECT {CODE_COLUMNS} FROM codes WHERE id = ?", (code_id,)).fetchone()
        if row is None:
            return CodeNotFound("the code claimed with this Idempotency-Key has since been deleted", key=key)
        return Claimed(_code(row), replayed=True)

    async def purge_idempotency_keys(self, *, older_than: datetime) -> int:
        cutoff = ts(older_than)

        def op(conn: sqlite3.Connection) -> int:
            return conn.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (cutoff,)).rowcount

        return await self._write(op)


def _statements(script: str) -> list[str]:
    """Split a migration into statements (our migrations hold no semicolons inside literals)."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]
