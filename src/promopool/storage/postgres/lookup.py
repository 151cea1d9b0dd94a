"""Finding codes by a typed value under each pool's normalization (postgres engine).

The rules live in ``domain/normalization.py``; these helpers read the candidates sharing a lookup key
(index ``codes_lookup``) inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from promopool.domain import Code, Pool
from promopool.domain.normalization import (
    Normalization,
    best_match,
    lookup_key,
)
from promopool.storage.postgres.base import CODE_COLUMNS, POOL_COLUMNS, code_of, pool_of


def qualified(columns: str, alias: str, prefix: str = "") -> str:
    """``columns`` read from ``alias``, each renamed with ``prefix`` (so that two tables' columns can share
    one record)."""
    return ", ".join(f"{alias}.{c.strip()} AS {prefix}{c.strip()}" for c in columns.split(","))


FIND_SQL = (
    f"SELECT {qualified(CODE_COLUMNS, 'c')}, {qualified(POOL_COLUMNS, 'p', 'pool_')}"
    " FROM codes c JOIN pools p ON p.id = c.pool_id"
    " WHERE c.lookup_key = $1 AND p.account_id = $2 AND ($3::bigint IS NULL OR c.pool_id = $3)"
)


def pool_of_prefixed(row: asyncpg.Record) -> Pool:
    return pool_of(
        {key.removeprefix("pool_"): value for key, value in row.items() if key.startswith("pool_")}
    )


async def find_code(
    conn: asyncpg.Connection, account_id: int, value: str, pool_id: int | None
) -> tuple[Code, Pool] | None:
    """The code of the account (of ``pool_id`` when given) that ``value`` means, with its pool."""
    rows = await conn.fetch(FIND_SQL, lookup_key(value), account_id, pool_id)
    found = [(code_of(row), pool_of_prefixed(row)) for row in rows]
    return best_match(
        value, ((pair, pair[0].value, pair[1].settings.normalization, pair[1].id) for pair in found)
    )


async def same_code_in_pool(conn: asyncpg.Connection, pool_id: int, value: str) -> str | None:
    """The pool's code that ``value`` equals under the pool's normalization, if any."""
    flags = await conn.fetchrow(
        "SELECT case_insensitive, ignore_separators FROM pools WHERE id = $1", pool_id
    )
    normalization = Normalization(*flags)
    stored = await stored_alike(conn, pool_id, [value])
    return next((s for s in stored if normalization.matches(s, value)), None)


async def stored_alike(conn: asyncpg.Connection, pool_id: int, values: Sequence[str]) -> list[str]:
    """The pool's codes sharing a lookup key with any of ``values``."""
    rows = await conn.fetch(
        "SELECT value FROM codes WHERE pool_id = $1 AND lookup_key = ANY($2::text[])",
        pool_id,
        sorted({lookup_key(value) for value in values}),
    )
    return [row[0] for row in rows]
