"""The vendor's parameters: from the query string, or a JSON body (its fields win), checked and typed."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import HTTPException

from promopool.api.deps import MAX_ID, read_limited
from promopool.domain.errors import InvalidInput, NotFound, PoolNotFound
from promopool.formats import json

MISSING = "There are no mandatory parameters in the request"


class Body(msgspec.Struct):
    """Every field any PersonaClick body carries; unknown fields are ignored."""

    shop_id: str | None = None
    shop_secret: str | None = None
    id: int | str | None = None
    promo_code_list_id: int | str | None = None
    codes: list[str] | None = None


# Python's int() refuses strings of more than 4,300 digits (a guard against slow conversions), so longer
# numbers are judged by their length: no list id is longer than MAX_ID, and an offset or a limit of 10^18 is
# as good as infinite.
ID_DIGITS = len(str(MAX_ID))
POSITION_DIGITS = 18


def _significant(digits: str) -> str:
    return digits.lstrip("0") or "0"


def missing(name: str) -> HTTPException:
    return HTTPException(status_code=404, detail=f"{MISSING}: {name}")


def query(request: Request[Any, Any, Any], name: str) -> str | None:
    value: str | None = request.query_params.get(name)  # (typed Any by the framework)
    return value if value else None


def required(value: str | int | None, name: str) -> str | int:
    if value is None or value == "":
        raise missing(name)
    return value


def list_id(value: str | int | None, name: str = "id") -> int:
    """A list id, a number or a numeric string; 404 when missing, 400 when not a number."""
    given = required(value, name)
    if isinstance(given, str):
        text = given.strip()
        if not (text.isascii() and text.isdigit()):
            raise InvalidInput(f"{name} must be a number, got {given!r}", field=name)
        if len(_significant(text)) > ID_DIGITS:  # no such list (and too long for int(), maybe)
            raise NotFound(f"pool {_significant(text)[:20]}... not found")
        given = int(_significant(text))
    if not 1 <= given <= MAX_ID:
        raise PoolNotFound(given)
    return given


def number(request: Request[Any, Any, Any], name: str, default: int) -> int:
    text = query(request, name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()):
        raise InvalidInput(f"{name} must be a non-negative number, got {text!r}", field=name)
    digits = _significant(text)
    return int(digits) if len(digits) <= POSITION_DIGITS else 10**POSITION_DIGITS


def id_list(request: Request[Any, Any, Any], name: str) -> set[int] | None:
    text = query(request, name)
    if text is None:
        return None
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not all(item.isascii() and item.isdigit() for item in items):
        raise InvalidInput(f"{name} must be comma-separated list ids, got {text!r}", field=name)
    # an id longer than any list's names none: left out, as it would match nothing
    return {int(_significant(item)) for item in items if len(_significant(item)) <= ID_DIGITS}


async def body(request: Request[Any, Any, Any], limit: int) -> Body:
    """The JSON body (empty: no fields), with ``shop_id`` / ``shop_secret`` from the query when absent."""
    raw = await read_limited(request, limit)
    parsed = Body()
    if raw.strip():
        parsed = json.decode(raw, Body)
    del raw
    parsed.shop_id = parsed.shop_id or query(request, "shop_id")
    parsed.shop_secret = parsed.shop_secret or query(request, "shop_secret")
    if parsed.id is None:
        parsed.id = query(request, "id")
    if parsed.promo_code_list_id is None:
        parsed.promo_code_list_id = query(request, "promo_code_list_id")
    return parsed
