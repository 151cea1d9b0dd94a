"""Transitional: what the postgres engine's remaining mixins (the areas not yet in ``storage/ops/``) use:
the driver's connections as ``_conn()`` / ``_tx()``."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

import asyncpg

from promopool.storage.core import Clock, utc_now
from promopool.storage.driver import DEFAULT_LOCK_TIMEOUT
from promopool.storage.postgres.driver import PostgresDriver
from promopool.storage.rows import CODE_COLUMNS, POOL_COLUMNS, account_of, code_of, pool_of
from promopool.storage.store import Store

__all__ = ["CODE_COLUMNS", "POOL_COLUMNS", "PostgresBase", "account_of", "code_of", "pool_of"]


class PostgresBase(Store):
    def __init__(
        self,
        url: str,
        *,
        clock: Clock = utc_now,
        pool_size: int = 10,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        self._db = PostgresDriver(url, pool_size=pool_size, lock_timeout=lock_timeout)
        super().__init__(self._db, clock=clock)

    def _conn(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        return self._db.connection()

    def _tx(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        return self._db.transaction()

    async def _fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        async with self._conn() as conn:
            return await conn.fetchrow(sql, *args)

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with self._conn() as conn:
            return list(await conn.fetch(sql, *args))
