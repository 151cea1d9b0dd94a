"""Test-only helpers for the promotion tests: per-code fields no use case sets yet.

Redemptions (which count ``usage``) and code descriptions have no use case of their own yet; these helpers
write the columns directly through each engine's own connection, so the tests can see them rendered.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from promopool.storage import Store
from promopool.storage.postgres import PostgresStore
from promopool.storage.sqlite import SQLiteStore
from promopool.storage.sqlite.base import ts


async def set_code_fields(
    store: Store,
    *,
    pool_id: int,
    value: str,
    description: str | None = None,
    usage: int | None = None,
    expires_at: datetime | None = None,
) -> None:
    changes: dict[str, Any] = {}
    if description is not None:
        changes["description"] = description
    if usage is not None:
        changes["usage_count"] = usage
    if expires_at is not None:
        changes["expires_at"] = expires_at
    if isinstance(store, SQLiteStore):
        params = [ts(v) if isinstance(v, datetime) else v for v in changes.values()]
        sets = ", ".join(f"{column} = ?" for column in changes)

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"UPDATE codes SET {sets} WHERE pool_id = ? AND value = ?", (*params, pool_id, value)
            )

        await store._write(op)
    else:
        assert isinstance(store, PostgresStore)
        sets = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=3))
        async with store._conn() as conn:
            await conn.execute(
                f"UPDATE codes SET {sets} WHERE pool_id = $1 AND value = $2",
                pool_id,
                value,
                *changes.values(),
            )
