"""Accounts, API keys and the keys' checksum credentials (the SuperSaaS dialect)."""

from __future__ import annotations

from datetime import datetime

from promopool.domain import Account, ApiKeyInfo
from promopool.domain.errors import AlreadyExists, ApiKeyNotFound, LastApiKey
from promopool.domain.idempotency import Keyed, Once
from promopool.domain.keys import FIRST_KEY_NAME
from promopool.storage.core import StoreCore
from promopool.storage.driver import Execute, Fetch, FetchRow, FetchVal, Op, UniqueViolation
from promopool.storage.ops import idempotency
from promopool.storage.rows import ACCOUNT_COLUMNS, API_KEY_COLUMNS, account_of, api_key_of, qualified


def add_api_key(account_id: int, key_hash: str, name: str, read_only: bool, now: datetime) -> Op[ApiKeyInfo]:
    row = yield FetchRow(
        "INSERT INTO api_keys (key_hash, account_id, name, read_only, created_at) VALUES ($1, $2, $3, $4, $5)"
        f" RETURNING {API_KEY_COLUMNS}",
        key_hash,
        account_id,
        name,
        read_only,
        now,
    )
    return api_key_of(row)


def add_api_key_with_checksum(
    account_id: int, key_hash: str, name: str, read_only: bool, checksum_hash: str, now: datetime
) -> Op[ApiKeyInfo]:
    """A new key with its SuperSaaS checksum credential, in one transaction."""
    key = yield from add_api_key(account_id, key_hash, name, read_only, now)
    yield from set_key_checksum(key_hash, checksum_hash)
    return key


def create_account(name: str, public_key: str, key_hash: str, now: datetime) -> Op[Account]:
    try:
        row = yield FetchRow(
            "INSERT INTO accounts (name, public_key, created_at) VALUES ($1, $2, $3)"
            f" RETURNING {ACCOUNT_COLUMNS}",
            name,
            public_key,
            now,
        )
        yield from add_api_key(row["id"], key_hash, FIRST_KEY_NAME, False, now)
    except UniqueViolation as exc:
        raise AlreadyExists(f"an account named {name!r} already exists", name=name) from exc
    return account_of(row)


def list_api_keys(
    account_id: int, after: int | None = None, limit: int | None = None
) -> Op[list[ApiKeyInfo]]:
    sql = f"SELECT {API_KEY_COLUMNS} FROM api_keys WHERE account_id = $1 AND id > $2 ORDER BY id"
    args: list[object] = [account_id, after or 0]
    if limit is not None:
        sql += " LIMIT $3"
        args.append(limit)
    return [api_key_of(row) for row in (yield Fetch(sql, *args))]


def revoke_api_key(account_id: int, key_id: int) -> Op[ApiKeyInfo]:
    # The account's row held first: two keys revoked at once must not both see the other still there.
    yield Execute("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", account_id)
    rows = yield Fetch(f"SELECT {API_KEY_COLUMNS} FROM api_keys WHERE account_id = $1", account_id)
    key = next((api_key_of(row) for row in rows if row["id"] == key_id), None)
    if key is None:
        raise ApiKeyNotFound(key_id)
    if len(rows) == 1:
        raise LastApiKey(key_id)
    # The checksum credential goes with its key (the foreign key cascades too; said here, not left implied).
    yield Execute(
        "DELETE FROM api_key_checksums WHERE key_hash = (SELECT key_hash FROM api_keys WHERE id = $1)", key_id
    )
    yield Execute("DELETE FROM api_keys WHERE id = $1", key_id)
    return key


def key_by_hash(key_hash: str) -> Op[tuple[Account, ApiKeyInfo] | None]:
    row = yield FetchRow(
        f"SELECT {qualified(ACCOUNT_COLUMNS, 'a')}, k.id AS key_id, k.name AS key_name, k.read_only,"
        " k.key_hash, k.created_at AS key_created_at, k.last_used_at"
        " FROM api_keys k JOIN accounts a ON a.id = k.account_id WHERE k.key_hash = $1",
        key_hash,
    )
    if row is None:
        return None
    key = api_key_of(row, prefix="key_")
    return account_of(row, read_only=key.read_only), key


def touch_api_key(key_id: int, now: datetime, stale_before: datetime) -> Op[None]:
    # Conditional: the workers that all saw the same stale value write it once between them, give or take.
    yield Execute(
        "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
        key_id,
        now,
        stale_before,
    )


def set_key_checksum(key_hash: str, checksum_hash: str) -> Op[None]:
    yield Execute(
        "INSERT INTO api_key_checksums VALUES ($1, $2)"
        " ON CONFLICT (key_hash) DO UPDATE SET checksum_hash = excluded.checksum_hash",
        key_hash,
        checksum_hash,
    )


def key_checksums(account_id: int) -> Op[list[tuple[str, ApiKeyInfo]]]:
    rows = yield Fetch(
        f"SELECT c.checksum_hash, {qualified(API_KEY_COLUMNS, 'k')} FROM api_key_checksums c"
        " JOIN api_keys k ON k.key_hash = c.key_hash WHERE k.account_id = $1 ORDER BY k.id",
        account_id,
    )
    return [(row["checksum_hash"], api_key_of(row)) for row in rows]


def account_where(clause: str, value: str) -> Op[Account | None]:
    row = yield FetchRow(f"SELECT {qualified(ACCOUNT_COLUMNS, 'a')} FROM accounts a {clause}", value)
    return None if row is None else account_of(row)


def count_accounts() -> Op[int]:
    return int((yield FetchVal("SELECT count(*) FROM accounts")))


class Accounts(StoreCore):
    async def create_account(self, *, name: str, public_key: str, key_hash: str) -> Account:
        return await self._driver.write(create_account(name, public_key, key_hash, self.clock()))

    async def add_api_key(
        self, *, account_id: int, key_hash: str, name: str = FIRST_KEY_NAME, read_only: bool = False
    ) -> ApiKeyInfo:
        return await self._driver.write(add_api_key(account_id, key_hash, name, read_only, self.clock()))

    async def create_api_key(
        self,
        *,
        account_id: int,
        key_hash: str,
        checksum_hash: str,
        name: str,
        read_only: bool,
        request: Keyed | None = None,
    ) -> Once[ApiKeyInfo]:
        """Add a key with its checksum credential, once per keyed request: the same request again gets the
        first key's metadata, replayed, and adds none (its secret was never stored: the caller has it)."""
        now = self.clock()
        op = add_api_key_with_checksum(account_id, key_hash, name, read_only, checksum_hash, now)
        scope = idempotency.CREATE_KEY_SCOPE
        return await self._driver.write(idempotency.once(account_id, request, scope, now, op, ApiKeyInfo))

    async def list_api_keys(
        self, *, account_id: int, after: int | None = None, limit: int | None = None
    ) -> list[ApiKeyInfo]:
        """The account's API keys, oldest first (those after the id ``after``, at most ``limit``):
        fingerprints, never secrets."""
        return await self._driver.read(list_api_keys(account_id, after, limit), paged=limit is not None)

    async def revoke_api_key(
        self, *, account_id: int, key_id: int, request: Keyed | None = None
    ) -> Once[ApiKeyInfo]:
        """Delete the account's key ``key_id`` with its checksum credential, once per keyed request.
        ApiKeyNotFound; LastApiKey for the account's only key."""
        scope = idempotency.revoke_key_scope(key_id)
        op = idempotency.once(
            account_id, request, scope, self.clock(), revoke_api_key(account_id, key_id), ApiKeyInfo
        )
        return await self._driver.write(op)

    async def key_by_hash(self, key_hash: str) -> tuple[Account, ApiKeyInfo] | None:
        """The key whose digest this is, and its account as the key may act on it (``read_only``)."""
        return await self._driver.read(key_by_hash(key_hash))

    async def touch_api_key(self, *, key_id: int, stale_before: datetime) -> None:
        """Record a use of the key now, unless one after ``stale_before`` is recorded already."""
        await self._driver.write(touch_api_key(key_id, self.clock(), stale_before))

    async def set_key_checksum(self, *, key_hash: str, checksum_hash: str) -> None:
        """Record the digest of the API key's checksum credential beside the key's own digest."""
        await self._driver.write(set_key_checksum(key_hash, checksum_hash))

    async def checksum_keys(self, *, account_id: int) -> list[tuple[str, ApiKeyInfo]]:
        """The checksum digests recorded for the account's API keys, each with its key."""
        return await self._driver.read(key_checksums(account_id))

    async def key_checksums(self, *, account_id: int) -> list[str]:
        """The checksum digests recorded for the account's API keys (what the database keeps: no checksum)."""
        return [digest for digest, _ in await self.checksum_keys(account_id=account_id)]

    async def account_by_public_key(self, public_key: str) -> Account | None:
        return await self._driver.read(account_where("WHERE a.public_key = $1", public_key))

    async def account_by_name(self, name: str) -> Account | None:
        return await self._driver.read(account_where("WHERE a.name = $1", name))

    async def count_accounts(self) -> int:
        return await self._driver.read(count_accounts())
