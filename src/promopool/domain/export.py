"""What an export of a pool's codes lists, and the rules by which an import takes such a list back."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from promopool.domain.codes import (
    EARLIEST_EXPIRY,
    LATEST_EXPIRY,
    description_refusal,
    has_control_characters,
    invalid_reason,
)
from promopool.domain.models import CodeState
from promopool.domain.redemptions import MAX_PROFILE_KEY

EXPORT_COLUMNS = ("code", "state", "issued_at", "profile", "usage_count")
MAX_USAGE_COUNT = 2**31 - 1  # the engines' usage_count column (PostgreSQL integer)


class ExportFormat(enum.StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


@dataclass(frozen=True, slots=True)
class ExportRow:
    """One code as an export lists it (the columns of EXPORT_COLUMNS, in order), and as an import of such a
    list stores it again."""

    code: str
    state: CodeState
    issued_at: datetime | None
    profile: str | None  # the profile's own id (its ``external_id``) when the code is attached to one
    usage_count: int


@dataclass(frozen=True, slots=True)
class ImportRow(ExportRow):
    """A row of an upload as an import stores it: an export's columns and the code's description (which an
    export does not list)."""

    description: str = ""


@dataclass(frozen=True, slots=True)
class StateFields:
    """A row of an upload that carries states (a CSV whose header names a ``state`` column), as read: its
    line in the file and its columns, unchecked; a column the header does not name is empty."""

    line: int
    code: str
    state: str = ""
    issued_at: str = ""
    profile: str = ""
    usage_count: str = ""
    description: str = ""


def imported_row(fields: StateFields, now: datetime) -> ImportRow | str:
    """The code ``fields`` describe, or why it cannot be stored (a reason as ``invalid_reason`` gives).

    Only what the system itself could have written is taken, so an imported code obeys the rules of every
    code: ``available`` has no ``issued_at`` and no use; ``issued`` has no use and an ``issued_at`` (the
    import's time, ``now``, when the column is empty); ``redeemed`` has been used at least once. An empty
    ``usage_count`` is 0, an empty ``profile`` no holder."""
    code = fields.code.strip()
    reason = invalid_reason(code)
    if reason is not None:
        return reason
    try:
        state = CodeState(fields.state.strip())
    except ValueError:
        return "unknown_state"
    issued_at: datetime | None = None
    if fields.issued_at.strip():
        try:
            issued_at = datetime.fromisoformat(fields.issued_at.strip())
        except ValueError:
            return "invalid_issued_at"
        if issued_at.utcoffset() is None or not EARLIEST_EXPIRY <= issued_at < LATEST_EXPIRY:
            return "invalid_issued_at"
        if state is CodeState.AVAILABLE:
            return "invalid_issued_at"
    elif state is CodeState.ISSUED:
        issued_at = now
    text = fields.usage_count.strip() or "0"
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_USAGE_COUNT:
        return "invalid_usage_count"
    usage_count = int(text)
    if (usage_count > 0) != (state is CodeState.REDEEMED):
        return "invalid_usage_count"
    # Kept as written, as a redeem keeps the key it is given: the export shows it back unchanged.
    profile = fields.profile or None
    if profile is not None and (len(profile) > MAX_PROFILE_KEY or has_control_characters(profile)):
        return "invalid_profile"
    description = fields.description.strip()
    refusal = description_refusal(description)
    if refusal is not None:
        return refusal
    return ImportRow(code, state, issued_at, profile, usage_count, description)


def holder_keys(rows: Iterable[ExportRow]) -> list[str]:
    """The distinct holders the rows name, sorted: every import finds or creates them in one order, so two
    imports never wait on each other's new profiles crosswise."""
    return sorted({row.profile for row in rows if row.profile is not None})
