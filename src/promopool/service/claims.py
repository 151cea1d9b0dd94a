"""Claims: the next available code of a pool, or many (a bulk claim), exactly once."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta

from promopool import metrics
from promopool.domain import Account, BulkClaimed, Claimed
from promopool.domain.claims import check_count
from promopool.domain.errors import InvalidInput
from promopool.domain.keys import check_writable
from promopool.domain.leases import check_lease_seconds
from promopool.domain.recipients import check_recipient, check_recipients, distinct, in_request_order
from promopool.service.completion import to_completion
from promopool.storage import Store

MAX_IDEMPOTENCY_KEY = 255


def check_idempotency_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise InvalidInput(
            f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} printable characters", field="Idempotency-Key"
        )
    return key


async def claim(
    store: Store,
    *,
    account: Account,
    pool_id: int,
    idempotency_key: str | None = None,
    lease_seconds: int | None = None,
    recipient: str | None = None,
) -> Claimed:
    """Hand out the pool's next available code, exactly once, committed before it returns.

    With an idempotency key, a retry gets the code of the first claim back (``replayed``). With
    ``lease_seconds`` the code is only reserved that long (``Claimed.lease``): confirm it, or it goes back.
    With a ``recipient``, that recipient's code of the pool (``claim_for_recipients``).
    """
    if recipient is not None and (idempotency_key is not None or lease_seconds is not None):
        [(_, claimed)] = await claim_for_recipients(
            store,
            account=account,
            pool_id=pool_id,
            recipients=[check_recipient(recipient)],
            idempotency_key=idempotency_key,
            lease_seconds=lease_seconds,
        )
        return claimed
    check_writable(account)
    return await claim_checked(
        store,
        account=account,
        pool_id=pool_id,
        idempotency_key=check_idempotency_key(idempotency_key),
        lease_seconds=lease_seconds,
        recipient=recipient,
    )


async def claim_checked(
    store: Store,
    *,
    account: Account,
    pool_id: int,
    idempotency_key: str | None,
    lease_seconds: int | None,
    recipient: str | None = None,
) -> Claimed:
    """``claim`` after its checks (a fallback claim records a key no caller may send: ``fallback_key``)."""
    key = idempotency_key
    started = time.perf_counter()
    try:
        if recipient is not None:  # batched with concurrent recipient claims of the pool
            wanted = check_recipient(recipient)
            claimed = await store.claim_for_recipient(
                account_id=account.id, pool_id=pool_id, recipient=wanted
            )
        elif lease_seconds is not None:
            seconds = check_lease_seconds(lease_seconds)
            lease = store.lease(account_id=account.id, pool_id=pool_id, seconds=seconds, idempotency_key=key)
            claimed = await to_completion(lease)
        else:
            claimed = await store.claim(account_id=account.id, pool_id=pool_id, idempotency_key=key)
    except Exception as exc:
        metrics.count_claim_error(pool_id, exc)
        raise
    finally:
        metrics.observe_claim(time.perf_counter() - started)
    metrics.count_claim(pool_id, "replayed" if claimed.replayed else "issued")
    return claimed


async def claim_many(
    store: Store,
    *,
    account: Account,
    pool_id: int,
    count: int,
    partial: bool = False,
    idempotency_key: str | None = None,
) -> BulkClaimed:
    """Hand out ``count`` codes exactly once, in one transaction committed before it returns.

    Fewer than ``count`` left: PoolExhausted and nothing taken, unless ``partial``, which takes what is left
    (PoolExhausted when nothing is). With an idempotency key a retry gets the same codes (``replayed``).
    """
    check_writable(account)
    return await claim_many_checked(
        store,
        account=account,
        pool_id=pool_id,
        count=check_count(count),
        partial=partial,
        idempotency_key=check_idempotency_key(idempotency_key),
    )


async def claim_many_checked(
    store: Store, *, account: Account, pool_id: int, count: int, partial: bool, idempotency_key: str | None
) -> BulkClaimed:
    """``claim_many`` after its checks."""
    wanted, key = count, idempotency_key
    try:
        claimed = await to_completion(
            store.claim_many(
                account_id=account.id, pool_id=pool_id, count=wanted, partial=partial, idempotency_key=key
            )
        )
    except Exception as exc:
        metrics.count_claim_error(pool_id, exc)
        raise
    metrics.count_claim(pool_id, "replayed" if claimed.replayed else "issued", len(claimed.codes))
    return claimed


async def recorded_claim_many(
    store: Store, *, account: Account, pool_id: int, count: int, idempotency_key: str
) -> BulkClaimed | None:
    """The codes a bulk claim of ``count`` with this key handed out, or None; claims nothing."""
    return await store.recorded_claim(
        account_id=account.id, pool_id=pool_id, count=count, idempotency_key=idempotency_key
    )


async def claim_for_recipients(
    store: Store,
    *,
    account: Account,
    pool_id: int,
    recipients: Sequence[str],
    idempotency_key: str | None = None,
    lease_seconds: int | None = None,
) -> list[tuple[str, Claimed]]:
    """Each recipient its code of the pool, in request order, in one transaction: the same recipient always
    gets the same code (``replayed`` after the first time; a repeat within the request gets it too), and
    becomes its holder. With ``lease_seconds`` a new code is leased, and a released or run-out lease frees
    its recipient for a new code. PoolExhausted, with nothing taken, when the pool cannot serve them all."""
    check_writable(account)
    wanted = check_recipients(recipients)
    key = check_idempotency_key(idempotency_key)
    seconds = None if lease_seconds is None else check_lease_seconds(lease_seconds)
    try:
        claim = store.claim_for_recipients(
            account_id=account.id,
            pool_id=pool_id,
            recipients=distinct(wanted),
            lease_seconds=seconds,
            idempotency_key=key,
        )
        claimed = await to_completion(claim)
    except Exception as exc:
        metrics.count_claim_error(pool_id, exc)
        raise
    for result in claimed.values():
        metrics.count_claim(pool_id, "replayed" if result.replayed else "issued")
    return list(zip(wanted, in_request_order(wanted, claimed), strict=True))


IDEMPOTENCY_TTL = timedelta(hours=24)


async def purge_idempotency_keys(store: Store, *, ttl: timedelta = IDEMPOTENCY_TTL) -> int:
    """Forget Idempotency-Key records older than ``ttl``; return how many."""
    return await store.purge_idempotency_keys(older_than=store.clock() - ttl)
