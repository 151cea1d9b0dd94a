"""Pools and their settings (sqlite engine)."""

from __future__ import annotations

import sqlite3

from promopool.domain import Pool, PoolSettings
from promopool.domain.errors import PoolNotFound
from promopool.domain.normalization import Normalization
from promopool.storage.base import CREATE_POOL_SCOPE, key_reused
from promopool.storage.sqlite.base import (
    POOL_COLUMNS,
    SQLiteBase,
    pool_of,
    ts,
)
from promopool.storage.sqlite.lookup import refuse_collisions


class SQLitePools(SQLiteBase):
    async def create_pool(
        self, *, account_id: int, name: str, settings: PoolSettings, idempotency_key: str | None = None
    ) -> tuple[Pool, bool]:
        now = ts(self.clock())
        expires = None if settings.expires_at is None else ts(settings.expires_at)

        def op(conn: sqlite3.Connection) -> tuple[Pool, bool]:
            if idempotency_key is not None:
                found = conn.execute(
                    "SELECT scope, result_id FROM idempotency_keys WHERE account_id = ? AND key = ?",
                    (account_id, idempotency_key),
                ).fetchone()
                if found is not None:
                    if found[0] != CREATE_POOL_SCOPE:
                        raise key_reused(idempotency_key)
                    earlier = conn.execute(
                        f"SELECT {POOL_COLUMNS} FROM pools WHERE id = ? AND account_id = ?",
                        (found[1], account_id),
                    ).fetchone()
                    if earlier is None:
                        raise PoolNotFound(found[1])
                    return pool_of(earlier), True
            row = conn.execute(
                "INSERT INTO pools (account_id, name, max_uses, per_profile_limit, expires_at, public_fetch,"
                " created_at, case_insensitive, ignore_separators, holder_only)"
                f" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {POOL_COLUMNS}",
                (
                    account_id,
                    name,
                    settings.max_uses,
                    settings.per_profile_limit,
                    expires,
                    int(settings.public_fetch),
                    now,
                    int(settings.case_insensitive),
                    int(settings.ignore_separators),
                    int(settings.holder_only),
                ),
            ).fetchone()
            pool = pool_of(row)
            if idempotency_key is not None:
                conn.execute(
                    "INSERT INTO idempotency_keys VALUES (?, ?, ?, ?, ?)",
                    (account_id, idempotency_key, CREATE_POOL_SCOPE, pool.id, now),
                )
            return pool, False

        return await self._write(op)

    async def list_pools(self, *, account_id: int) -> list[Pool]:
        sql = f"SELECT {POOL_COLUMNS} FROM pools WHERE account_id = ? ORDER BY id"
        rows = await self._read(lambda conn: conn.execute(sql, (account_id,)).fetchall())
        return [pool_of(row) for row in rows]

    async def get_pool(self, *, account_id: int, pool_id: int) -> Pool | None:
        sql = f"SELECT {POOL_COLUMNS} FROM pools WHERE id = ? AND account_id = ?"
        row = await self._read(lambda conn: conn.execute(sql, (pool_id, account_id)).fetchone())
        return None if row is None else pool_of(row)

    async def update_pool(
        self, *, account_id: int, pool_id: int, name: str, settings: PoolSettings
    ) -> Pool | None:
        expires = None if settings.expires_at is None else ts(settings.expires_at)

        def op(conn: sqlite3.Connection) -> Pool | None:
            old = conn.execute(
                "SELECT case_insensitive, ignore_separators FROM pools WHERE id = ? AND account_id = ?",
                (pool_id, account_id),
            ).fetchone()
            if old is None:
                return None
            refuse_collisions(
                conn, pool_id, Normalization(bool(old[0]), bool(old[1])), settings.normalization
            )
            row = conn.execute(
                "UPDATE pools SET name = ?, max_uses = ?, per_profile_limit = ?, expires_at = ?,"
                " public_fetch = ?, case_insensitive = ?, ignore_separators = ?, holder_only = ?"
                f" WHERE id = ? AND account_id = ? RETURNING {POOL_COLUMNS}",
                (
                    name,
                    settings.max_uses,
                    settings.per_profile_limit,
                    expires,
                    int(settings.public_fetch),
                    int(settings.case_insensitive),
                    int(settings.ignore_separators),
                    int(settings.holder_only),
                    pool_id,
                    account_id,
                ),
            ).fetchone()
            return None if row is None else pool_of(row)

        return await self._write(op)

    async def delete_pool(self, *, account_id: int, pool_id: int) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("DELETE FROM pools WHERE id = ? AND account_id = ?", (pool_id, account_id))
            return cur.rowcount > 0

        return await self._write(op)
