"""promopool.outages: an outage is one line when it begins and one when it ends; a flapping database does not
fill the log."""

from __future__ import annotations

import logging

import pytest

from promopool import outages
from promopool.domain.errors import StorageUnavailable
from promopool.outages import QUIET_SECONDS, Outages, PoolReconnects


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records]


def test_one_line_when_it_begins_and_one_when_it_ends(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    tracker = Outages(clock)
    with caplog.at_level(logging.INFO, logger="promopool"):
        tracker.succeeded()  # nothing to end
        for _ in range(50):
            tracker.failed(StorageUnavailable("PostgreSQL is unavailable: connection refused"))
            clock.now += 0.1
        assert tracker.ongoing
        tracker.succeeded()
        tracker.succeeded()
    assert messages(caplog) == [
        "database unavailable: PostgreSQL is unavailable: connection refused; requests answer 503 until it is"
        " back",
        "database available again, after 5.0 s",
    ]
    assert all(record.exc_info is None for record in caplog.records)


def test_outages_close_together_are_counted_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    tracker = Outages(clock)
    with caplog.at_level(logging.INFO, logger="promopool"):
        for _ in range(5):  # a flapping database: down one second, up one second
            tracker.failed(OSError("connection refused"))
            clock.now += 1
            tracker.succeeded()
            clock.now += 1
        clock.now += QUIET_SECONDS
        tracker.failed(OSError("connection refused"))
    assert messages(caplog) == [
        "database unavailable: connection refused; requests answer 503 until it is back",
        "database available again, after 1.0 s",
        "database unavailable: connection refused; requests answer 503 until it is back (4 brief outages"
        " since the last one logged)",
    ]


def test_background_failures_and_pool_reconnects(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker = Outages()
    monkeypatch.setattr(outages, "OUTAGES", tracker)
    pool_logger = logging.getLogger("test.asyncpg.pool")
    reconnects = PoolReconnects()
    pool_logger.addFilter(reconnects)
    try:
        with caplog.at_level(logging.INFO):
            try:
                raise ConnectionRefusedError("connect call failed")
            except OSError:
                pool_logger.warning("Failed to restore the pool connection floor; retrying", exc_info=True)
            pool_logger.warning("Pool.close() is taking over 60 seconds to complete")  # no exception: kept
            outages.background_failure("could not end run-out leases", StorageUnavailable("away"))
            outages.background_failure("webhook round failed", ValueError("a bug"))
    finally:
        pool_logger.removeFilter(reconnects)
    assert tracker.ongoing
    assert messages(caplog) == [
        "database unavailable: connect call failed; requests answer 503 until it is back",
        "Pool.close() is taking over 60 seconds to complete",
        "webhook round failed",
    ]
    assert caplog.records[-1].exc_info is not None  # a bug keeps its traceback
