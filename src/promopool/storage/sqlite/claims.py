"""Transitional: the claim path as the sqlite mixins of leases, devices and profiles call it."""

from __future__ import annotations

import sqlite3

from promopool.domain import Code
from promopool.storage.ops.claims import lock_claimable, take
from promopool.storage.rows import at
from promopool.storage.sqlite.base import SQLiteBase
from promopool.storage.sqlite.driver import run


def claimable_cursor(conn: sqlite3.Connection, account_id: int, pool_id: int, now: str) -> int:
    return run(conn, lock_claimable(account_id, pool_id, at(now)))


class SQLiteClaims(SQLiteBase):
    def _take(self, conn: sqlite3.Connection, pool_id: int, cursor: int, wanted: int, now: str) -> list[Code]:
        return run(conn, take(pool_id, cursor, wanted, at(now)))
