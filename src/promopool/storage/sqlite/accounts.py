"""Accounts and API keys (sqlite engine)."""

from __future__ import annotations

import sqlite3

from promopool.domain import Account
from promopool.domain.errors import (
    AlreadyExists,
)
from promopool.storage.sqlite.base import (
    SQLiteBase,
    account_of,
    ts,
)


class SQLiteAccounts(SQLiteBase):
    async def create_account(self, *, name: str, public_key: str, key_hash: str) -> Account:
        now = ts(self.clock())

        def op(conn: sqlite3.Connection) -> Account:
            try:
                row = conn.execute(
                    "INSERT INTO accounts (name, public_key, created_at) VALUES (?, ?, ?)"
                    " RETURNING id, name, public_key, created_at",
                    (name, public_key, now),
                ).fetchone()
            except sqlite3.IntegrityError as exc:
                raise AlreadyExists(f"an account named {name!r} already exists", name=name) from exc
            conn.execute("INSERT INTO api_keys VALUES (?, ?, ?)", (key_hash, row[0], now))
            return account_of(row)

        return await self._write(op)

    async def add_api_key(self, *, account_id: int, key_hash: str) -> None:
        now = ts(self.clock())
        await self._write(
            lambda conn: conn.execute("INSERT INTO api_keys VALUES (?, ?, ?)", (key_hash, account_id, now))
        )

    async def _account_where(self, clause: str, value: str) -> Account | None:
        sql = f"SELECT a.id, a.name, a.public_key, a.created_at FROM accounts a {clause}"
        row = await self._read(lambda conn: conn.execute(sql, (value,)).fetchone())
        return None if row is None else account_of(row)

    async def account_by_key_hash(self, key_hash: str) -> Account | None:
        return await self._account_where(
            "JOIN api_keys k ON k.account_id = a.id WHERE k.key_hash = ?", key_hash
        )

    async def account_by_public_key(self, public_key: str) -> Account | None:
        return await self._account_where("WHERE a.public_key = ?", public_key)

    async def account_by_name(self, name: str) -> Account | None:
        return await self._account_where("WHERE a.name = ?", name)

    async def count_accounts(self) -> int:
        row = await self._read(lambda conn: conn.execute("SELECT count(*) FROM accounts").fetchone())
        return int(row[0])
