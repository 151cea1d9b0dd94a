"""PostgreSQL engine (asyncpg): for several workers or machines sharing one database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from promopool.domain import Account, Claimed, Code, CodeState, Pool, PoolCounts, PoolSettings
from promopool.domain.errors import (
    AlreadyExists,
    CodeNotFound,
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

POOL_COLUMNS = (
    "id, account_id, name, max_uses, per_profile_limit, expires_at, public_fetch,"
    " n_available, n_issued, n_redeemed, created_at"
)
CODE_COLUMNS = (
    "id, pool_id, value, state, description, usage_count, expires_at, issued_at, profile_id, created_at"
)

# Claims read forward from the pool's cursor along (pool_id, seq): rows behind the cursor, and the dead
# index entries their updates leave, are never visited again, so the cost does not grow as the pool drains.
# `ahead` deliberately filters on nothing but the index columns: with a state filter in it, the planner's
# guess for that filter (before ANALYZE has run on freshly imported codes) can make it scan and sort the
# whole pool instead. The state is checked in the UPDATE, on the latest row version, so a code changed
# concurrently by another path (attach, delete) is skipped, never handed out twice. The cursor moves past
# every row scanned (`scanned_to`), taken or not.
TAKE_SQL = f"""
WITH ahead AS (
    SELECT id, seq FROM codes WHERE pool_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3
), taken AS (
    UPDATE codes SET state = 'issued', issued_at = $4
    FROM ahead
    WHERE codes.id = ahead.id AND codes.state = 'available'
      AND (codes.expires_at IS NULL OR codes.expires_at > $4)
    RETURNING codes.seq, {", ".join("codes." + c.strip() for c in CODE_COLUMNS.split(","))}
)
SELECT scanned.scanned_to, taken.*
FROM (SELECT max(seq) AS scanned_to FROM ahead) AS scanned LEFT JOIN taken ON true
"""

CONNECTION_ERRORS = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.CannotConnectNowError,
    asyncpg.OperatorInterventionError,
)

MIGRATION_LOCK = 7_311_820_001  # pg_advisory_xact_lock key: one migrator at a time across processes


def _split_url(url: str) -> tuple[str, str | None]:
    """Take promopool's own ``schema`` parameter out of the URL; the rest goes to asyncpg."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), None)
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    scheme = "postgresql" if parts.scheme == "postgres" else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, rest, parts.fragment)), schema


def _account(row: asyncpg.Record) -> Account:
    return Account(id=row["id"], name=row["name"], public_key=row["public_key"], created_at=row["created_at"])


def _pool(row: asyncpg.Record) -> Pool:
    return Pool(
        id=row["id"],
        account_id=row["account_id"],
        name=row["name"],
        settings=PoolSettings(
            max_uses=row["max_uses"],
            per_profile_limit=row["per_profile_limit"],
            expires_at=row["expires_at"],
            public_fetch=row["public_fetch"],
        ),
        counts=PoolCounts(available=row["n_available"], issued=row["n_issued"], redeemed=row["n_redeemed"]),
        created_at=row["created_at"],
    )


def _code(row: asyncpg.Record) -> Code:
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


class PostgresStore(Store):
    engine = "postgresql"

    def __init__(self, url: str, *, clock: Clock = utc_now, pool_size: int = 10) -> None:
        super().__init__(url, clock=clock, pool_size=pool_size)
        self._dsn, self.schema = _split_url(url)
        self._pool: asyncpg.Pool | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------
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
        except CONNECTION_ERRORS as exc:
            raise StorageUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc

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
        try:
            async with self._pool.acquire() as conn:
                yield conn
        except CONNECTION_ERRORS as exc:
            raise StorageUnavailable(f"PostgreSQL is unavailable: {exc}") from exc

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[asyncpg.Connection]:
        async with self._conn() as conn, conn.transaction():
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

    # -- accounts ----------------------------------------------------------------------------------------
    async def create_account(self, *, name: str, public_key: str, key_hash: str) -> Account:
        now = self.clock()
        try:
            async with self._tx() as conn:
                row = await conn.fetchrow(
                    "INSERT INTO accounts (name, public_key, created_at) VALUES ($1, $2, $3)"
                    " RETURNING id, name, public_key, created_at",
                    name,
                    public_key,
                    now,
                )
                await conn.execute("INSERT INTO api_keys VALUES ($1, $2, $3)", key_hash, row["id"], now)
        except asyncpg.UniqueViolationError as exc:
            raise AlreadyExists(f"an account named {name!r} already exists", name=name) from exc
        return _account(row)

    async def add_api_key(self, *, account_id: int, key_hash: str) -> None:
        async with self._conn() as conn:
            await conn.execute("INSERT INTO api_keys VALUES ($1, $2, $3)", key_hash, account_id, self.clock())

    async def _account_where(self, clause: str, value: str) -> Account | None:
        row = await self._fetchrow(
            f"SELECT a.id, a.name, a.public_key, a.created_at FROM accounts a {clause}", value
        )
        return None if row is None else _account(row)

    async def account_by_key_hash(self, key_hash: str) -> Account | None:
        return await self._account_where(
            "JOIN api_keys k ON k.account_id = a.id WHERE k.key_hash = $1", key_hash
        )

    async def account_by_public_key(self, public_key: str) -> Account | None:
        return await self._account_where("WHERE a.public_key = $1", public_key)

    async def account_by_name(self, name: str) -> Account | None:
        return await self._account_where("WHERE a.name = $1", name)

    async def count_accounts(self) -> int:
        row = await self._fetchrow("SELECT count(*) FROM accounts")
        assert row is not None
        return int(row[0])

    # -- pools -------------------------------------------------------------------------------------------
    async def create_pool(self, *, account_id: int, name: str, settings: PoolSettings) -> Pool:
        row = await self._fetchrow(
            "INSERT INTO pools (account_id, name, max_uses, per_profile_limit, expires_at, public_fetch,"
            f" created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {POOL_COLUMNS}",
            account_id,
            name,
            settings.max_uses,
            settings.per_profile_limit,
            settings.expires_at,
            settings.public_fetch,
            self.clock(),
        )
        assert row is not None
        return _pool(row)

    async def list_pools(self, *, account_id: int) -> list[Pool]:
        rows = await self._fetch(
            f"SELECT {POOL_COLUMNS} FROM pools WHERE account_id = $1 ORDER BY id", account_id
        )
        return [_pool(row) for row in rows]

    async def get_pool(self, *, account_id: int, pool_id: int) -> Pool | None:
        row = await self._fetchrow(
            f"SELECT {POOL_COLUMNS} FROM pools WHERE id = $1 AND account_id = $2", pool_id, account_id
        )
        return None if row is None else _pool(row)

    async def update_pool(
        self, *, account_id: int, pool_id: int, name: str, settings: PoolSettings
    ) -> Pool | None:
        row = await self._fetchrow(
            "UPDATE pools SET name = $3, max_uses = $4, per_profile_limit = $5, expires_at = $6,"
            f" public_fetch = $7 WHERE id = $1 AND account_id = $2 RETURNING {POOL_COLUMNS}",
            pool_id,
            account_id,
            name,
            settings.max_uses,
            settings.per_profile_limit,
            settings.expires_at,
            settings.public_fetch,
        )
        return None if row is None else _pool(row)

    async def delete_pool(self, *, account_id: int, pool_id: int) -> bool:
        async with self._conn() as conn:
            status = await conn.execute(
                "DELETE FROM pools WHERE id = $1 AND account_id = $2", pool_id, account_id
            )
        return bool(status != "DELETE 0")

    # -- codes -------------------------------------------------------------------------------------------
    async def insert_codes(self, *, pool_id: int, values: Sequence[str]) -> int:
        async with self._tx() as conn:
            await conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS import_codes (ord bigint, value text) ON COMMIT DELETE ROWS"
            )
            # Binary COPY into a session-private table first: the pool's row is locked only for the
            # INSERT … SELECT below, not while the batch streams in.
            await conn.copy_records_to_table(
                "import_codes", records=list(enumerate(values, start=1)), columns=["ord", "value"]
            )
            base = await conn.fetchval("SELECT last_seq FROM pools WHERE id = $1 FOR UPDATE", pool_id)
            if base is None:
                raise PoolNotFound(pool_id)
            inserted = await conn.fetchval(
                "WITH ins AS (INSERT INTO codes (pool_id, seq, value, created_at)"
                " SELECT $1, $2 + ord, value, $3 FROM import_codes ORDER BY ord"
                " ON CONFLICT DO NOTHING RETURNING 1) SELECT count(*) FROM ins",
                pool_id,
                base,
                self.clock(),
            )
            await conn.execute(
                "UPDATE pools SET last_seq = last_seq + $2, n_available = n_available + $3 WHERE id = $1",
                pool_id,
                len(values),
                inserted,
            )
        return int(inserted)

    async def list_codes(
        self, *, pool_id: int, state: CodeState | None, after: str | None, limit: int
    ) -> list[Code]:
        rows = await self._fetch(
            f"SELECT {CODE_COLUMNS} FROM codes WHERE pool_id = $1"
            " AND ($2::text IS NULL OR state = $2) AND ($3::text IS NULL OR value > $3)"
            " ORDER BY value LIMIT $4",
            pool_id,
            None if state is None else state.value,
            after,
            limit,
        )
        return [_code(row) for row in rows]

    async def get_code(self, *, pool_id: int, value: str) -> Code | None:
        row = await self._fetchrow(
            f"SELECT {CODE_COLUMNS} FROM codes WHERE pool_id = $1 AND value = $2", pool_id, value
        )
        return None if row is None else _code(row)

    async def delete_code(self, *, pool_id: int, value: str) -> bool:
        async with self._tx() as conn:
            state = await conn.fetchval(
                "DELETE FROM codes WHERE pool_id = $1 AND value = $2 RETURNING state", pool_id, value
            )
            if state is None:
                return False
            column = {"available": "n_available", "issued": "n_issued", "redeemed": "n_redeemed"}[state]
            await conn.execute(f"UPDATE pools SET {column} = {column} - 1 WHERE id = $1", pool_id)
        return True

    # -- claims ------------------------------------------------------------------------------------------
    async def claim_batch(
        self, account_id: int, pool_id: int, keys: Sequence[str | None]
    ) -> list[ClaimResult]:
        now = self.clock()
        scope = claim_scope(pool_id)
        plan = ClaimPlan(keys)
        async with self._tx() as conn:
            # The pool row lock orders claim batches of one pool across processes and servers; the
            # cursor read under it is therefore the latest.
            pool = await conn.fetchrow(
                "SELECT next_seq, expires_at FROM pools WHERE id = $1 AND account_id = $2 FOR UPDATE",
                pool_id,
                account_id,
            )
            if pool is None:
                raise PoolNotFound(pool_id)
            if pool["expires_at"] is not None and pool["expires_at"] <= now:
                raise PoolExpired(pool_id)
            if plan.keyed():
                await self._reserve_keys(conn, plan, account_id, scope, now)
            codes = await self._take(conn, pool_id, pool["next_seq"], plan.needed(), now)
            recorded = plan.assign(codes, pool_id)
            if recorded:
                await conn.execute(
                    "UPDATE idempotency_keys k SET result_id = v.id"
                    " FROM unnest($2::text[], $3::bigint[]) AS v(key, id)"
                    " WHERE k.account_id = $1 AND k.key = v.key",
                    account_id,
                    [key for key, _ in recorded],
                    [code.id for _, code in recorded],
                )
            if unserved := plan.unserved_keys():
                await conn.execute(
                    "DELETE FROM idempotency_keys WHERE account_id = $1 AND key = ANY($2::text[])",
                    account_id,
                    unserved,
                )
        return plan.results()

    async def _reserve_keys(
        self, conn: asyncpg.Connection, plan: ClaimPlan, account_id: int, scope: str, now: datetime
    ) -> None:
        """Replay keys seen before; record the new ones now, so a concurrent twin waits for us."""
        rows = await conn.fetch(
            "SELECT key, scope, result_id FROM idempotency_keys WHERE account_id = $1 AND key = ANY($2)",
            account_id,
            plan.keyed(),
        )
        for row in rows:
            plan.replay(
                row["key"], await self._replay(conn, scope, row["scope"], row["result_id"], row["key"])
            )
        new = [key for key in plan.keyed() if not plan.decided(key)]
        if not new:
            return
        inserted = {
            row[0]
            for row in await conn.fetch(
                "INSERT INTO idempotency_keys (account_id, key, scope, created_at)"
                " SELECT $1, key, $3, $4 FROM unnest($2::text[]) AS key ON CONFLICT DO NOTHING RETURNING key",
                account_id,
                new,
                scope,
                now,
            )
        }
        for key in new:
            if key not in inserted:  # taken meanwhile by a claim on another pool
                plan.replay(key, key_reused(key))

    async def _replay(
        self, conn: asyncpg.Connection, scope: str, used_scope: str, code_id: int | None, key: str
    ) -> ClaimResult:
        if used_scope != scope:
            return key_reused(key)
        row = await conn.fetchrow(f"SELECT {CODE_COLUMNS} FROM codes WHERE id = $1", code_id)
        if row is None:
            return CodeNotFound("the code claimed with this Idempotency-Key has since been deleted", key=key)
        return Claimed(_code(row), replayed=True)

    async def _take(
        self, conn: asyncpg.Connection, pool_id: int, cursor: int, wanted: int, now: datetime
    ) -> list[Code]:
        taken: list[asyncpg.Record] = []
        start = cursor
        while len(taken) < wanted:
            rows = await conn.fetch(TAKE_SQL, pool_id, cursor, wanted - len(taken), now)
            scanned_to = rows[0]["scanned_to"]
            if scanned_to is None:  # nothing ahead of the cursor: the pool is drained
                break
            taken.extend(row for row in rows if row["id"] is not None)
            cursor = scanned_to + 1
        if cursor != start:
            await conn.execute(
                "UPDATE pools SET next_seq = $2, n_available = n_available - $3, n_issued = n_issued + $3"
                " WHERE id = $1",
                pool_id,
                cursor,
                len(taken),
            )
        taken.sort(key=lambda row: row["seq"])
        return [_code(row) for row in taken]

    async def purge_idempotency_keys(self, *, older_than: datetime) -> int:
        async with self._conn() as conn:
            status = await conn.execute("DELETE FROM idempotency_keys WHERE created_at < $1", older_than)
        return int(status.split()[-1])
