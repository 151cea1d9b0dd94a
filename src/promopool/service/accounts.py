"""Accounts and their API keys."""

from __future__ import annotations

from promopool.domain import Account, NewAccount
from promopool.domain.codes import check_name
from promopool.domain.errors import AlreadyExists, Unauthenticated
from promopool.domain.keys import hash_api_key, new_api_key, new_public_key
from promopool.storage import Store

DEFAULT_ACCOUNT_NAME = "default"


async def create_account(store: Store, *, name: str) -> NewAccount:
    """Create an account; its API key is returned here once and stored only hashed."""
    name = check_name(name, "account")
    api_key = new_api_key()
    account = await store.create_account(
        name=name, public_key=new_public_key(), key_hash=hash_api_key(api_key)
    )
    return NewAccount(account=account, api_key=api_key)


async def create_api_key(store: Store, *, account: Account) -> str:
    """Add another API key to the account and return it (once)."""
    api_key = new_api_key()
    await store.add_api_key(account_id=account.id, key_hash=hash_api_key(api_key))
    return api_key


async def ensure_default_account(store: Store) -> NewAccount | None:
    """On an empty database, create the ``default`` account so a newcomer can start at once."""
    if await store.count_accounts() > 0:
        return None
    try:
        return await create_account(store, name=DEFAULT_ACCOUNT_NAME)
    except AlreadyExists:  # another server starting on the same empty database was first
        return None


async def authenticate(store: Store, *, api_key: str) -> Account:
    """The account an API key belongs to; Unauthenticated for an unknown key."""
    account = await store.account_by_key_hash(hash_api_key(api_key))
    if account is None:
        raise Unauthenticated("unknown API key")
    return account
