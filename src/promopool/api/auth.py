"""Bearer API-key authentication for the native API, with a short in-process cache.

The cache keeps the database off the hot path (a claim should cost one transaction, not two); its entries
live ``auth_cache_seconds``, so a key deleted from the database stops working within that time.
"""

from __future__ import annotations

import time

from promopool import service
from promopool.domain import Account
from promopool.domain.errors import Unauthenticated
from promopool.domain.keys import hash_api_key
from promopool.storage import Store

MAX_ENTRIES = 10_000


class Authenticator:
    def __init__(self, store: Store, *, ttl: float) -> None:
        self._store = store
        self._ttl = ttl
        self._cache: dict[str, tuple[float, Account]] = {}

    async def account_for_key(self, api_key: str) -> Account:
        digest = hash_api_key(api_key)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        account = await service.authenticate(self._store, api_key=api_key)
        if self._ttl > 0:
            if len(self._cache) >= MAX_ENTRIES:
                self._cache.clear()
            self._cache[digest] = (now + self._ttl, account)
        return account

    async def account_for_header(self, authorization: str | None) -> Account:
        if not authorization:
            raise Unauthenticated("missing Authorization header: send 'Authorization: Bearer <api key>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("Authorization header must be 'Bearer <api key>'")
        return await self.account_for_key(token.strip())
