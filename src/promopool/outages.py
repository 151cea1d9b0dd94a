"""Database outages in the server log: one line when one begins, one when it ends.

While the database is away every request answers 503 and every background loop (lease sweeper, webhook
sender, job sweeper, key purger) fails its round, and asyncpg's pool fails each attempt to reconnect: each
of them used to log a traceback, dozens for one PostgreSQL restart. They report here instead. A failure
opens an outage (logged once, as an error); the next success of a background round closes it (logged with
its length). Outages beginning within ``QUIET_SECONDS`` of the last one logged are counted, not logged,
and the next line that is logged says how many there were. One tracker per process: each worker speaks
for itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from promopool.domain.errors import StorageUnavailable

log = logging.getLogger("promopool")

QUIET_SECONDS = 60.0


class Outages:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._since: float | None = None  # when the current outage began; None while the database answers
        self._logged = False  # whether the current outage's beginning was logged
        self._last_logged: float | None = None
        self._unlogged = 0  # outages since the last one logged that were not logged

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException) -> None:
        """An operation failed for want of the database."""
        if self._since is not None:
            return
        now = self._since = self._clock()
        if self._last_logged is not None and now - self._last_logged < QUIET_SECONDS:
            self._logged = False
            self._unlogged += 1
            return
        reason = exc.message if isinstance(exc, StorageUnavailable) else str(exc) or type(exc).__name__
        also = f" ({self._unlogged} brief outages since the last one logged)" if self._unlogged else ""
        log.error("database unavailable: %s; requests answer 503 until it is back%s", reason, also)
        self._logged, self._last_logged, self._unlogged = True, now, 0

    def succeeded(self) -> None:
        """An operation that needs the database succeeded."""
        if self._since is None:
            return
        if self._logged:
            log.warning("database available again, after %.1f s", self._clock() - self._since)
        self._since = None


OUTAGES = Outages()


def background_failure(what: str, exc: Exception) -> None:
    """A background round failed: an outage is reported once, anything else logged with its traceback."""
    if isinstance(exc, StorageUnavailable):
        OUTAGES.failed(exc)
    else:
        log.warning("%s", what, exc_info=exc)


class PoolReconnects(logging.Filter):
    """asyncpg's pool logs, with a traceback, each failed attempt to reopen a connection; during an outage
    those are the outage's, reported once."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            OUTAGES.failed(record.exc_info[1])
            return False
        return True
