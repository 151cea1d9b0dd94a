"""The PostgreSQL driver (asyncpg): a connection pool; an operation's steps awaited one by one on one
connection; the claim algorithm as server-side functions (migration 0008)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import AsyncIterator, Collection, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from promopool import metrics
from promopool.domain import Code
from promopool.domain.alerts import hour_of
from promopool.domain.errors import PoolExpired, PoolNotFound, StorageBusy, StorageUnavailable
from promopool.storage.driver import (
    DEFAULT_LOCK_TIMEOUT,
    Driver,
    Execute,
    InsertCodes,
    Op,
    SnapshotReader,
    StageCodes,
    Statement,
    TakeCodes,
    performers,
    run_steps_async,
)
from promopool.storage.failures import cannot_open, postgres_hint
from promopool.storage.migrations import apply, load_migrations
from promopool.storage.rows import CODE_COLUMNS, code_of

T = TypeVar("T")

CONNECTION_ERRORS = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.CannotConnectNowError,
    asyncpg.OperatorInterventionError,
    # A multi-host URL none of whose hosts is the writable primary (target_session_attrs=read-write): during
    # a failover, before the standby is promoted.
    asyncpg.TargetServerAttributeNotMatched,
)
# A write on a read-only server (SQLSTATE 25006): a standby, or a primary being demoted.
READ_ONLY_ERRORS = (asyncpg.ReadOnlySQLTransactionError,)
READ_ONLY_SETTINGS = ("in_hot_standby", "default_transaction_read_only")
MIGRATION_LOCK = 7_311_820_001  # pg_advisory_xact_lock key: one migrator at a time across processes
# A job's owner is a process holding the session advisory lock (JOB_OWNERS, its key) on a connection of its
# own for as long as it lives: PostgreSQL frees it the moment that session ends, however the process died, so
# any server can tell a job whose process is gone from one that is running elsewhere.
JOB_OWNERS = 7_311_821  # the lock's first key (its class); pg_advisory_lock(int, int) form
HELD_OWNERS = (
    "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::bigint::oid AND objsubid = 2"
    " AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)

# The claim algorithm lives in the database (migration 0008_claim_functions.sql): a batch without
# Idempotency-Keys is this one statement, its own transaction, instead of five round trips.
CLAIM_SQL = f"SELECT seq, {CODE_COLUMNS} FROM claim_codes($1, $2, $3, $4, $5)"
TAKE_SQL = f"SELECT seq, {CODE_COLUMNS} FROM take_codes($1, $2, $3, $4, $5)"
# The SQLSTATEs with which claim_codes refuses a pool.
_REFUSALS: dict[str, type[PoolNotFound | PoolExpired]] = {"PP404": PoolNotFound, "PP410": PoolExpired}

# An import's values go to a session-private table first (binary COPY), then into codes in one statement.
STAGE_TABLE = "CREATE TEMP TABLE IF NOT EXISTS import_codes (ord bigint, value text) ON COMMIT DELETE ROWS"
INSERT_STAGED = (
    "INSERT INTO codes (pool_id, seq, value, created_at)"
    " SELECT $1, $2 + ord, value, $3 FROM import_codes ORDER BY value, ord"
)


def _connection_lost(conn: asyncpg.Connection) -> bool:
    """Whether a connection this store holds has died under it.

    A server going away mid-operation (a restart, a fast shutdown) does not always surface as a connection
    error: the transaction's own exit then fails with an InterfaceError ("the underlying connection is
    closed"), and a connection told to terminate while idle can fail its next query with an
    InternalClientError ("cannot switch to state …"). Both are an outage, not a bug, when the connection is
    closed — or already detached from us, which the pool does to a connection when it closes.
    """
    try:
        return bool(conn.is_closed())
    except asyncpg.InterfaceError:  # "connection has been released back to the pool"
        return True


def _split_url(url: str) -> tuple[str, str | None]:
    """Take promopool's own ``schema`` parameter out of the URL; the rest goes to asyncpg.

    A URL naming several hosts (``postgresql://h1:5432,h2:5432/db``, as libpq writes them) connects to the
    writable primary among them, whichever that is now: promopool writes, and libpq's default (``any``) would
    as soon take a standby. A ``target_session_attrs`` given in the URL or the environment is kept.
    """
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), None)
    rest = [(k, v) for k, v in query if k != "schema"]
    given = any(k == "target_session_attrs" for k, _ in rest) or "PGTARGETSESSIONATTRS" in os.environ
    if "," in parts.netloc.rpartition("@")[2] and not given:
        rest.append(("target_session_attrs", "read-write"))
    scheme = "postgresql" if parts.scheme == "postgres" else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(rest), parts.fragment)), schema


def _read_only(conn: asyncpg.Connection) -> bool:
    """Whether the server says (PostgreSQL 14 and later report it, at no cost) that it takes no writes: a
    standby, or one told to refuse them. Reached through a proxy or a single-host URL during a failover."""
    settings = conn.get_settings()
    return "on" in (getattr(settings, name, "off") for name in READ_ONLY_SETTINGS)


@contextmanager
def _pool_refusals(pool_id: int) -> Iterator[None]:
    try:
        yield
    except asyncpg.PostgresError as exc:
        refusal = _REFUSALS.get(exc.sqlstate)
        if refusal is None:
            raise
        raise refusal(pool_id) from None


def _in_order(rows: Sequence[asyncpg.Record]) -> list[Code]:
    return [code_of(row) for row in sorted(rows, key=lambda row: row["seq"])]


def _text(sql: Statement) -> str:
    return sql if isinstance(sql, str) else sql.postgres


async def _execute(conn: asyncpg.Connection, step: Execute) -> int:
    status = await conn.execute(_text(step.sql), *step.args)
    count = status.rpartition(" ")[2]  # "UPDATE 3", "INSERT 0 3"; "CREATE TABLE" changes no row
    return int(count) if count.isdigit() else 0


async def _take(conn: asyncpg.Connection, step: TakeCodes) -> list[Code]:
    now = step.now
    return _in_order(await conn.fetch(TAKE_SQL, step.pool_id, step.cursor, step.wanted, now, hour_of(now)))


async def _stage(conn: asyncpg.Connection, step: StageCodes) -> None:
    await conn.execute(STAGE_TABLE)
    # Binary COPY into a session-private table: the pool's row is locked only for the INSERT … SELECT.
    records = list(enumerate(step.values, start=1))
    await conn.copy_records_to_table("import_codes", records=records, columns=["ord", "value"])


async def _insert_staged(conn: asyncpg.Connection, step: InsertCodes) -> int:
    if step.fresh is not None and len(step.fresh) < len(step.values):
        await conn.execute(
            "DELETE FROM import_codes WHERE ord <> ALL($1::bigint[])", [i + 1 for i in step.fresh]
        )
    # Rows go in value order, which keeps the (pool_id, value) index's inserts local; seq keeps the order
    # given (`ord` breaks ties, so of two equal values the first still wins).
    args = (step.pool_id, step.first_seq - 1, step.now)
    status = None
    if not step.expect_duplicates:
        # Optimistically without ON CONFLICT, whose speculative insertion costs ~20% of an import of new
        # codes; a duplicate undoes just this attempt (a savepoint), and the batch goes in the careful way.
        try:
            async with conn.transaction():
                status = await conn.execute(INSERT_STAGED, *args)
        except asyncpg.UniqueViolationError:
            status = None
    if status is None:
        # Naming the one index a duplicate can hit spares the database probing the other unique indexes
        # for every row (a fresh seq or id never collides; if one ever did, that would be a bug worth an
        # error).
        status = await conn.execute(f"{INSERT_STAGED} ON CONFLICT (pool_id, value) DO NOTHING", *args)
    return int(status.rpartition(" ")[2])


PERFORM = performers(
    fetch=lambda conn, step: conn.fetch(_text(step.sql), *step.args),
    fetch_row=lambda conn, step: conn.fetchrow(_text(step.sql), *step.args),
    fetch_val=lambda conn, step: conn.fetchval(_text(step.sql), *step.args),
    execute=_execute,
    take_codes=_take,
    stage_codes=_stage,
    insert_codes=_insert_staged,
    script=lambda conn, step: conn.execute(step.sql),
)


def _unique(exc: Exception) -> bool:
    return isinstance(exc, asyncpg.UniqueViolationError)


async def run(conn: asyncpg.Connection, op: Op[T]) -> T:
    """Run ``op`` to its end on ``conn``, in the caller's transaction (if any)."""
    return await run_steps_async(conn, op, PERFORM, _unique)


def _standby(conn: asyncpg.Connection, reason: str) -> StorageUnavailable:
    """The error for a connection found on a server that takes no writes, which is closed: the pool's next
    connection goes through the choice of host again (or the proxy's), and finds the primary."""
    if not conn.is_closed():
        conn.terminate()
    return StorageUnavailable(f"PostgreSQL is unavailable: no writable primary ({reason})")


class PostgresDriver(Driver):
    engine = "postgresql"

    def __init__(self, url: str, *, pool_size: int, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        super().__init__(url, pool_size=pool_size, lock_timeout=lock_timeout)
        self.dsn, self.schema = _split_url(url)
        self._pool: asyncpg.Pool | None = None
        self._owner_conn: asyncpg.Connection | None = None
        self._owner_key: int | None = None
        self._owner_guard = asyncio.Lock()
        self._open_reported = 0  # this pool's part of promopool_database_connections{state="open"}

    async def connect(self) -> None:
        # lock_timeout: a statement waiting longer for a lock (a pool's row held by another transaction)
        # fails, answered 503 storage_busy, rather than hold its request without limit.
        settings = {"lock_timeout": f"{round(self.lock_timeout * 1000)}ms"}
        if self.schema:
            settings["search_path"] = self.schema
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn,
                min_size=min(2, self.pool_size),
                max_size=self.pool_size,
                server_settings=settings,
                init=self._init_connection,
            )
        # Any refusal (no such database or role, a wrong password, a malformed URL) as well as an outage.
        except (*CONNECTION_ERRORS, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
            raise cannot_open("PostgreSQL", self.url, exc, postgres_hint(self.url, exc)) from exc
        metrics.CONNECTIONS_MAX.inc(self.pool_size)
        self._report_open()

    def _report_open(self) -> None:
        """Bring this pool's part of the open-connections gauge up to date (asked at each acquire: the pool
        opens connections then, and closes idle ones between)."""
        size = self._pool.get_size() if self._pool is not None else 0
        if size != self._open_reported:
            metrics.CONNECTIONS_OPEN.inc(size - self._open_reported)
            self._open_reported = size

    @staticmethod
    async def _init_connection(conn: asyncpg.Connection) -> None:
        await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")

    async def close(self) -> None:
        if self._owner_conn is not None:  # its lock goes with it: this process runs no job any more
            await self._owner_conn.close()
            self._owner_conn = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
            metrics.CONNECTIONS_MAX.dec(self.pool_size)
            self._report_open()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection to a writable server; connection failures become StorageUnavailable."""
        if self._pool is None:
            raise StorageUnavailable("store is not connected")
        conn: asyncpg.Connection | None = None
        try:
            async with self._pool.acquire() as conn:
                self._report_open()
                metrics.CONNECTIONS_IN_USE.inc()
                try:
                    if _read_only(conn):
                        raise _standby(conn, "the server takes no writes")
                    try:
                        yield conn
                    except READ_ONLY_ERRORS as exc:
                        # The server was demoted under us (or never was the primary): closed before the pool
                        # takes it back, so that the pool's next connection finds the primary.
                        raise _standby(conn, str(exc)) from exc
                finally:
                    metrics.CONNECTIONS_IN_USE.dec()
        except asyncpg.LockNotAvailableError as exc:  # lock_timeout; the transaction was rolled back
            raise StorageBusy(
                f"the database is busy: a lock was not granted within {self.lock_timeout:g} s; retry"
            ) from exc
        except CONNECTION_ERRORS as exc:
            raise StorageUnavailable(f"PostgreSQL is unavailable: {exc}") from exc
        except (asyncpg.InterfaceError, asyncpg.InternalClientError) as exc:
            # From the work on the connection, or from its release: the pool resets a connection it takes
            # back, which fails the same way when the server dropped it mid-transaction.
            if conn is None or not _connection_lost(conn):
                raise  # a bug in how the connection was used
            raise StorageUnavailable(f"PostgreSQL is unavailable: {exc}") from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.connection() as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def paged(self) -> AsyncIterator[asyncpg.Connection]:
        """A read-only snapshot whose ``ORDER BY … LIMIT`` pages walk their index whatever the statistics.

        Before ANALYZE has seen a freshly imported pool, the planner otherwise fetches the whole rest of the
        pool and sorts it for every page (measured: ~100-250 ms a page on 1M codes, against 0.2 ms).
        """
        async with self.connection() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            await conn.execute("SET LOCAL enable_sort = off")
            yield conn

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[SnapshotReader[Any]]:
        # Its reads are pages too (whole tables by key), of freshly copied tables not yet analyzed among them.
        async with self.paged() as conn:
            yield lambda op: run(conn, op)

    async def _write(self, op: Op[T]) -> T:
        async with self.transaction() as conn:
            return await run(conn, op)

    async def _read(self, op: Op[T], *, paged: bool) -> T:
        async with self.paged() if paged else self.connection() as conn:
            return await run(conn, op)

    async def _claim(self, account_id: int, pool_id: int, wanted: int, now: datetime) -> list[Code]:
        async with self.connection() as conn:
            with _pool_refusals(pool_id):
                rows = await conn.fetch(CLAIM_SQL, account_id, pool_id, wanted, now, hour_of(now))
        return _in_order(rows)

    async def job_owner(self) -> str:
        """The key of this process's lock, held (taken again on a new connection if that one was lost)."""
        async with self._owner_guard:
            if self._owner_conn is None or self._owner_conn.is_closed():
                try:
                    conn = await asyncpg.connect(self.dsn)
                    key = self._owner_key or secrets.randbelow(2**31 - 1) + 1
                    while not await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", JOB_OWNERS, key):
                        key = secrets.randbelow(2**31 - 1) + 1  # another live process's: ours must be unique
                except CONNECTION_ERRORS as exc:
                    raise StorageUnavailable(f"PostgreSQL is unavailable: {exc}") from exc
                self._owner_conn, self._owner_key = conn, key
            return str(self._owner_key)

    async def gone_owners(self, owners: Collection[str]) -> set[str]:
        if self._owner_conn is not None:  # our jobs stay ours: hold the lock again if its connection was lost
            await self.job_owner()
        async with self.connection() as conn:
            held = await conn.fetch(HELD_OWNERS, JOB_OWNERS)
        return set(owners) - {str(row["objid"]) for row in held}

    async def migrate(self, now: datetime) -> list[int]:
        async with self.transaction() as conn:
            # Waits for another migrator, or for transactions using a table being altered, are not bounded.
            await conn.execute("SET LOCAL lock_timeout = 0")
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            if self.schema:
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            return await run(conn, apply(load_migrations("postgres"), now))
