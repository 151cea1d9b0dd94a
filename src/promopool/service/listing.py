"""The admin pools list: a page of an account's pools, filtered and sorted (``domain/listing.py``)."""

from __future__ import annotations

from promopool.domain import Account
from promopool.domain.listing import PoolPage, PoolQuery
from promopool.storage import Store


async def page_pools(store: Store, *, account: Account, query: PoolQuery) -> PoolPage:
    """One page of the account's pools, filtered and sorted as ``query`` asks, with low-stock thresholds."""
    return await store.page_pools(account_id=account.id, query=query)
