"""The postgres engine's connection handling, row conversions and migrations; the data operations are
mixins in the sibling modules."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from promopool.domain import Account, Code, CodeState, Pool, PoolCounts, PoolSettings
from promopool.domain.errors import (
    StorageUnavailable,
)
from promopool.storage.base import (
    Clock,
    Store,
    load_migrations,
    utc_now,
)
from promopool.storage.failures import cannot_open, postgres_hint

POOL_COLUMNS = (
    "id, account_id, name, max_uses, per_profile_limit, expires_at, public_fetch,"
    " n_available, n_issued, n_redeemed, created_at, case_insensitive, ignore_separators, holder_only"
)
CODE_COLUMNS = (
    "id, pool_id, value, state, description, usage_count, expires_at, issued_at, profile_id, created_at"
)

CONNECTION_ERRORS = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.CannotConnectNowError,
    asyncpg.OperatorInterventionError,
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


MIGRATION_LOCK = 7_311_820_001  # pg_advisory_xact_lock key: one migrator at a time across processes


def _split_url(url: str) -> tuple[str, str | None]:
    """Take promopool's own ``schema`` parameter out of the URL; the rest goes to asyncpg."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), None)
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    scheme = "postgresql" if parts.scheme == "postgres" else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, rest, parts.fragment)), schema


def account_of(row: asyncpg.Record) -> Account:
    return Account(id=row["id"], name=row["name"], public_key=row["public_key"], created_at=row["created_at"])


def pool_of(row: asyncpg.Record) -> Pool:
    return Pool(
        id=row["id"],
        account_id=row["account_id"],
        name=row["name"],
        settings=PoolSettings(
            max_uses=row["max_uses"],
            per_profile_limit=row["per_profile_limit"],
            expires_at=row["expires_at"],
            public_fetch=row["public_fetch"],
            case_insensitive=row["case_insensitive"],
            ignore_separators=row["ignore_separators"],
            holder_only=row["holder_only"],
        ),
        counts=PoolCounts(available=row["n_available"], issued=row["n_issued"], redeemed=row["n_redeemed"]),
        created_at=row["created_at"],
    )


def code_of(row: asyncpg.Record) -> Code:
    return Code(
        id=row["id"],
        pool_id=row["pool_id"],
        value=row["value"],
        state=CodeState(row["state"]),
        description=row["description"],
        usage_count=row["usage_count"],
        expires_at=row["expires_at"],
        issued_at=row["issued_at"],
        profile_id=row["profile_id"],
        created_at=row["created_at"],
    )


class PostgresBase(Store):
    engine = "postgresql"

    def __init__(self, url: str, *, clock: Clock = utc_now, pool_size: int = 10) -> None:
        super().__init__(url, clock=clock, pool_size=pool_size)
        self._dsn, self.schema = _split_url(url)
        self._pool: asyncpg.Pool | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------
    async def connect(self) -> None:
        settings = {"search_path": self.schema} if self.schema else {}
        try:
            self._pool = await asyncpg.create_pool(
                self._dsn,
                min_size=min(2, self.pool_size),
                max_size=self.pool_size,
                server_settings=settings,
                init=self._init_connection,
            )
        # Any refusal (no such database or role, a wrong password, a malformed URL) as well as an outage.
        except (*CONNECTION_ERRORS, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
            raise cannot_open("PostgreSQL", self.url, exc, postgres_hint(self.url, exc)) from exc

    @staticmethod
    async def _init_connection(conn: asyncpg.Connection) -> None:
        await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[asyncpg.Connection]:
        if self._pool is None:
            raise StorageUnavailable("store is not connected")
        conn: asyncpg.Connection | None = None
        try:
            async with self._pool.acquire() as conn:
                yield conn
        except CONNECTION_ERRORS as exc:
            raise StorageUnavailable(f"PostgreSQL is unavailable: {exc}") from exc
        except (asyncpg.InterfaceError, asyncpg.InternalClientError) as exc:
            # From the work on the connection, or from its release: the pool resets a connection it takes
            # back, which fails the same way when the server dropped it mid-transaction.
            if conn is None or not _connection_lost(conn):
                raise  # a bug in how the connection was used
            raise StorageUnavailable(f"PostgreSQL is unavailable: {exc}") from exc

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[asyncpg.Connection]:
        async with self._conn() as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def _ordered_read(self) -> AsyncIterator[asyncpg.Connection]:
        """A read-only snapshot whose ``ORDER BY … LIMIT`` pages walk their index whatever the statistics.

        Before ANALYZE has seen a freshly imported pool, the planner otherwise fetches the whole rest of the
        pool and sorts it for every page (measured: ~100-250 ms a page on 1M codes, against 0.2 ms).
        """
        async with self._conn() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            await conn.execute("SET LOCAL enable_sort = off")
            yield conn

    async def _fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        async with self._conn() as conn:
            return await conn.fetchrow(sql, *args)

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with self._conn() as conn:
            return list(await conn.fetch(sql, *args))

    async def migrate(self) -> list[int]:
        applied = []
        async with self._tx() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            if self.schema:
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)"
            )
            done = {row[0] for row in await conn.fetch("SELECT version FROM schema_migrations")}
            for migration in load_migrations("postgres"):
                if migration.version in done:
                    continue
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    self.clock(),
                )
                applied.append(migration.version)
        return applied

    async def ping(self) -> None:
        await self._fetchrow("SELECT 1")
