"""Prometheus metrics: what the service counts, and the ``/metrics`` exposition.

Counters and the latency histogram live in this process (or, when ``promopool serve --workers N`` runs
several worker processes, in prometheus-client's multiprocess files, which the exposition sums over all
workers). The pool inventory gauges are read from the database at scrape time: the counters live in the pool
rows, so that is one cheap query and always the truth, whichever worker answers.

The counting functions (``count_claim``, ``count_redemption``, ``count_imported``, ``count_import``,
``count_webhook``) are the hooks the service calls; labels are bounded (pool ids, result codes).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from promopool import __version__
from promopool.domain.errors import PromopoolError

if TYPE_CHECKING:
    from promopool.domain import ImportReport
    from promopool.domain.alerts import InventoryRow
    from promopool.storage import Store

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
REQUEST_SECONDS = Histogram(
    "promopool_http_request_duration_seconds",
    "HTTP request latency by method, route template and status.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
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


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUEST_SECONDS.labels(method, route, str(status)).observe(seconds)


class _Inventory(Collector):
    """The pools' counters as read just now (or ``promopool_database_up 0`` when that failed)."""

    def __init__(self, rows: list[InventoryRow] | None) -> None:
        self._rows = rows

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("promopool_database_up", "1 when the database answered this scrape.")
        up.add_metric([], 0 if self._rows is None else 1)
        yield up
        if self._rows is None:
            return
        codes = GaugeMetricFamily(
            "promopool_pool_codes", "Codes of a pool by state.", labels=["account", "pool", "state"]
        )
        for row in self._rows:
            labels = [row.account, str(row.pool_id)]
            codes.add_metric([*labels, "available"], row.available)
            codes.add_metric([*labels, "issued"], row.issued)
            codes.add_metric([*labels, "redeemed"], row.redeemed)
        yield codes


class _Build(Collector):
    """Which promopool answers: a constant 1 labelled with the version, the usual way to chart upgrades."""

    def collect(self) -> Iterable[Metric]:
        info = GaugeMetricFamily("promopool_build_info", "The running version.", labels=["version"])
        info.add_metric([__version__], 1)
        yield info


class _Local(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


async def exposition(store: Store) -> bytes:
    """The Prometheus text exposition: counters and histograms (all workers), inventory from the store."""
    from promopool.domain.errors import StorageUnavailable

    try:
        rows: list[InventoryRow] | None = await store.pool_inventory()
    except StorageUnavailable:
        rows = None
    registry = CollectorRegistry(auto_describe=False)
    directory = os.environ.get(MULTIPROCESS_ENV)
    if directory:
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Local())
    registry.register(_Build())
    registry.register(_Inventory(rows))
    return generate_latest(registry)
