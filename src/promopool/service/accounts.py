"""Accounts and their API keys."""

from __future__ import annotations

from promopool.domain import Account, NewAccount
from promopool.domain.codes import MAX_NAME_LENGTH, check_name, has_control_characters
from promopool.domain.errors import Unauthenticated
from promopool.domain.keys import checksum_of, hash_api_key, new_api_key, new_public_key, same_secret
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
    api_key = new_api_key()
    key_hash = hash_api_key(api_key)
    await store.add_api_key(account_id=account.id, key_hash=key_hash)
    await _register_checksum(store, account=account, api_key=api_key, key_hash=key_hash)
    return api_key


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
    return await create_account(store, name=DEFAULT_ACCOUNT_NAME)


async def authenticate(store: Store, *, api_key: str) -> Account:
    """The account an API key belongs to; Unauthenticated for an unknown key."""
    account = await store.account_by_key_hash(hash_api_key(api_key))
    if account is None:
        raise Unauthenticated("unknown API key")
    return account


async def authenticate_checksum(store: Store, *, account_name: str, checksum: str) -> Account:
    """The named account, when ``checksum`` is MD5(name + key) for one of its keys (those created since
    migration 5: the checksum is registered when a key is created)."""
    account = None
    if account_name and len(account_name) <= MAX_NAME_LENGTH and not has_control_characters(account_name):
        account = await store.account_by_name(account_name)
    digests = [] if account is None else await store.key_checksums(account_id=account.id)
    given = hash_api_key(checksum.strip().lower())
    matched = False
    for digest in digests:  # every digest compared, in constant time: no early exit
        matched |= same_secret(digest, given)
    if account is None or not matched:
        raise Unauthenticated("wrong account name or checksum")
    return account
