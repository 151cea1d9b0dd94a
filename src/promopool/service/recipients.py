"""A recipient's codes across the account's pools (the claims that bind them are ``service.claims``)."""

from __future__ import annotations

from promopool.domain import Account
from promopool.domain.errors import InvalidInput, NotFound
from promopool.domain.recipients import Held, check_recipient
from promopool.service.codes import MAX_PAGE
from promopool.storage import Store


async def recipient_codes(
    store: Store, *, account: Account, recipient: str, after_pool: int = 0, limit: int = 100
) -> tuple[list[Held], bool]:
    """The codes ``recipient`` holds in the account's pools, by pool id after ``after_pool``; and whether
    more follow. NotFound for a recipient the account has never named (in a claim, or a redeem's profile)."""
    recipient = check_recipient(recipient)
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    found = await store.recipient_codes(
        account_id=account.id, recipient=recipient, after_pool=after_pool, limit=limit + 1
    )
    if found is None:
        raise NotFound(f"no recipient {recipient!r} in this account", recipient=recipient)
    return found[:limit], len(found) > limit
