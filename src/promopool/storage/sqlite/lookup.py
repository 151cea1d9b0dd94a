"""Transitional: the lookup (``storage/ops/lookup.py``) as the sqlite mixin of redemptions calls it."""

from __future__ import annotations

import sqlite3

from promopool.domain import Code, Pool
from promopool.storage.ops import lookup
from promopool.storage.rows import qualified
from promopool.storage.sqlite.driver import run

__all__ = ["find_code", "qualified"]


def find_code(
    conn: sqlite3.Connection, account_id: int, value: str, pool_id: int | None
) -> tuple[Code, Pool] | None:
    return run(conn, lookup.find_code(account_id, value, pool_id))
