"""Accounts, API keys and the keys' checksum credentials (the SuperSaaS dialect)."""

from __future__ import annotations

from datetime import datetime

from promopool.domain import Account, ApiKeyInfo
from promopool.domain.errors import AlreadyExists
from promopool.storage.core import StoreCore
from promopool.storage.driver import Execute, Fetch, FetchRow, FetchVal, Op, UniqueViolation
from promopool.storage.rows import ACCOUNT_COLUMNS, account_of, at, qualified

ADD_KEY = "INSERT INTO api_keys (key_hash, account_id, created_at) VALUES ($1, $2, $3)"


def create_account(name: str, public_key: str, key_hash: str, now: datetime) -> Op[Account]:
    try:
        row = yield FetchRow(
            "INSERT INTO accounts (name, public_key, created_at) VALUES ($1, $2, $3)"
            f" RETURNING {ACCOUNT_COLUMNS}",
            name,
            public_key,
            now,
        )
        yield Execute(ADD_KEY, key_hash, row["id"], now)
    except UniqueViolation as exc:
        raise AlreadyExists(f"an account named {name!r} already exists", name=name) from exc
    return account_of(row)


def add_api_key(account_id: int, key_hash: str, now: datetime) -> Op[None]:
    yield Execute(ADD_KEY, key_hash, account_id, now)


def list_api_keys(account_id: int) -> Op[list[ApiKeyInfo]]:
    rows = yield Fetch(
        "SELECT key_hash, created_at FROM api_keys WHERE account_id = $1 ORDER BY created_at, key_hash",
        account_id,
    )
    return [ApiKeyInfo(fingerprint=row["key_hash"][:12], created_at=at(row["created_at"])) for row in rows]


def set_key_checksum(key_hash: str, checksum_hash: str) -> Op[None]:
    yield Execute(
        "INSERT INTO api_key_checksums VALUES ($1, $2)"
        " ON CONFLICT (key_hash) DO UPDATE SET checksum_hash = excluded.checksum_hash",
        key_hash,
        checksum_hash,
    )


def key_checksums(account_id: int) -> Op[list[str]]:
    rows = yield Fetch(
        "SELECT c.checksum_hash FROM api_key_checksums c JOIN api_keys k ON k.key_hash = c.key_hash"
        " WHERE k.account_id = $1",
        account_id,
    )
    return [row["checksum_hash"] for row in rows]


def account_where(clause: str, value: str) -> Op[Account | None]:
    row = yield FetchRow(f"SELECT {qualified(ACCOUNT_COLUMNS, 'a')} FROM accounts a {clause}", value)
    return None if row is None else account_of(row)


def count_accounts() -> Op[int]:
    return int((yield FetchVal("SELECT count(*) FROM accounts")))


class Accounts(StoreCore):
    async def create_account(self, *, name: str, public_key: str, key_hash: str) -> Account:
        return await self._driver.write(create_account(name, public_key, key_hash, self.clock()))

    async def add_api_key(self, *, account_id: int, key_hash: str) -> None:
        await self._driver.write(add_api_key(account_id, key_hash, self.clock()))

    async def list_api_keys(self, *, account_id: int) -> list[ApiKeyInfo]:
        """The account's API keys, oldest first: fingerprints, never secrets."""
        return await self._driver.read(list_api_keys(account_id))

    async def set_key_checksum(self, *, key_hash: str, checksum_hash: str) -> None:
        """Record the digest of the API key's checksum credential beside the key's own digest."""
        await self._driver.write(set_key_checksum(key_hash, checksum_hash))

    async def key_checksums(self, *, account_id: int) -> list[str]:
        """The checksum digests recorded for the account's API keys."""
        return await self._driver.read(key_checksums(account_id))

    async def account_by_key_hash(self, key_hash: str) -> Account | None:
        return await self._driver.read(
            account_where("JOIN api_keys k ON k.account_id = a.id WHERE k.key_hash = $1", key_hash)
        )

    async def account_by_public_key(self, public_key: str) -> Account | None:
        return await self._driver.read(account_where("WHERE a.public_key = $1", public_key))

    async def account_by_name(self, name: str) -> Account | None:
        return await self._driver.read(account_where("WHERE a.name = $1", name))

    async def count_accounts(self) -> int:
        return await self._driver.read(count_accounts())
