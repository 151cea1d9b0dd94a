"""Reading the admin forms' fields: whole numbers, and moments typed in UTC as ``YYYY-MM-DD HH:MM``.

Times are typed and shown in UTC, never in the browser's local format (a ``datetime-local`` field would show
and send the reader's local time under a "UTC" label); a form that is refused is shown again with what was
typed (``typed``), not with the stored values.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from promopool.domain.errors import InvalidInput

UTC_INPUT = "%Y-%m-%d %H:%M"  # how a moment is written into a form field
UTC_HINT = "YYYY-MM-DD HH:MM"


def whole_number(form: dict[str, str], field: str, *, low: int = 0) -> int | None:
    """The field as an int of at least ``low``; None when left blank."""
    raw = form.get(field, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < low:
        raise InvalidInput(f"{field.replace('_', ' ')} must be a whole number of at least {low}", field=field)
    return int(raw)


def utc_moment(form: dict[str, str], field: str, *, end_of_day: bool = False) -> datetime | None:
    """The field as a UTC moment: ``YYYY-MM-DD HH:MM`` (a ``T`` or a trailing ``UTC`` accepted) or a bare
    date, which means its midnight, or with ``end_of_day`` the next midnight (a range's inclusive end)."""
    raw = form.get(field, "").strip()
    if raw.upper().endswith("UTC"):
        raw = raw[:-3].strip()
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        label = field.replace("_", " ")
        raise InvalidInput(f"{label} must be a UTC date and time, {UTC_HINT}", field=field) from None
    if moment.tzinfo is not None:
        return moment.astimezone(UTC)
    if end_of_day and len(raw) == len("YYYY-MM-DD"):
        moment += timedelta(days=1)
    return moment.replace(tzinfo=UTC)


def utc_input(value: datetime | None) -> str:
    """A moment as a form field holds it (UTC)."""
    return "" if value is None else value.astimezone(UTC).strftime(UTC_INPUT)
