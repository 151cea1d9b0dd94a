"""Low-stock alerts: a pool's threshold and webhook URL, the account's signing secret, the delivery log."""

from __future__ import annotations

from promopool.domain import Account, Pool, PoolSettings
from promopool.domain.alerts import (
    KEEP,
    TEST_EVENT,
    Delivery,
    Keep,
    PoolAlert,
    changed_alert,
    check_alert,
    new_webhook_secret,
)
from promopool.domain.errors import Conflict, InvalidInput
from promopool.domain.idempotency import Once, keyed
from promopool.domain.keys import check_writable
from promopool.service.claims import check_idempotency_key
from promopool.service.pools import changed_pool, create_pool, get_pool
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


async def list_low_stock_alerts(store: Store, *, account: Account) -> dict[int, PoolAlert]:
    """The account's low-stock alerts by pool id (pools without one are left out)."""
    return {alert.pool_id: alert for alert in await store.list_pool_alerts(account_id=account.id)}


async def create_pool_with_alert(
    store: Store,
    *,
    account: Account,
    name: str,
    settings: PoolSettings,
    threshold: int | None = None,
    webhook_url: str | None = None,
) -> tuple[Pool, PoolAlert | None]:
    """Create a pool with a low-stock alert; the alert is checked first, so a bad one creates no pool."""
    check_writable(account)
    threshold, webhook_url = changed_alert(None, threshold=threshold, webhook_url=webhook_url)
    pool = await create_pool(store, account=account, name=name, settings=settings)
    if threshold is None:
        return pool, None
    alert = await set_low_stock_alert(
        store, account=account, pool_id=pool.id, threshold=threshold, webhook_url=webhook_url
    )
    return pool, alert


async def update_pool_and_alert(
    store: Store,
    *,
    account: Account,
    pool_id: int,
    threshold: int | Keep | None = KEEP,
    webhook_url: str | Keep | None = KEEP,
    idempotency_key: str | None = None,
    **changes: object,
) -> Once[tuple[Pool, PoolAlert | None]]:
    """Change a pool's name and settings (as ``update_pool``) and its low-stock alert (fields left as KEEP
    keep their value), in one transaction, once per Idempotency-Key (the same request again gets the first
    answer, replayed); everything is checked first, so a bad value changes nothing."""
    check_writable(account)
    request = keyed(check_idempotency_key(idempotency_key), changes, _given(threshold), _given(webhook_url))
    if request is not None:  # a replay answers before the checks, which read the pool as it is now
        replay = await store.earlier_pool_change(account_id=account.id, pool_id=pool_id, request=request)
        if replay is not None:
            return replay
    current = await get_low_stock_alert(store, account=account, pool_id=pool_id)
    new_threshold, new_url = changed_alert(current, threshold=threshold, webhook_url=webhook_url)
    name, settings = None, None
    if changes:
        name, settings = await changed_pool(store, account=account, pool_id=pool_id, **changes)  # type: ignore[arg-type]
    alert = None
    if current is None or (current.threshold, current.webhook_url) != (new_threshold, new_url):
        alert = (new_threshold, new_url)
        if new_url is not None:
            await webhook_secret(store, account=account)  # events are signed from the first one on
    return await store.change_pool(
        account_id=account.id, pool_id=pool_id, name=name, settings=settings, alert=alert, request=request
    )


def _given(value: object) -> tuple[bool, object]:
    """A field of a change as a request's fingerprint sees it: whether it was given, and its value."""
    return (False, None) if value is KEEP else (True, value)


async def send_test_event(
    store: Store, *, account: Account, pool_id: int, idempotency_key: str | None = None
) -> Once[Delivery]:
    """Queue a ``test`` event to the pool's webhook URL, sent and retried like any other delivery, once per
    Idempotency-Key; Conflict when the pool has no webhook URL."""
    check_writable(account)
    request = keyed(check_idempotency_key(idempotency_key))
    pool = await get_pool(store, account=account, pool_id=pool_id)
    alert = await store.get_pool_alert(pool_id=pool_id)
    if alert is None or alert.webhook_url is None:
        raise Conflict(f"pool {pool_id} has no webhook URL: set webhook_url first")
    await webhook_secret(store, account=account)
    data = {"pool_id": pool.id, "pool_name": pool.name, "threshold": alert.threshold}
    return await store.enqueue_test_event(
        account_id=account.id,
        pool_id=pool_id,
        event=TEST_EVENT,
        url=alert.webhook_url,
        data=data,
        request=request,
    )


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
