"""Transitional: the import as the postgres jobs mixin calls it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from promopool.storage.ops.codes import insert_codes
from promopool.storage.postgres.driver import run


async def insert_values(conn: asyncpg.Connection, pool_id: int, values: Sequence[str], now: datetime) -> int:
    return await run(conn, insert_codes(pool_id, values, now))
