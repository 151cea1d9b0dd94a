"""Transitional: the lookup (``storage/ops/lookup.py``) as the postgres mixin of redemptions calls it."""

from __future__ import annotations

import asyncpg

from promopool.domain import Code, Pool
from promopool.storage.ops import lookup
from promopool.storage.postgres.driver import run
from promopool.storage.rows import qualified

__all__ = ["find_code", "qualified"]


async def find_code(
    conn: asyncpg.Connection, account_id: int, value: str, pool_id: int | None
) -> tuple[Code, Pool] | None:
    return await run(conn, lookup.find_code(account_id, value, pool_id))
