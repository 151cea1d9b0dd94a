"""Leases: confirm or release a reserved code, and end the leases that ran out.

A lease is made by a claim with ``lease_seconds`` (``service.claim``).
"""

from __future__ import annotations

from promopool.domain import Account, Lease
from promopool.domain.errors import LeaseNotFound
from promopool.domain.keys import check_writable
from promopool.service.completion import to_completion
from promopool.storage import Store


async def confirm_lease(store: Store, *, account: Account, lease_id: int) -> Lease:
    """Keep the leased code: it stays issued."""
    check_writable(account)
    return await to_completion(store.confirm_lease(account_id=account.id, lease_id=lease_id))


async def release_lease(store: Store, *, account: Account, lease_id: int) -> Lease:
    """Give the leased code back: it can be claimed again."""
    check_writable(account)
    return await to_completion(store.release_lease(account_id=account.id, lease_id=lease_id))


async def get_lease(store: Store, *, account: Account, lease_id: int) -> Lease:
    """One lease of the account; LeaseNotFound otherwise."""
    found = await store.get_lease(account_id=account.id, lease_id=lease_id)
    if found is None:
        raise LeaseNotFound(lease_id)
    return found


async def expire_leases(store: Store) -> int:
    """Put the codes of leases that ran out back into their pools; return how many leases ended."""
    return await store.expire_leases()
