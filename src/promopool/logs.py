"""Structured logs: one JSON object per line, carrying the request id of the request being served.

``request_id`` is set by the HTTP middleware (``api/observe.py``) for the duration of a request; every
record logged meanwhile (by promopool, the framework or the server) carries it. Extra fields go in
``extra={"fields": {...}}``.
"""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import UTC, datetime
from typing import Any

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "request_id"?, ...fields, "exc"?}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id.get()
        if rid is not None:
            entry["request_id"] = rid
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def log_config(level: str, *, access_log: bool = False) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` (given to the server, so every worker uses it): everything as JSON
    lines on stderr; the server's own access log off, ours (``promopool.access``, with the request id) if
    asked."""
    upper = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "promopool.logs.JsonFormatter"}},
        "filters": {"pool_reconnects": {"()": "promopool.outages.PoolReconnects"}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
        },
        "loggers": {
            "_granian": {"handlers": ["stderr"], "level": upper, "propagate": False},
            "granian.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "promopool": {"handlers": ["stderr"], "level": upper, "propagate": False},
            "promopool.access": {"level": "INFO" if access_log else "WARNING"},
            # its failed reconnects are an outage's, logged once by promopool.outages
            "asyncpg.pool": {"filters": ["pool_reconnects"]},
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }
