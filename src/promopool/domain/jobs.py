"""Background jobs: long work (generating millions of codes) that reports its progress as it goes."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class JobState(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # with ``error``; what it stored before failing (``done``) stays stored


class JobKind(enum.StrEnum):
    GENERATE = "generate"


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    account_id: int
    kind: JobKind
    pool_id: int | None  # None once the pool has been deleted
    total: int  # how many units of work were asked for (codes to generate)
    done: int  # how many are committed; moves in the same transaction as the work it counts
    state: JobState
    created_at: datetime
    updated_at: datetime  # the heartbeat of a running job
    finished_at: datetime | None = None
    error: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


class CliCommand(enum.StrEnum):
    """The CLI commands that store codes, counted for /metrics (they run outside the server)."""

    IMPORT = "import"
    GENERATE = "generate"


class CliResult(enum.StrEnum):
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class CliRuns:
    """How many runs of a CLI command ended (or started) so, and the codes those runs stored."""

    command: str
    result: str
    runs: int
    codes: int


def stopped_error(reason: str, *, done: int, total: int) -> str:
    """The error of a job that ended unfinished: why, and how far it got (what it stored stays stored)."""
    return f"{reason}: {done} of {total} stored; ask again for the other {total - done}"
