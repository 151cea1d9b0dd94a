"""A recipient's codes across the account's pools (the claims that bind them are ``service.claims``)."""

from __future__ import annotations

from promopool.domain import Account
from promopool.domain.errors import NotFound
from promopool.domain.recipients import Held, check_recipient
from promopool.service.paging import Page, one_page
from promopool.storage import Store


async def recipient_codes(
    store: Store, *, account: Account, recipient: str, after_pool: int = 0, limit: int = 100
) -> Page[Held]:
    """A page of the codes ``recipient`` holds in the account's pools, by pool id after ``after_pool``.
    NotFound for a recipient the account has never named (in a claim, or a redeem's profile)."""
    recipient = check_recipient(recipient)

    async def fetch(n: int) -> list[Held]:
        found = await store.recipient_codes(
            account_id=account.id, recipient=recipient, after_pool=after_pool, limit=n
        )
        if found is None:
            raise NotFound(f"no recipient {recipient!r} in this account", recipient=recipient)
        return found

    return await one_page(fetch, limit)
