"""Admin sign-in: an API key opens a session; the session stays valid only while that key exists."""

from __future__ import annotations

from promopool.domain import Account, ApiKeyInfo
from promopool.domain.errors import Unauthenticated
from promopool.domain.keys import hash_api_key
from promopool.service.accounts import authenticate
from promopool.storage import Store


async def sign_in(store: Store, *, api_key: str) -> tuple[Account, str]:
    """The key's account and the key's digest (what a session remembers instead of the key)."""
    account = await authenticate(store, api_key=api_key.strip())
    return account, hash_api_key(api_key.strip())


async def session_account(store: Store, *, key_hash: str) -> tuple[Account, ApiKeyInfo]:
    """The account of a session opened with the key whose digest is ``key_hash`` (as that key may act on
    it: read-only or not), and the key; Unauthenticated when that key has been removed since."""
    found = await store.key_by_hash(key_hash)
    if found is None:
        raise Unauthenticated("the API key of this session no longer exists")
    return found
