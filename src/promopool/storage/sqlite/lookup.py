"""Finding codes by a typed value under each pool's normalization (sqlite engine).

The rules live in ``domain/normalization.py``; these helpers read the candidates sharing a lookup key
(index ``codes_lookup``) inside the caller's transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from promopool.domain import Code, Pool
from promopool.domain.normalization import (
    Normalization,
    best_match,
    lookup_key,
)
from promopool.storage.sqlite.base import CODE_COLUMNS, POOL_COLUMNS, code_of, pool_of


def qualified(columns: str, alias: str) -> str:
    return ", ".join(f"{alias}.{column.strip()}" for column in columns.split(","))


_N_CODE = len(CODE_COLUMNS.split(","))

FIND_SQL = (
    f"SELECT {qualified(CODE_COLUMNS, 'c')}, {qualified(POOL_COLUMNS, 'p')}"
    " FROM codes c JOIN pools p ON p.id = c.pool_id"
    " WHERE c.lookup_key = :key AND p.account_id = :account AND (:pool IS NULL OR c.pool_id = :pool)"
)


def find_code(
    conn: sqlite3.Connection, account_id: int, value: str, pool_id: int | None
) -> tuple[Code, Pool] | None:
    """The code of the account (of ``pool_id`` when given) that ``value`` means, with its pool."""
    params = {"key": lookup_key(value), "account": account_id, "pool": pool_id}
    rows = conn.execute(FIND_SQL, params).fetchall()
    found = [(code_of(row[:_N_CODE]), pool_of(row[_N_CODE:])) for row in rows]
    return best_match(
        value, ((pair, pair[0].value, pair[1].settings.normalization, pair[1].id) for pair in found)
    )


def same_code_in_pool(conn: sqlite3.Connection, pool_id: int, value: str) -> str | None:
    """The pool's code that ``value`` equals under the pool's normalization, if any."""
    flags = conn.execute(
        "SELECT case_insensitive, ignore_separators FROM pools WHERE id = ?", (pool_id,)
    ).fetchone()
    normalization = Normalization(bool(flags[0]), bool(flags[1]))
    return next((s for s in stored_alike(conn, pool_id, [value]) if normalization.matches(s, value)), None)


def stored_alike(conn: sqlite3.Connection, pool_id: int, values: Sequence[str]) -> list[str]:
    """The pool's codes sharing a lookup key with any of ``values``."""
    keys = json.dumps(sorted({lookup_key(value) for value in values}))
    rows = conn.execute(
        "SELECT value FROM codes WHERE pool_id = ? AND lookup_key IN (SELECT value FROM json_each(?))",
        (pool_id, keys),
    ).fetchall()
    return [row[0] for row in rows]
