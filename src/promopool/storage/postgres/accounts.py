"""Accounts and API keys (postgres engine)."""

from __future__ import annotations

import asyncpg

from promopool.domain import Account
from promopool.domain.errors import (
    AlreadyExists,
)
from promopool.storage.postgres.base import (
    PostgresBase,
    account_of,
)


class PostgresAccounts(PostgresBase):
    async def create_account(self, *, name: str, public_key: str, key_hash: str) -> Account:
        now = self.clock()
        try:
            async with self._tx() as conn:
                row = await conn.fetchrow(
                    "INSERT INTO accounts (name, public_key, created_at) VALUES ($1, $2, $3)"
                    " RETURNING id, name, public_key, created_at",
                    name,
                    public_key,
                    now,
                )
                await conn.execute("INSERT INTO api_keys VALUES ($1, $2, $3)", key_hash, row["id"], now)
        except asyncpg.UniqueViolationError as exc:
            raise AlreadyExists(f"an account named {name!r} already exists", name=name) from exc
        return account_of(row)

    async def add_api_key(self, *, account_id: int, key_hash: str) -> None:
        async with self._conn() as conn:
            await conn.execute("INSERT INTO api_keys VALUES ($1, $2, $3)", key_hash, account_id, self.clock())

    async def _account_where(self, clause: str, value: str) -> Account | None:
        row = await self._fetchrow(
            f"SELECT a.id, a.name, a.public_key, a.created_at FROM accounts a {clause}", value
        )
        return None if row is None else account_of(row)

    async def account_by_key_hash(self, key_hash: str) -> Account | None:
        return await self._account_where(
            "JOIN api_keys k ON k.account_id = a.id WHERE k.key_hash = $1", key_hash
        )

    async def account_by_public_key(self, public_key: str) -> Account | None:
        return await self._account_where("WHERE a.public_key = $1", public_key)

    async def account_by_name(self, name: str) -> Account | None:
        return await self._account_where("WHERE a.name = $1", name)

    async def count_accounts(self) -> int:
        row = await self._fetchrow("SELECT count(*) FROM accounts")
        assert row is not None
        return int(row[0])
