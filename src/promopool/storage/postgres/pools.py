"""Pools and their settings (postgres engine)."""

from __future__ import annotations

from promopool.domain import Pool, PoolSettings
from promopool.storage.postgres.base import (
    POOL_COLUMNS,
    PostgresBase,
    pool_of,
)


class PostgresPools(PostgresBase):
    async def create_pool(self, *, account_id: int, name: str, settings: PoolSettings) -> Pool:
        row = await self._fetchrow(
            "INSERT INTO pools (account_id, name, max_uses, per_profile_limit, expires_at, public_fetch,"
            f" created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {POOL_COLUMNS}",
            account_id,
            name,
            settings.max_uses,
            settings.per_profile_limit,
            settings.expires_at,
            settings.public_fetch,
            self.clock(),
        )
        assert row is not None
        return pool_of(row)

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
        row = await self._fetchrow(
            "UPDATE pools SET name = $3, max_uses = $4, per_profile_limit = $5, expires_at = $6,"
            f" public_fetch = $7 WHERE id = $1 AND account_id = $2 RETURNING {POOL_COLUMNS}",
            pool_id,
            account_id,
            name,
            settings.max_uses,
            settings.per_profile_limit,
            settings.expires_at,
            settings.public_fetch,
        )
        return None if row is None else pool_of(row)

    async def delete_pool(self, *, account_id: int, pool_id: int) -> bool:
        async with self._conn() as conn:
            status = await conn.execute(
                "DELETE FROM pools WHERE id = $1 AND account_id = $2", pool_id, account_id
            )
        return bool(status != "DELETE 0")
