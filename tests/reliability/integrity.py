"""Looking at a database directly (not through promopool): integrity checks and what was issued.

Used after faults, so it trusts nothing the server says about itself.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, closing
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

STATES = ("available", "issued", "redeemed")

# Invariants every engine must keep, as queries returning the offending rows (none when all is well).
INVARIANTS = {
    "pool counters equal the codes counted by state": """
        SELECT p.id FROM pools p LEFT JOIN (
            SELECT pool_id,
                   sum(CASE WHEN state = 'available' THEN 1 ELSE 0 END) AS a,
                   sum(CASE WHEN state = 'issued' THEN 1 ELSE 0 END) AS i,
                   sum(CASE WHEN state = 'redeemed' THEN 1 ELSE 0 END) AS r
            FROM codes GROUP BY pool_id) c ON c.pool_id = p.id
        WHERE p.n_available != coalesce(c.a, 0) OR p.n_issued != coalesce(c.i, 0)
           OR p.n_redeemed != coalesce(c.r, 0)""",
    "no two codes share (pool, seq)": (
        "SELECT pool_id, seq FROM codes GROUP BY pool_id, seq HAVING count(*) > 1"
    ),
    "no two codes share (pool, value)": (
        "SELECT pool_id, value FROM codes GROUP BY pool_id, value HAVING count(*) > 1"
    ),
    "every seq lies within the pool's numbering": """
        SELECT c.id FROM codes c JOIN pools p ON p.id = c.pool_id WHERE c.seq < 1 OR c.seq > p.last_seq""",
    "no available code behind the claim cursor": """
        SELECT c.id FROM codes c JOIN pools p ON p.id = c.pool_id
        WHERE c.state = 'available' AND c.seq < p.next_seq AND c.expires_at IS NULL""",
    "issued codes carry issued_at": "SELECT id FROM codes WHERE state = 'issued' AND issued_at IS NULL",
    "idempotency records point at existing codes": """
        SELECT k.key FROM idempotency_keys k LEFT JOIN codes c ON c.id = k.result_id
        WHERE k.result_id IS NOT NULL AND c.id IS NULL""",
}


def sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite:///")


@asynccontextmanager
async def pg_connection(url: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection on ``url``, inside its ``?schema=`` when it names one."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    schema = next((v for k, v in query if k == "schema"), None)
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    dsn = urlunsplit(("postgresql", parts.netloc, parts.path, rest, ""))
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema} if schema else {})
    try:
        yield conn
    finally:
        await conn.close()


async def query(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` (``?`` placeholders on SQLite, ``$n`` on PostgreSQL), straight from the database."""
    if url.startswith("sqlite:"):
        with closing(sqlite3.connect(sqlite_path(url))) as conn:
            return [tuple(row) for row in conn.execute(sql, args).fetchall()]
    async with pg_connection(url) as conn:
        return [tuple(row) for row in await conn.fetch(sql, *args)]


async def integrity_problems(url: str) -> list[str]:
    """Every broken invariant (empty when the database is sound). SQLite also runs its own checks."""
    problems = []
    if url.startswith("sqlite:"):
        with closing(sqlite3.connect(sqlite_path(url))) as conn:
            result = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            if result != ["ok"]:
                problems.append(f"PRAGMA integrity_check: {result[:5]}")
            broken = conn.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                problems.append(f"PRAGMA foreign_key_check: {broken[:5]}")
    for name, sql in INVARIANTS.items():
        rows = await query(url, sql)
        if rows:
            problems.append(f"{name}: {len(rows)} violations, e.g. {rows[:3]}")
    return problems


@dataclass(frozen=True)
class PoolRows:
    counters: dict[str, int]
    issued: set[str]
    total: int


async def pool_rows(url: str, pool_id: int) -> PoolRows:
    mark = "?" if url.startswith("sqlite:") else "$1"
    (counters,) = await query(
        url, f"SELECT n_available, n_issued, n_redeemed FROM pools WHERE id = {mark}", pool_id
    )
    issued = await query(url, f"SELECT value FROM codes WHERE pool_id = {mark} AND state = 'issued'", pool_id)
    (total,) = await query(url, f"SELECT count(*) FROM codes WHERE pool_id = {mark}", pool_id)
    return PoolRows(dict(zip(STATES, counters, strict=True)), {row[0] for row in issued}, int(total[0]))


# Columns a request that changes nothing may still write: an API key's last use is recorded whatever the
# request it authenticated came to (about once a minute, domain/keys.py).
BOOKKEEPING = {"api_keys": ("last_used_at",)}


async def table_dump(url: str) -> str:
    """Every row of every table as text, each table's rows sorted (to look for what must never be stored,
    and to compare a database before and after requests that must change nothing)."""
    async with TableDumper(url) as dumper:
        return await dumper.dump()


class TableDumper:
    """``table_dump`` over one open connection, for tests that dump after every request.

    Tables are found in the catalog, so a table a migration adds is compared without anyone listing it.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._exits = AsyncExitStack()
        self._sqlite: sqlite3.Connection | None = None
        self._pg: asyncpg.Connection | None = None

    async def __aenter__(self) -> TableDumper:
        if self.url.startswith("sqlite:"):
            self._sqlite = self._exits.enter_context(closing(sqlite3.connect(sqlite_path(self.url))))
        else:
            self._pg = await self._exits.enter_async_context(pg_connection(self.url))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._exits.aclose()

    async def dump(self) -> str:
        out = []
        if self._sqlite is not None:
            tables = self._sqlite.execute(
                "SELECT name FROM sqlite_master"
                " WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            ).fetchall()
            for (table,) in tables:
                cursor = self._sqlite.execute(f'SELECT * FROM "{table}"')
                skip = {i for i, d in enumerate(cursor.description) if d[0] in BOOKKEEPING.get(table, ())}
                rows = [tuple(v for i, v in enumerate(row) if i not in skip) for row in cursor.fetchall()]
                out += [f"{table}: " + line for line in sorted(repr(row) for row in rows)]
        else:
            assert self._pg is not None
            tables = await self._pg.fetch(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name"
            )
            for (table,) in tables:
                rows = await self._pg.fetch(
                    f'SELECT (row_to_json(t)::jsonb - $1::text[])::text FROM "{table}" t',
                    list(BOOKKEEPING.get(table, ())),
                )
                out += [f"{table}: " + line for line in sorted(row[0] for row in rows)]
        return "\n".join(out)
