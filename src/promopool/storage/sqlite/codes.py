"""Transitional: the import as the sqlite jobs mixin calls it."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from promopool.storage.ops.codes import insert_codes
from promopool.storage.rows import at
from promopool.storage.sqlite.driver import run


def insert_values(conn: sqlite3.Connection, pool_id: int, values: Sequence[str], now: str) -> int:
    return run(conn, insert_codes(pool_id, values, at(now)))
