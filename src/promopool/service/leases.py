"""Leases: confirm or release a reserved code, and end the leases that ran out.

A lease is made by a claim with ``lease_seconds`` (``service.claim``).
"""

from __future__ import annotations

from promopool.domain import Account, Lease
from promopool.domain.errors import LeaseNotFound
from promopool.domain.idempotency import Once, keyed
from promopool.domain.keys import check_writable
from promopool.service.claims import check_idempotency_key
from promopool.service.completion import to_completion
from promopool.storage import Store


async def confirm_lease(store: Store, *, account: Account, lease_id: int) -> Lease:
    """Keep the leased code: it stays issued."""
    return (await confirm_lease_once(store, account=account, lease_id=lease_id)).value


async def confirm_lease_once(
    store: Store, *, account: Account, lease_id: int, idempotency_key: str | None = None
) -> Once[Lease]:
    """``confirm_lease``, once per Idempotency-Key (the same request again gets the first answer)."""
    check_writable(account)
    request = keyed(check_idempotency_key(idempotency_key))
    return await to_completion(store.confirm_lease(account_id=account.id, lease_id=lease_id, request=request))


async def release_lease(store: Store, *, account: Account, lease_id: int) -> Lease:
    """Give the leased code back: it can be claimed again."""
    return (await release_lease_once(store, account=account, lease_id=lease_id)).value


async def release_lease_once(
    store: Store, *, account: Account, lease_id: int, idempotency_key: str | None = None
) -> Once[Lease]:
    """``release_lease``, once per Idempotency-Key (the same request again gets the first answer)."""
    check_writable(account)
    request = keyed(check_idempotency_key(idempotency_key))
    return await to_completion(store.release_lease(account_id=account.id, lease_id=lease_id, request=request))


async def get_lease(store: Store, *, account: Account, lease_id: int) -> Lease:
    """One lease of the account; LeaseNotFound otherwise."""
    found = await store.get_lease(account_id=account.id, lease_id=lease_id)
    if found is None:
        raise LeaseNotFound(lease_id)
    return found


async def expire_leases(store: Store) -> int:
    """Put the codes of leases that ran out back into their pools; return how many leases ended."""
    return await store.expire_leases()
