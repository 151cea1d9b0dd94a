"""Shops and devices: an account by its public key, and the front-end fetch that binds a code to a device."""

from __future__ import annotations

import time

from promopool import metrics
from promopool.domain import Account, Claimed
from promopool.domain.codes import has_control_characters
from promopool.domain.errors import Forbidden, InvalidInput, Unauthenticated
from promopool.service.accounts import authenticate
from promopool.service.claims import claim
from promopool.service.pools import get_pool
from promopool.storage import Store

MAX_DID = 255
PUBLIC_FETCH_OFF = (
    "fetching without shop_secret is switched off for this list: switch on the pool's public_fetch setting"
)


async def account_by_public_key(store: Store, *, public_key: str) -> Account:
    """The account whose public key (a vendor's ``shop_id``) this is; Unauthenticated otherwise."""
    if not public_key or len(public_key) > MAX_DID or has_control_characters(public_key):
        raise Unauthenticated("unknown shop_id")
    account = await store.account_by_public_key(public_key)
    if account is None:
        raise Unauthenticated("unknown shop_id")
    return account


async def authenticate_shop(store: Store, *, public_key: str, api_key: str) -> Account:
    """The account of ``public_key`` when ``api_key`` is one of its API keys; Unauthenticated otherwise."""
    account = await account_by_public_key(store, public_key=public_key)
    keyed = await authenticate(store, api_key=api_key)
    if keyed.id != account.id:
        raise Unauthenticated("wrong shop_secret")
    return keyed  # the account as the key may act on it (read-only or not)


def check_did(did: str) -> str:
    if not did or len(did) > MAX_DID or not did.isprintable():
        raise InvalidInput(f"did must be 1-{MAX_DID} printable characters", field="did")
    return did


async def fetch_for_device(store: Store, *, account: Account, pool_id: int, did: str | None) -> Claimed:
    """The code bound to device ``did`` while it is unredeemed, else the pool's next code, bound to it
    (``replayed`` when it was bound before); without a ``did``, the pool's next code on every call. Only on
    pools with ``public_fetch`` on: Forbidden otherwise."""
    if did is not None:
        did = check_did(did)
    pool = await get_pool(store, account=account, pool_id=pool_id)
    if not pool.settings.public_fetch:
        raise Forbidden(PUBLIC_FETCH_OFF)
    if did is None:  # no device to bind the code to: a plain claim, as a backend fetch
        return await claim(store, account=account, pool_id=pool_id)
    started = time.perf_counter()
    try:
        claimed = await store.device_claim(account_id=account.id, pool_id=pool_id, did=did)
    except Exception as exc:
        metrics.count_claim_error(pool_id, exc)
        raise
    finally:
        metrics.observe_claim(time.perf_counter() - started)
    metrics.count_claim(pool_id, "replayed" if claimed.replayed else "issued")
    return claimed
