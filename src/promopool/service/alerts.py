"""Low-stock alerts: a pool's threshold and webhook URL, the account's signing secret, the delivery log."""

from __future__ import annotations

from promopool.domain import Account
from promopool.domain.alerts import Delivery, PoolAlert, check_alert, new_webhook_secret
from promopool.domain.errors import InvalidInput
from promopool.domain.keys import check_writable
from promopool.service.pools import get_pool
from promopool.storage import Store

MAX_DELIVERIES_PAGE = 200


async def get_low_stock_alert(store: Store, *, account: Account, pool_id: int) -> PoolAlert | None:
    """The pool's low-stock alert, or None when it has none."""
    await get_pool(store, account=account, pool_id=pool_id)
    return await store.get_pool_alert(pool_id=pool_id)


async def set_low_stock_alert(
    store: Store, *, account: Account, pool_id: int, threshold: int | None, webhook_url: str | None = None
) -> PoolAlert | None:
    """Set the pool's low-stock threshold and webhook URL (``threshold=None`` removes the alert)."""
    check_writable(account)
    await get_pool(store, account=account, pool_id=pool_id)
    if threshold is None:
        if webhook_url:
            raise InvalidInput("a webhook URL needs a low-stock threshold", field="threshold")
        await store.set_pool_alert(pool_id=pool_id, threshold=None, webhook_url=None)
        return None
    threshold, webhook_url = check_alert(threshold, webhook_url)
    if webhook_url is not None:
        await webhook_secret(store, account=account)  # events are signed from the first one on
    await store.set_pool_alert(pool_id=pool_id, threshold=threshold, webhook_url=webhook_url)
    return PoolAlert(pool_id=pool_id, threshold=threshold, webhook_url=webhook_url)


async def webhook_secret(store: Store, *, account: Account) -> str:
    """The account's webhook signing secret (created on first use)."""
    return await store.webhook_secret(account_id=account.id, new_secret=new_webhook_secret())


async def rotate_webhook_secret(store: Store, *, account: Account) -> str:
    """Replace the account's webhook signing secret; deliveries from now on are signed with the new one."""
    check_writable(account)
    secret = new_webhook_secret()
    await store.replace_webhook_secret(account_id=account.id, secret=secret)
    return secret


async def list_deliveries(store: Store, *, account: Account, pool_id: int, limit: int = 50) -> list[Delivery]:
    """The pool's webhook deliveries, newest first."""
    if not 1 <= limit <= MAX_DELIVERIES_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_DELIVERIES_PAGE}", field="limit")
    await get_pool(store, account=account, pool_id=pool_id)
    return await store.list_deliveries(pool_id=pool_id, limit=limit)
