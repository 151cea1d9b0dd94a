"""Transitional: the claim path as the postgres mixins of leases, devices and profiles call it."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from promopool.domain import Code
from promopool.storage.ops import claims
from promopool.storage.postgres.base import PostgresBase
from promopool.storage.postgres.driver import run


async def lock_claimable(conn: asyncpg.Connection, account_id: int, pool_id: int, now: datetime) -> int:
    return await run(conn, claims.lock_claimable(account_id, pool_id, now))


class PostgresClaims(PostgresBase):
    async def _take(
        self, conn: asyncpg.Connection, pool_id: int, cursor: int, wanted: int, now: datetime
    ) -> list[Code]:
        return await run(conn, claims.take(pool_id, cursor, wanted, now))
