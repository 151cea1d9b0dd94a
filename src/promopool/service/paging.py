"""One page of a list: every list of the native API pages the same way (``limit``, a cursor, ``has_more``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from promopool.domain.errors import InvalidInput

T = TypeVar("T")

MAX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """Up to ``limit`` items, and whether more follow the last of them."""

    items: list[T]
    has_more: bool


def check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", field="limit")


async def one_page(fetch: Callable[[int], Awaitable[list[T]]], limit: int) -> Page[T]:
    """The page ``fetch(n)`` gives (the first ``n`` items after the cursor, in the list's order), asking
    for one more than ``limit`` so that ``has_more`` is exact (no empty last page)."""
    check_limit(limit)
    items = await fetch(limit + 1)
    return Page(items[:limit], len(items) > limit)
