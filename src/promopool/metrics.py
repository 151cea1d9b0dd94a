"""Prometheus metrics: what the service counts, and the ``/metrics`` exposition.

Counters and the latency histogram live in this process (or, when ``promopool serve --workers N`` runs
several worker processes, in prometheus-client's multiprocess files, which the exposition sums over all
workers). The pool inventory gauges are read from the database at scrape time: the counters live in the pool
rows, so that is one cheap query and always the truth, whichever worker answers.

The counting functions (``count_claim``, ``count_redemption``, ``count_imported``, ``count_import``,
``count_webhook``, ``count_refusal``, ``count_failed_guess``) are the hooks the service and the API call,
``observe_database`` and ``count_database_error`` the storage drivers'; labels are bounded (pool ids,
result codes, kinds). Gauges of a worker (connections in use, SQLite writes pending) are summed over the
live workers (``livesum``).

What happens in other processes that write to the database (``promopool import`` and ``generate`` from the
CLI) is read from the database at scrape time, like the inventory: the ``cli_runs`` table counts them.
Every metric is described in docs/operations.md, "Metrics".
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from promopool import __version__
from promopool.domain.errors import PromopoolError, StorageBusy, StorageUnavailable

if TYPE_CHECKING:
    from promopool.domain import CliRuns, ImportReport
    from promopool.domain.alerts import InventoryRow


class Inventory(Protocol):
    """What a scrape reads from the store (the storage drivers import this module, so it names no store
    class)."""

    async def pool_inventory(self, *, limit: int) -> tuple[list[InventoryRow], int]: ...

    async def cli_runs(self) -> list[CliRuns]: ...


MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# `_created` series double the output for no use here.
disable_created_metrics()  # type: ignore[no-untyped-call]

REGISTRY = CollectorRegistry(auto_describe=True)
if not os.environ.get(MULTIPROCESS_ENV):
    # Per-process figures; meaningless summed over workers, so only in single-process mode.
    ProcessCollector(registry=REGISTRY)
    PlatformCollector(registry=REGISTRY)

CLAIMS = Counter(
    "promopool_claims",
    "Claims by pool and result: issued, replayed (Idempotency-Key), or the error code.",
    ["pool", "result"],
    registry=REGISTRY,
)
REDEMPTIONS = Counter(
    "promopool_redemptions",
    "Redemptions by pool and result: redeemed, rolled_back, or the error code.",
    ["pool", "result"],
    registry=REGISTRY,
)
IMPORTS = Counter(
    "promopool_imports",
    "Finished imports (uploads) by pool and result: ok, or refused (invalid codes, nothing stored).",
    ["pool", "result"],
    registry=REGISTRY,
)
IMPORTED_CODES = Counter(
    "promopool_imported_codes",
    "Imported values by pool and result: inserted, duplicate, invalid.",
    ["pool", "result"],
    registry=REGISTRY,
)
WEBHOOKS = Counter(
    "promopool_webhook_attempts",
    "Webhook delivery attempts by event and result: delivered, retry, failed (given up).",
    ["event", "result"],
    registry=REGISTRY,
)
# From 0.25 ms: most claims take under 1 ms (87% fell in the old first bucket, 1 ms), so the sub-millisecond
# steps are what p50 is read from; 1-10 ms finely enough for p99; then the usual decades to 10 s.
LATENCY_BUCKETS = (
    0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01,
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
REQUEST_SECONDS = Histogram(
    "promopool_http_request_duration_seconds",
    "HTTP request latency by method, route template and status.",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
CLAIM_SECONDS = Histogram(
    "promopool_claim_duration_seconds",
    "Claims (every way in: native, dialects, leases, devices) from the service call to the committed code"
    " or the refusal, waiting for the batch included.",
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
DATABASE_SECONDS = Histogram(
    "promopool_database_duration_seconds",
    "Database transactions by operation: write (one transaction, committed), read, claim (a claim batch).",
    ["operation"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
DATABASE_ERRORS = Counter(
    "promopool_database_errors",
    "Database operations that failed, by kind: unavailable (no connection, a failed write), busy (a lock"
    " not granted in time), other (any other error of the database or its driver).",
    ["kind"],
    registry=REGISTRY,
)
DATABASE_CONNECTIONS = Gauge(
    "promopool_database_connections",
    "PostgreSQL connections of the workers' pools: open, in_use, max (the pools' size).",
    ["state"],
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
# The children the drivers move, looked up once (labels() on each acquire would cost a dict lookup more).
CONNECTIONS_OPEN = DATABASE_CONNECTIONS.labels("open")
CONNECTIONS_IN_USE = DATABASE_CONNECTIONS.labels("in_use")
CONNECTIONS_MAX = DATABASE_CONNECTIONS.labels("max")
SQLITE_WRITES_PENDING = Gauge(
    "promopool_sqlite_writes_pending",
    "SQLite writes queued for the writer thread or in the commit under way (summed over workers).",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
REFUSALS = Counter(
    "promopool_rate_limited",
    "Requests refused 429 rate_limited, by budget: guessing (failed validate/redeem attempts),"
    " public_fetches (PersonaClick front-end fetches).",
    ["budget"],
    registry=REGISTRY,
)
FAILED_GUESSES = Counter(
    "promopool_failed_guesses",
    "Validate or redeem attempts answered code_unusable (no such code, or not the caller's to use): what"
    " the guessing budget counts.",
    registry=REGISTRY,
)


def count_claim(pool_id: int, result: str, codes: int = 1) -> None:
    """``codes`` claims of the pool (a bulk claim counts each code it handed out)."""
    CLAIMS.labels(str(pool_id), result).inc(codes)


def count_claim_error(pool_id: int, error: Exception) -> None:
    count_claim(pool_id, error.code if isinstance(error, PromopoolError) else "internal_error")


def count_redemption(pool_id: int, result: str = "redeemed") -> None:
    """For the redemption path: one redemption (or ``rolled_back``, or an error code) of the pool."""
    REDEMPTIONS.labels(str(pool_id), result).inc()


def count_imported(pool_id: int, *, inserted: int = 0, duplicates: int = 0, invalid: int = 0) -> None:
    pool = str(pool_id)
    for result, amount in (("inserted", inserted), ("duplicate", duplicates), ("invalid", invalid)):
        if amount:
            IMPORTED_CODES.labels(pool, result).inc(amount)


def count_import(pool_id: int, report: ImportReport, *, refused: bool = False) -> None:
    """An import finished (inserted and duplicate values were counted batch by batch)."""
    count_imported(pool_id, invalid=report.invalid)
    IMPORTS.labels(str(pool_id), "refused" if refused else "ok").inc()


def count_webhook(event: str, result: str) -> None:
    WEBHOOKS.labels(event, result).inc()


def observe_claim(seconds: float) -> None:
    CLAIM_SECONDS.observe(seconds)


def count_refusal(budget: str) -> None:
    """A 429: the caller's ``budget`` (guessing, public_fetches) was spent."""
    REFUSALS.labels(budget).inc()


def count_failed_guess() -> None:
    FAILED_GUESSES.inc()


# Looked up once: labels() takes a lock and builds a key, a microsecond a claim batch could do without.
_DATABASE_SECONDS = {
    operation: DATABASE_SECONDS.labels(operation) for operation in ("write", "read", "claim")
}


def observe_database(operation: str, seconds: float) -> None:
    _DATABASE_SECONDS[operation].observe(seconds)


def count_database_error(error: BaseException) -> None:
    """A database operation failed with ``error``: counted by kind, unless it is a domain refusal
    (PoolNotFound, a unique violation turned into AlreadyExists …), an answer rather than a failure."""
    if isinstance(error, StorageBusy):
        kind = "busy"
    elif isinstance(error, StorageUnavailable):
        kind = "unavailable"
    elif isinstance(error, PromopoolError) or not isinstance(error, Exception):
        return  # (not an Exception: a cancelled request, the process stopping)
    else:
        kind = "other"
    DATABASE_ERRORS.labels(kind).inc()


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUEST_SECONDS.labels(method, route, str(status)).observe(seconds)


@dataclass(frozen=True, slots=True)
class DatabaseReading:
    """What /metrics reads from the database at scrape time."""

    pools: list[InventoryRow]  # the first ``metrics_max_pools`` by id
    total_pools: int
    cli_runs: list[CliRuns]


class _FromDatabase(Collector):
    """The pools' counters and the CLI's runs as read just now (or ``promopool_database_up 0``)."""

    def __init__(self, reading: DatabaseReading | None) -> None:
        self._reading = reading

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("promopool_database_up", "1 when the database answered this scrape.")
        up.add_metric([], 0 if self._reading is None else 1)
        yield up
        if self._reading is None:
            return
        yield from _inventory(self._reading)
        yield from _cli_runs(self._reading.cli_runs)


def _inventory(reading: DatabaseReading) -> Iterator[Metric]:
    codes = GaugeMetricFamily(
        "promopool_pool_codes", "Codes of a pool by state.", labels=["account", "pool", "state"]
    )
    # The name in a label of its own family: a renamed pool keeps its series, and the stock is joined to
    # the name in a query (docs/operations.md, "Metrics").
    info = GaugeMetricFamily(
        "promopool_pool_info", "A pool's account and name (always 1).", labels=["account", "pool", "name"]
    )
    for row in reading.pools:
        labels = [row.account, str(row.pool_id)]
        codes.add_metric([*labels, "available"], row.available)
        codes.add_metric([*labels, "issued"], row.issued)
        codes.add_metric([*labels, "redeemed"], row.redeemed)
        info.add_metric([*labels, row.pool_name], 1)
    yield codes
    yield info
    pools = GaugeMetricFamily("promopool_pools", "Pools in the database, reported or not.")
    pools.add_metric([], reading.total_pools)
    yield pools
    left_out = GaugeMetricFamily(
        "promopool_pools_unreported", "Pools beyond PROMOPOOL_METRICS_MAX_POOLS, whose stock is not reported."
    )
    left_out.add_metric([], reading.total_pools - len(reading.pools))
    yield left_out


def _cli_runs(runs: list[CliRuns]) -> Iterator[Metric]:
    started = CounterMetricFamily(
        "promopool_cli_runs",
        "Imports and generations run from the CLI (another process: counted in the database), by command"
        " and result: started, succeeded, failed.",
        labels=["command", "result"],
    )
    stored = CounterMetricFamily(
        "promopool_cli_codes", "Codes the CLI's finished imports and generations stored.", labels=["command"]
    )
    by_command: dict[str, int] = {}
    for run in runs:
        started.add_metric([run.command, run.result], run.runs)
        by_command[run.command] = by_command.get(run.command, 0) + run.codes
    for command, codes in by_command.items():
        stored.add_metric([command], codes)
    yield started
    yield stored


class _Build(Collector):
    """Which promopool answers: a constant 1 labelled with the version, the usual way to chart upgrades."""

    def collect(self) -> Iterable[Metric]:
        info = GaugeMetricFamily("promopool_build_info", "The running version.", labels=["version"])
        info.add_metric([__version__], 1)
        yield info


class _Local(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def forget_dead_workers(directory: str) -> None:
    """Drop the live gauges (connections in use, writes pending) of worker processes that have ended — a
    worker the server replaced after a crash — so that they are not summed forever. Their counters stay:
    what they counted happened."""
    for path in Path(directory).glob("gauge_live*_*.db"):
        pid = path.stem.rpartition("_")[2]
        if pid.isdigit() and not _alive(int(pid)):
            mark_process_dead(int(pid), directory)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process now holds the pid: ours is gone
        return False
    return True


async def read_database(store: Inventory, *, max_pools: int) -> DatabaseReading | None:
    """What the scrape reports from the database; None when it did not answer."""
    try:
        pools, total = await store.pool_inventory(limit=max_pools)
        runs = await store.cli_runs()
    except StorageUnavailable:
        return None
    return DatabaseReading(pools=pools, total_pools=total, cli_runs=runs)


async def exposition(store: Inventory, *, max_pools: int) -> bytes:
    """The Prometheus text exposition: counters, gauges and histograms (all workers), the stock of at most
    ``max_pools`` pools and the CLI's runs from the store."""
    reading = await read_database(store, max_pools=max_pools)
    registry = CollectorRegistry(auto_describe=False)
    directory = os.environ.get(MULTIPROCESS_ENV)
    if directory:
        forget_dead_workers(directory)
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Local())
    registry.register(_Build())
    registry.register(_FromDatabase(reading))
    return generate_latest(registry)
