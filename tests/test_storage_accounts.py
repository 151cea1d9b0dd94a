"""Accounts and API keys in the store, on both engines."""

from __future__ import annotations

from promopool import service
from promopool.domain.keys import hash_api_key
from promopool.storage import Store


async def test_an_accounts_keys_are_listed_by_fingerprint_oldest_first(store: Store) -> None:
    first = await service.create_account(store, name="acme")
    second_key = await service.create_api_key(store, account=first.account)
    await service.create_account(store, name="rival")  # another account's key is never listed

    keys = await store.list_api_keys(account_id=first.account.id)

    expected = sorted([hash_api_key(first.api_key), hash_api_key(second_key)])
    assert sorted(key.fingerprint for key in keys) == [h[:12] for h in expected]
    assert keys[0].created_at <= keys[1].created_at
    assert all(first.api_key not in key.fingerprint and second_key not in key.fingerprint for key in keys)
    assert await store.list_api_keys(account_id=first.account.id + 1000) == []
