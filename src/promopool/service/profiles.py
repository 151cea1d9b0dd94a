"""Profiles and the codes attached to them: profile databases, find-or-create, attach, detach, activate.

A profile database belongs to an account; another account's is indistinguishable from a missing one. The
identity rules (which identifier, how it is compared) are in ``domain/profiles.py``.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime

from promopool.domain import Account, Code, Profile, ProfileDatabase, Redeemed, Redemption
from promopool.domain.codes import check_expiry, check_name, invalid_reason
from promopool.domain.errors import (
    CodeExpired,
    CodeUnusable,
    CodeUsedUp,
    Conflict,
    InvalidInput,
    NotFound,
    ProfileNotFound,
)
from promopool.domain.fallback import with_validity
from promopool.domain.keys import check_writable
from promopool.domain.profiles import Identity
from promopool.service.codes import get_code
from promopool.service.paging import MAX_PAGE
from promopool.service.pools import get_pool
from promopool.service.redemptions import redeem, rollback_redemption
from promopool.storage import Store


@dataclass(frozen=True, slots=True)
class CodeDetails:
    """A code with its holder and its first unrolled activation, if any."""

    code: Code
    profile: Profile | None
    activated_at: datetime | None


@dataclass(frozen=True, slots=True)
class ImportResult:
    """One value of an import: None for inserted, else why not (``duplicated`` or an invalid reason)."""

    value: str
    error: str | None


def _value(value: str) -> str:
    value = value.strip()
    reason = invalid_reason(value)
    if reason is not None:
        raise InvalidInput(f"invalid code: {reason}", field="code")
    return value


async def create_profile_database(store: Store, *, account: Account, name: str) -> ProfileDatabase:
    """A new profile database of the account."""
    check_writable(account)
    return await store.create_profile_database(
        account_id=account.id, name=check_name(name, "profile database")
    )


async def get_profile_database(store: Store, *, account: Account, database_id: int) -> ProfileDatabase:
    """One profile database of the account; NotFound otherwise."""
    found = await store.get_profile_database(account_id=account.id, database_id=database_id)
    if found is None:
        raise NotFound(f"profile database {database_id} not found", database_id=database_id)
    return found


async def find_profile(store: Store, *, account: Account, database_id: int, identity: Identity) -> Profile:
    """The profile of the database matching ``identity``; ProfileNotFound otherwise."""
    await get_profile_database(store, account=account, database_id=database_id)
    found = await store.find_profile(database_id=database_id, identity=identity)
    if found is None:
        raise ProfileNotFound(f"no profile with this {identity.matching.value} in database {database_id}")
    return found


async def ensure_profile(store: Store, *, account: Account, database_id: int, identity: Identity) -> Profile:
    """The profile matching ``identity``, created with every identifier given when there is none."""
    check_writable(account)
    await get_profile_database(store, account=account, database_id=database_id)
    return await store.ensure_profile(
        database_id=database_id, identity=identity, external_id=secrets.token_hex(12)
    )


async def attach_code(
    store: Store, *, account: Account, pool_id: int, database_id: int, identity: Identity, code: str | None
) -> Code:
    """Attach ``code`` (imported first when new) or the pool's next free code to the matching profile,
    created when there is none (not when the attach is refused)."""
    check_writable(account)
    value = None if code is None else _value(code)
    await get_pool(store, account=account, pool_id=pool_id)
    await get_profile_database(store, account=account, database_id=database_id)
    return await store.attach_code(
        account_id=account.id,
        pool_id=pool_id,
        value=value,
        database_id=database_id,
        identity=identity,
        external_id=secrets.token_hex(12),
    )


async def detach_code(
    store: Store,
    *,
    account: Account,
    pool_id: int,
    database_id: int,
    code: str,
    identity: Identity | None = None,
) -> Code:
    """Detach ``code`` from its profile (from the matching one when ``identity`` is given)."""
    check_writable(account)
    value = _value(code)
    await get_profile_database(store, account=account, database_id=database_id)
    profile_id = None
    if identity is not None:
        profile_id = (
            await find_profile(store, account=account, database_id=database_id, identity=identity)
        ).id
    else:
        found = await get_code(store, account=account, pool_id=pool_id, value=value)
        holder = None if found.profile_id is None else await store.get_profile(profile_id=found.profile_id)
        if holder is not None and holder.database_id != database_id:
            raise Conflict(f"code {value!r} is not attached to a profile of database {database_id}")
    return await store.detach_code(account_id=account.id, pool_id=pool_id, value=value, profile_id=profile_id)


async def activate_code(store: Store, *, account: Account, pool_id: int, code: str) -> Redeemed:
    """One use of an attached code (a redemption); Conflict when the code is not attached."""
    check_writable(account)
    found = await get_code(store, account=account, pool_id=pool_id, value=_value(code))
    if found.profile_id is None:
        raise Conflict(f"code {found.value!r} is not attached to a profile")
    try:
        # As the code's holder: the pool's holder_only and per-profile limits apply to it.
        return await redeem(
            store, account=account, code=found.value, pool_id=pool_id, holder_id=found.profile_id
        )
    except CodeUnusable:
        # The account owns the code, so it may learn why (redeem answers the same to all but the holder).
        pool = await get_pool(store, account=account, pool_id=pool_id)
        now = store.clock()
        if any(at is not None and at <= now for at in (found.expires_at, pool.settings.expires_at)):
            raise CodeExpired(f"code {found.value!r} has expired") from None
        if found.usage_count >= pool.settings.max_uses:
            raise CodeUsedUp(f"code {found.value!r} is activated already") from None
        raise Conflict(f"code {found.value!r} cannot be activated now") from None


async def _redemptions(store: Store, code: Code) -> AsyncIterator[Redemption]:
    after = None
    while True:
        page = await store.list_redemptions(code_id=code.id, after=after, limit=MAX_PAGE)
        for redemption in page:
            yield redemption
        if len(page) < MAX_PAGE:
            return
        after = page[-1].id


async def deactivate_code(store: Store, *, account: Account, pool_id: int, code: str) -> Redeemed:
    """Roll back the code's latest unrolled redemption; Conflict when it has none."""
    check_writable(account)
    found = await get_code(store, account=account, pool_id=pool_id, value=_value(code))
    latest = None
    async for redemption in _redemptions(store, found):
        if redemption.rolled_back_at is None:
            latest = redemption
    if latest is None:
        raise Conflict(f"code {found.value!r} is not activated")
    return await rollback_redemption(store, account=account, redemption_id=latest.id)


async def set_code_expiry(
    store: Store, *, account: Account, pool_id: int, code: str, expires_at: datetime | None
) -> Code:
    """Set (or with None clear) a code's expiry: an instant with a time zone between 1970 and 9999."""
    check_writable(account)
    if expires_at is not None:
        check_expiry(expires_at)
    value = _value(code)
    pool = await get_pool(store, account=account, pool_id=pool_id)
    changed = await store.set_code_expiry(
        account_id=account.id, pool_id=pool_id, value=value, expires_at=expires_at
    )
    return with_validity(changed, pool.settings)


async def code_details(store: Store, *, account: Account, pool_id: int, code: str) -> CodeDetails:
    """A code of the pool with its holder and first unrolled activation."""
    found = await get_code(store, account=account, pool_id=pool_id, value=_value(code))
    profile = None if found.profile_id is None else await store.get_profile(profile_id=found.profile_id)
    activated_at = None
    if found.usage_count > 0:
        async for redemption in _redemptions(store, found):
            if redemption.rolled_back_at is None:
                activated_at = redemption.created_at
                break
    return CodeDetails(found, profile, activated_at)


async def code_pages(
    store: Store, *, account: Account, pool_id: int, page_size: int = MAX_PAGE
) -> AsyncIterator[list[Code]]:
    """Every code of the pool in value order, a keyset page at a time (constant memory)."""
    pool = await get_pool(store, account=account, pool_id=pool_id)
    after = None
    while True:
        page = await store.list_codes(pool_id=pool_id, state=None, after=after, limit=page_size)
        if page:
            yield [with_validity(code, pool.settings) for code in page]
        if len(page) < page_size:
            return
        after = page[-1].value


async def import_each(
    store: Store, *, account: Account, pool_id: int, values: Iterable[str]
) -> list[ImportResult]:
    """Import values one by one, with a result for each (in order): inserted, duplicated or invalid."""
    check_writable(account)
    await get_pool(store, account=account, pool_id=pool_id)
    results = []
    for raw in values:
        value = raw.strip()
        reason = invalid_reason(value)
        if reason is not None:
            results.append(ImportResult(raw, reason))
            continue
        inserted = await store.insert_codes(pool_id=pool_id, values=[value])
        results.append(ImportResult(value, None if inserted else "duplicated"))
    return results
