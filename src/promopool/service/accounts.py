"""Accounts and their API keys."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import replace

from promopool.domain import Account, ApiKeyInfo, NewAccount, NewApiKey
from promopool.domain.codes import MAX_NAME_LENGTH, check_name, has_control_characters
from promopool.domain.errors import AlreadyExists, StorageUnavailable, Unauthenticated
from promopool.domain.idempotency import Once, keyed
from promopool.domain.keys import (
    FIRST_KEY_NAME,
    LAST_USED_PRECISION,
    check_writable,
    checksum_of,
    hash_api_key,
    last_use_is_stale,
    new_api_key,
    new_public_key,
    same_secret,
)
from promopool.service.claims import check_idempotency_key
from promopool.service.paging import Page, one_page
from promopool.storage import Store

DEFAULT_ACCOUNT_NAME = "default"


async def create_account(store: Store, *, name: str) -> NewAccount:
    """Create an account; its API key is returned here once and stored only hashed."""
    name = check_name(name, "account")
    api_key = new_api_key()
    key_hash = hash_api_key(api_key)
    account = await store.create_account(name=name, public_key=new_public_key(), key_hash=key_hash)
    await _register_checksum(store, account=account, api_key=api_key, key_hash=key_hash)
    return NewAccount(account=account, api_key=api_key)


async def create_api_key(store: Store, *, account: Account) -> str:
    """Add another API key to the account and return it (once)."""
    return (await create_key(store, account=account, name=FIRST_KEY_NAME)).api_key


async def create_key(store: Store, *, account: Account, name: str, read_only: bool = False) -> NewApiKey:
    """Add a named API key to the account: its secret is in the answer, this once, and stored only hashed."""
    created = await create_key_once(store, account=account, name=name, read_only=read_only)
    assert isinstance(created.value, NewApiKey)  # without a key, never a replay
    return created.value


async def create_key_once(
    store: Store, *, account: Account, name: str, read_only: bool = False, idempotency_key: str | None = None
) -> Once[NewApiKey | ApiKeyInfo]:
    """``create_key``, once per Idempotency-Key: the same request again gets the first key's metadata
    (an ApiKeyInfo: the secret is never stored, so never shown again), replayed, and adds no key."""
    check_writable(account)
    name = check_name(name, "key")
    request = keyed(check_idempotency_key(idempotency_key), name, read_only)
    # The only moment the plaintext key exists on the server: its digest and its SuperSaaS checksum
    # credential's digest are what is stored, with the key, in one transaction.
    api_key = new_api_key()
    key_hash = hash_api_key(api_key)
    checksum_hash = hash_api_key(checksum_of(account.name, api_key))
    created = await store.create_api_key(
        account_id=account.id,
        key_hash=key_hash,
        checksum_hash=checksum_hash,
        name=name,
        read_only=read_only,
        request=request,
    )
    if created.replayed:
        return Once(created.value, replayed=True)
    return Once(NewApiKey(key=created.value, api_key=api_key))


async def list_keys(store: Store, *, account: Account) -> list[ApiKeyInfo]:
    """The account's API keys, oldest first, never their secrets."""
    return await store.list_api_keys(account_id=account.id)


async def list_keys_page(
    store: Store, *, account: Account, after: int | None = None, limit: int = 100
) -> Page[ApiKeyInfo]:
    """A page of the account's API keys in id order (oldest first), those after the id ``after``."""

    async def fetch(n: int) -> list[ApiKeyInfo]:
        return await store.list_api_keys(account_id=account.id, after=after, limit=n)

    return await one_page(fetch, limit)


async def revoke_key(store: Store, *, account: Account, key_id: int) -> ApiKeyInfo:
    """Delete one of the account's keys (and its checksum credential); LastApiKey for its only key, so that
    an account is never locked out. Servers stop accepting it within ``auth_cache_seconds``."""
    return (await revoke_key_once(store, account=account, key_id=key_id)).value


async def revoke_key_once(
    store: Store, *, account: Account, key_id: int, idempotency_key: str | None = None
) -> Once[ApiKeyInfo]:
    """``revoke_key``, once per Idempotency-Key: the same request again gets the first answer, replayed."""
    check_writable(account)
    request = keyed(check_idempotency_key(idempotency_key))
    return await store.revoke_api_key(account_id=account.id, key_id=key_id, request=request)


async def _register_checksum(store: Store, *, account: Account, api_key: str, key_hash: str) -> None:
    # The only moment the plaintext key exists on the server: derive the SuperSaaS checksum credential now and
    # keep only its digest, like the key's. (The key is shown after this, so no one ever holds a key whose
    # checksum was not registered.)
    await store.set_key_checksum(
        key_hash=key_hash, checksum_hash=hash_api_key(checksum_of(account.name, api_key))
    )


async def ensure_default_account(store: Store) -> NewAccount | None:
    """On an empty database, create the ``default`` account so a newcomer can start at once."""
    if await store.count_accounts() > 0:
        return None
    try:
        return await create_account(store, name=DEFAULT_ACCOUNT_NAME)
    except AlreadyExists:  # another server starting on the same database was quicker
        return None


async def authenticate(store: Store, *, api_key: str) -> Account:
    """The account an API key belongs to, as the key may act on it; Unauthenticated for an unknown key."""
    found = await store.key_by_hash(hash_api_key(api_key))
    if found is None:
        raise Unauthenticated("unknown API key")
    account, key = found
    await _record_use(store, key)
    return account


async def _record_use(store: Store, key: ApiKeyInfo) -> None:
    # A write only when the recorded use is older than LAST_USED_PRECISION: about once a minute per key, not
    # once per request (and the authenticator's cache spares most requests this read as well).
    now = store.clock()
    if last_use_is_stale(key.last_used_at, now):
        # Bookkeeping must not refuse the request it is about (a lock held by a long import, say): the key's
        # next lookup records the use instead.
        with suppress(StorageUnavailable):
            await store.touch_api_key(key_id=key.id, stale_before=now - LAST_USED_PRECISION)


async def authenticate_checksum(store: Store, *, account_name: str, checksum: str) -> Account:
    """The named account, when ``checksum`` is MD5(name + key) for one of its keys (those created since
    migration 5: the checksum is registered when a key is created)."""
    account = None
    if account_name and len(account_name) <= MAX_NAME_LENGTH and not has_control_characters(account_name):
        account = await store.account_by_name(account_name)
    keys = [] if account is None else await store.checksum_keys(account_id=account.id)
    given = hash_api_key(checksum.strip().lower())
    matched = None
    for digest, key in keys:  # every digest compared, in constant time: no early exit
        if same_secret(digest, given):
            matched = key
    if account is None or matched is None:
        raise Unauthenticated("wrong account name or checksum")
    await _record_use(store, matched)
    return replace(account, read_only=matched.read_only)
