"""What ``bench/run.py`` measures, as written to its JSON: shared by the run and its report (``_report.py``),
so neither imports the other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from _baselines import PgbenchResult, RawImport, RedisResult, SqliteLoopResult
from _claims import ClaimRun
from _profile import ProfileSummary
from _server import HttpImport
from _wrk import WrkStats


@dataclass(slots=True)
class Trial:
    workers: int
    health: WrkStats
    claims: ClaimRun


@dataclass(slots=True)
class MainPhase:
    """The chosen worker count's server: import, trivial JSON, fresh and drained claims."""

    http_import: HttpImport
    health: WrkStats
    fresh: ClaimRun
    drained: ClaimRun
    # The drained measurement starts with 99% of the pool's original codes issued; it needs more codes than
    # the 1% left, so that many are appended at the pool's tail first (behind 99% of the queue).
    drained_issued_at_start: int
    top_up: int
    drain_seconds: float
    final_counts: dict[str, int]
    profiles: list[ProfileSummary] = field(default_factory=list)


@dataclass(slots=True)
class EngineResult:
    engine: str
    workers: int
    trials: list[Trial]
    raw_import: RawImport
    main: MainPhase
    pgbench: PgbenchResult | None = None
    sqlite_loop: SqliteLoopResult | None = None


@dataclass(slots=True)
class RunResult:
    started_at: str
    finished_at: str
    seconds: float
    quick: bool
    duration_s: float
    connections: int
    codes: int
    note: str
    load_average_start: list[float]
    load_average_end: list[float]
    wrk: str
    redis: RedisResult
    engines: list[EngineResult]
    targets: list[dict[str, Any]]
    host: dict[str, Any]
