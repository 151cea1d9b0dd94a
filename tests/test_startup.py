"""Servers starting together on one empty database: exactly one creates the default account."""

from __future__ import annotations

import asyncio

from promopool import service
from promopool.storage import Store


async def test_concurrent_starts_create_one_default_account(store: Store) -> None:
    created = await asyncio.gather(*[service.ensure_default_account(store) for _ in range(4)])
    assert sum(new is not None for new in created) == 1
    assert await store.count_accounts() == 1
