"""Rules for code values."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from promopool.domain.errors import InvalidCode, InvalidInput

MAX_CODE_LENGTH = 128

# C0/C1 control characters (NUL included) and the Unicode line/paragraph separators: they cannot be typed,
# break CSV/XML round trips and are a classic smuggling vector.
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def has_control_characters(value: str) -> bool:
    """True when ``value`` holds a character no name or code may hold (NUL, line breaks, other controls)."""
    return _FORBIDDEN.search(value) is not None


MAX_NAME_LENGTH = 200


def check_name(name: str, what: str) -> str:
    """A stripped account/pool name, or InvalidInput naming ``what``."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH or has_control_characters(name):
        raise InvalidInput(
            f"{what} name must be 1-{MAX_NAME_LENGTH} characters, no control characters", field="name"
        )
    return name


# Expiry dates a promo code service can mean; outside them the engines cannot store the instant faithfully
# (SQLite's fixed-width text needs four-digit years, PostgreSQL's driver returns its earliest timestamps
# without a zone, and a time near the end of year 9999 overflows when converted to UTC).
EARLIEST_EXPIRY = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_EXPIRY = datetime(9999, 1, 1, tzinfo=UTC)


def check_expiry(value: datetime, field: str = "expires_at") -> datetime:
    """``value`` if it is an instant with a time zone between 1970 and 9999; InvalidInput otherwise."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{field} must carry a time zone (e.g. 2030-01-01T00:00:00Z)", field=field)
    if not EARLIEST_EXPIRY <= value < LATEST_EXPIRY:
        raise InvalidInput(f"{field} must lie between 1970-01-01 and 9999-01-01", field=field)
    return value


# A code's description (the SuperSaaS dialect shows it): one line of text, room for a campaign's wording.
MAX_DESCRIPTION = 500


def description_refusal(text: str) -> str | None:
    """Why ``text`` cannot be a description, or None when it can ("" clears it)."""
    if len(text) > MAX_DESCRIPTION:
        return "description_too_long"
    if has_control_characters(text):
        return "invalid_description"
    return None


def check_description(text: str) -> str:
    if description_refusal(text) is not None:
        raise InvalidInput(
            f"description must be at most {MAX_DESCRIPTION} characters, no control characters",
            field="description",
        )
    return text


def invalid_reason(value: str) -> str | None:
    """Why ``value`` (already stripped) cannot be a code, or None when it can."""
    if not value:
        return "empty"
    if len(value) > MAX_CODE_LENGTH:
        return "too_long"
    if has_control_characters(value):
        return "control_character"
    return None


def clean_code(value: str) -> str:
    """Strip surrounding whitespace and check ``value``; raise InvalidCode naming the reason."""
    cleaned = value.strip()
    reason = invalid_reason(cleaned)
    if reason is not None:
        raise InvalidCode(f"invalid code: {reason.replace('_', ' ')}", reason=reason)
    return cleaned
