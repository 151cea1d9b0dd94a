"""Pools and their settings (postgres engine)."""

from __future__ import annotations

import asyncpg

from promopool.domain import Pool, PoolSettings
from promopool.domain.errors import PoolNotFound
from promopool.domain.normalization import Normalization
from promopool.storage.base import CREATE_POOL_SCOPE, key_reused
from promopool.storage.postgres.base import (
    POOL_COLUMNS,
    PostgresBase,
    pool_of,
)
from promopool.storage.postgres.lookup import refuse_collisions


async def _replay(conn: asyncpg.Connection, account_id: int, key: str) -> Pool:
    """The pool an earlier request created with ``key``."""
    found = await conn.fetchrow(
        "SELECT scope, result_id FROM idempotency_keys WHERE account_id = $1 AND key = $2", account_id, key
    )
    if found is None or found["scope"] != CREATE_POOL_SCOPE:
        raise key_reused(key)
    row = await conn.fetchrow(
        f"SELECT {POOL_COLUMNS} FROM pools WHERE id = $1 AND account_id = $2", found["result_id"], account_id
    )
    if row is None:
        raise PoolNotFound(found["result_id"])
    return pool_of(row)


class PostgresPools(PostgresBase):
    async def create_pool(
        self, *, account_id: int, name: str, settings: PoolSettings, idempotency_key: str | None = None
    ) -> tuple[Pool, bool]:
        now = self.clock()
        async with self._tx() as conn:
            if idempotency_key is not None:
                # Recorded first: a concurrent twin waits here for our commit, then replays our pool.
                reserved = await conn.fetchval(
                    "INSERT INTO idempotency_keys (account_id, key, scope, created_at)"
                    " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
                    account_id,
                    idempotency_key,
                    CREATE_POOL_SCOPE,
                    now,
                )
                if not reserved:
                    return await _replay(conn, account_id, idempotency_key), True
            row = await conn.fetchrow(
                "INSERT INTO pools (account_id, name, max_uses, per_profile_limit, expires_at, public_fetch,"
                " created_at, case_insensitive, ignore_separators, holder_only)"
                f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {POOL_COLUMNS}",
                account_id,
                name,
                settings.max_uses,
                settings.per_profile_limit,
                settings.expires_at,
                settings.public_fetch,
                now,
                settings.case_insensitive,
                settings.ignore_separators,
                settings.holder_only,
            )
            if idempotency_key is not None:
                await conn.execute(
                    "UPDATE idempotency_keys SET result_id = $3 WHERE account_id = $1 AND key = $2",
                    account_id,
                    idempotency_key,
                    row["id"],
                )
        return pool_of(row), False

    async def list_pools(self, *, account_id: int) -> list[Pool]:
        rows = await self._fetch(
            f"SELECT {POOL_COLUMNS} FROM pools WHERE account_id = $1 ORDER BY id", account_id
        )
        return [pool_of(row) for row in rows]

    async def get_pool(self, *, account_id: int, pool_id: int) -> Pool | None:
        row = await self._fetchrow(
            f"SELECT {POOL_COLUMNS} FROM pools WHERE id = $1 AND account_id = $2", pool_id, account_id
        )
        return None if row is None else pool_of(row)

    async def update_pool(
        self, *, account_id: int, pool_id: int, name: str, settings: PoolSettings
    ) -> Pool | None:
        async with self._tx() as conn:
            # The row lock keeps imports (which take it too) out while the codes are checked for collisions.
            old = await conn.fetchrow(
                "SELECT case_insensitive, ignore_separators FROM pools WHERE id = $1 AND account_id = $2"
                " FOR UPDATE",
                pool_id,
                account_id,
            )
            if old is None:
                return None
            await refuse_collisions(conn, pool_id, Normalization(*old), settings.normalization)
            row = await conn.fetchrow(
                "UPDATE pools SET name = $3, max_uses = $4, per_profile_limit = $5, expires_at = $6,"
                " public_fetch = $7, case_insensitive = $8, ignore_separators = $9, holder_only = $10"
                f" WHERE id = $1 AND account_id = $2 RETURNING {POOL_COLUMNS}",
                pool_id,
                account_id,
                name,
                settings.max_uses,
                settings.per_profile_limit,
                settings.expires_at,
                settings.public_fetch,
                settings.case_insensitive,
                settings.ignore_separators,
                settings.holder_only,
            )
        return None if row is None else pool_of(row)

    async def delete_pool(self, *, account_id: int, pool_id: int) -> bool:
        async with self._conn() as conn:
            status = await conn.execute(
                "DELETE FROM pools WHERE id = $1 AND account_id = $2", pool_id, account_id
            )
        return bool(status != "DELETE 0")
