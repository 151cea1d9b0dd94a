"""Redemptions: validate a code, redeem it, roll a redemption back.

A code is named by the value a customer typed, looked up across the account's pools under each pool's
normalization (``pool_id`` narrows it to one pool). The limits hold under any concurrency: the store checks
them in the same conditional statements that count the use. Refusals follow ``domain.redemptions.refused``:
only the profile holding a code learns why it was refused.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from promopool import metrics
from promopool.domain import Account, Redeemed, Redemption
from promopool.domain.codes import invalid_reason
from promopool.domain.errors import RedemptionNotFound
from promopool.domain.keys import check_writable
from promopool.domain.redemptions import (
    CodeUse,
    NewRedemption,
    RedemptionFilter,
    Refusal,
    check_amount,
    check_metadata,
    check_order_ref,
    check_profile_key,
    refusal,
    refused,
)
from promopool.service.claims import check_idempotency_key
from promopool.service.codes import get_code
from promopool.service.completion import to_completion
from promopool.service.paging import Page, check_limit, one_page
from promopool.service.pools import get_pool
from promopool.storage import Store


def _request(
    *,
    code: str,
    pool_id: int | None,
    profile: str | None,
    order_ref: str | None = None,
    amount: Decimal | None = None,
    metadata: dict[str, Any] | None = None,
    holder_id: int | None = None,
) -> NewRedemption | None:
    """The checked request; None when no code could have the value (it is simply not there)."""
    value = code.strip()
    request = NewRedemption(
        value=value,
        pool_id=pool_id,
        profile=check_profile_key(profile),
        order_ref=check_order_ref(order_ref),
        amount=check_amount(amount),
        metadata=check_metadata(metadata),
        holder_id=holder_id,
    )
    return None if invalid_reason(value) else request


async def validate_code(
    store: Store, *, account: Account, code: str, pool_id: int | None = None, profile: str | None = None
) -> CodeUse:
    """May ``code`` be used now, by ``profile``? Its standing, or the refusal a redeem would get."""
    request = _request(code=code, pool_id=pool_id, profile=profile)
    use = None if request is None else await store.code_use(account_id=account.id, request=request)
    if use is None:
        raise refused(Refusal.NOT_FOUND, holder=False)
    reason = refusal(use, store.clock())
    if reason is not None:
        raise refused(reason, holder=use.holder)
    return use


async def redeem(
    store: Store,
    *,
    account: Account,
    code: str,
    pool_id: int | None = None,
    profile: str | None = None,
    order_ref: str | None = None,
    amount: Decimal | None = None,
    metadata: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    holder_id: int | None = None,
) -> Redeemed:
    """Record one use of ``code`` (by ``profile``, or the profile row ``holder_id``, for ``order_ref``),
    exactly within the limits."""
    check_writable(account)
    request = _request(
        code=code,
        pool_id=pool_id,
        profile=profile,
        order_ref=order_ref,
        amount=amount,
        metadata=metadata,
        holder_id=holder_id,
    )
    if request is None:
        raise refused(Refusal.NOT_FOUND, holder=False)
    key = check_idempotency_key(idempotency_key)
    done = await to_completion(store.redeem(account_id=account.id, request=request, idempotency_key=key))
    metrics.count_redemption(done.redemption.pool_id, "replayed" if done.replayed else "redeemed")
    return done


async def rollback_redemption(
    store: Store, *, account: Account, redemption_id: int, idempotency_key: str | None = None
) -> Redeemed:
    """Give a redemption's use back, exactly once."""
    check_writable(account)
    key = check_idempotency_key(idempotency_key)
    done = await to_completion(
        store.rollback_redemption(account_id=account.id, redemption_id=redemption_id, idempotency_key=key)
    )
    metrics.count_redemption(done.redemption.pool_id, "replayed" if done.replayed else "rolled_back")
    return done


async def get_redemption(store: Store, *, account: Account, redemption_id: int) -> Redemption:
    """One redemption of the account; RedemptionNotFound otherwise."""
    found = await store.get_redemption(account_id=account.id, redemption_id=redemption_id)
    if found is None:
        raise RedemptionNotFound(redemption_id)
    return found


async def list_redemptions(
    store: Store, *, account: Account, pool_id: int, code: str, after: int | None = None, limit: int = 100
) -> list[Redemption]:
    """A page of one code's redemptions (its exact value), oldest first, after the id ``after``."""
    page = await list_redemptions_page(
        store, account=account, pool_id=pool_id, code=code, after=after, limit=limit
    )
    return page.items


async def list_redemptions_page(
    store: Store, *, account: Account, pool_id: int, code: str, after: int | None = None, limit: int = 100
) -> Page[Redemption]:
    """``list_redemptions`` with whether more follow."""
    check_limit(limit)
    found = await get_code(store, account=account, pool_id=pool_id, value=code)

    async def fetch(n: int) -> list[Redemption]:
        return await store.list_redemptions(code_id=found.id, after=after, limit=n)

    return await one_page(fetch, limit)


async def pool_redemptions(
    store: Store,
    *,
    account: Account,
    pool_id: int,
    where: RedemptionFilter | None = None,
    before: int | None = None,
    limit: int = 100,
) -> list[Redemption]:
    """A page of the pool's redemptions matching ``where``, newest first, before the id ``before``."""
    check_limit(limit)
    await get_pool(store, account=account, pool_id=pool_id)
    checked = (where or RedemptionFilter()).checked()
    return await store.pool_redemptions(
        account_id=account.id, pool_id=pool_id, where=checked, before=before, limit=limit
    )
