"""What an export of a pool's codes lists."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from promopool.domain.models import CodeState

EXPORT_COLUMNS = ("code", "state", "issued_at", "profile", "usage_count")


class ExportFormat(enum.StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


@dataclass(frozen=True, slots=True)
class ExportRow:
    """One code as an export lists it (the columns of EXPORT_COLUMNS, in order)."""

    code: str
    state: CodeState
    issued_at: datetime | None
    profile: str | None  # the profile's own id (its ``external_id``) when the code is attached to one
    usage_count: int
