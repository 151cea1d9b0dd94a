"""Promotions: an account's codes seen across all its pools (what the SuperSaaS dialect serves).

A code value is unique within a pool, not within an account. Across pools the account's codes are ordered by
(pool id, value); a lookup by value finds the code in the pool of lowest id that holds it — the same one a
listing shows first.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from promopool.domain import Account, Code
from promopool.domain.codes import clean_code, invalid_reason
from promopool.domain.errors import CodeNotFound, InvalidInput
from promopool.domain.keys import check_writable
from promopool.storage import Store
from promopool.storage.ops.promotions import CodeKey

PROMOTION_PAGE = 1000
MAX_POSITION = 2**63 - 1


def promotion_pages(
    store: Store,
    *,
    account: Account,
    offset: int = 0,
    limit: int | None = None,
    page_size: int = PROMOTION_PAGE,
) -> AsyncGenerator[list[Code], None]:
    """The account's codes in (pool id, value) order, page by page: ``offset`` skipped, at most ``limit``
    (all without). Keyset paging, so memory stays constant however many codes there are; the arguments are
    checked now, the pages read as they are consumed."""
    if not 0 <= offset <= MAX_POSITION:
        raise InvalidInput("offset must be a whole number, 0 or more", field="offset")
    if limit is not None and not 0 <= limit <= MAX_POSITION:
        raise InvalidInput("limit must be a whole number, 0 or more", field="limit")
    if page_size < 1:
        raise InvalidInput("page_size must be at least 1", field="page_size")
    return _pages(store, account.id, offset, limit, page_size)


async def _pages(
    store: Store, account_id: int, offset: int, limit: int | None, page_size: int
) -> AsyncGenerator[list[Code], None]:
    remaining = limit
    after: CodeKey | None = None
    while remaining is None or remaining > 0:
        size = page_size if remaining is None else min(page_size, remaining)
        page = await store.list_account_codes(
            account_id=account_id,
            after=after,
            offset=offset if after is None else 0,
            limit=size,
        )
        if page:
            yield page
        if len(page) < size:
            return
        if remaining is not None:
            remaining -= len(page)
        after = (page[-1].pool_id, page[-1].value)


async def find_promotion(store: Store, *, account: Account, value: str) -> Code:
    """The account's code with this value (in its pool of lowest id); CodeNotFound otherwise."""
    # A value no code could have is simply not there (and must not reach the database as a query).
    code = (
        None if invalid_reason(value) else await store.find_account_code(account_id=account.id, value=value)
    )
    if code is None:
        raise CodeNotFound(f"promotion code {value!r} not found", code=value)
    return code


async def duplicate_promotion(store: Store, *, account: Account, template_code: str, new_code: str) -> Code:
    """A new available code in the template's pool with the template's description and expiry (the pool's
    limits and settings apply to it as to the template). InvalidCode for a value no code may have,
    CodeNotFound for an unknown template, AlreadyExists when any of the account's pools holds the value."""
    check_writable(account)
    value = clean_code(new_code)
    template = await find_promotion(store, account=account, value=template_code)
    code = await store.duplicate_code(account_id=account.id, template_id=template.id, value=value)
    if code is None:  # deleted between the lookup and the copy
        raise CodeNotFound(f"promotion code {template_code!r} not found", code=template_code)
    return code
