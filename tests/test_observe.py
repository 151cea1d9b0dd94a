"""Every response carries a request id; the access log is one JSON line per request, with that id."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import httpx
import pytest

from promopool.logs import JsonFormatter, log_config
from tests.conftest import Tenant

Client = httpx.AsyncClient


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def access_log() -> Iterator[Lines]:
    handler = Lines()
    logger = logging.getLogger("promopool")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


async def test_request_id_is_echoed_or_made(client: Client) -> None:
    given = await client.get("/health", headers={"X-Request-Id": "edge-42.abc"})
    assert given.headers["x-request-id"] == "edge-42.abc"
    made = await client.get("/health")
    assert len(made.headers["x-request-id"]) == 32
    for bad in ("has space", "x" * 200):
        replaced = await client.get("/health", headers={"X-Request-Id": bad})
        assert replaced.headers["x-request-id"] != bad
    missing = await client.get("/no/such/route", headers={"X-Request-Id": "rid-404"})
    assert missing.status_code == 404 and missing.headers["x-request-id"] == "rid-404"


async def test_access_log_is_json_with_the_request_id(
    client: Client, tenant: Tenant, access_log: Lines
) -> None:
    response = await client.post(
        f"/v1/pools/{tenant.pool.id}/claim", headers={**tenant.headers, "X-Request-Id": "rid-1"}
    )
    assert response.status_code == 200
    [line] = [entry for entry in access_log.lines if entry.get("request_id") == "rid-1"]
    assert line["logger"] == "promopool.access" and line["level"] == "info"
    assert line["method"] == "POST" and line["status"] == 200
    assert line["route"] == "/v1/pools/{pool_id}/claim"
    assert line["path"] == f"/v1/pools/{tenant.pool.id}/claim"
    assert isinstance(line["duration_ms"], float)


def test_errors_are_logged_as_json_with_their_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("promopool", logging.ERROR, __file__, 1, "failed %s", ("x",), None)
        import sys

        record.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "failed x" and "ValueError: boom" in entry["exc"]


def test_log_config_is_valid() -> None:
    import logging.config

    logging.config.dictConfig(log_config("warning"))
    assert isinstance(logging.getLogger("promopool").handlers[0].formatter, JsonFormatter)
    logging.getLogger("promopool").handlers.clear()
    logging.getLogger("promopool").propagate = True
    logging.getLogger("_granian").handlers.clear()
    logging.getLogger("_granian").propagate = True
    logging.getLogger().handlers.clear()
