"""How every native list pages: ``limit`` and ``cursor`` in, ``next_cursor`` and ``has_more`` out.

A cursor is opaque to clients: the base64url of where the page ended (a code's value for codes, which are
listed in value order; an id for pools, keys and redemptions, listed in id order). Each order is that of a
unique key that a new row only extends, so a walk through the pages sees every row that was there when it
began exactly once, whatever is inserted meanwhile.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from litestar.params import QueryParameter

from promopool import service
from promopool.domain.errors import InvalidInput

Limit = Annotated[
    int, QueryParameter(ge=1, le=service.MAX_PAGE, description="The most items on the page (default 100).")
]
Cursor = Annotated[
    str | None,
    QueryParameter(
        pattern="^[A-Za-z0-9_-]*$",
        max_length=1024,
        description="`next_cursor` of the previous page (opaque); leave it out for the first page.",
    ),
]


def encode_cursor(value: str | int) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        return base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("invalid cursor", field="cursor") from None


def id_after(cursor: str | None, after: int | None = None) -> int | None:
    """The id a page starts after: from ``cursor``, or from the deprecated numeric ``after``."""
    if cursor is None:
        return after
    if after is not None:
        raise InvalidInput("give cursor or after (deprecated), not both", field="cursor")
    text = decode_cursor(cursor)
    if not text.isascii() or not text.isdigit() or len(text) > 16:
        raise InvalidInput("invalid cursor", field="cursor")
    return int(text)
