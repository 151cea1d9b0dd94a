"""The HTTP middleware every request passes through, matched or not: request id, latency, access log.

- ``X-Request-Id``: taken from the request when it is a sane token (1-128 printable ASCII characters, no
  spaces), else generated; echoed on the response and carried by every log record of the request.
- ``promopool_http_request_duration_seconds{method, route, status}``: the route is the matched route's
  template (``/v1/pools/{pool_id}/claim``), so ids do not multiply the series; unmatched paths count
  as ``unmatched``.
- One JSON access-log line per request (logger ``promopool.access``, level info).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from promopool import metrics
from promopool.logs import request_id

log = logging.getLogger("promopool.access")

# Plain ASGI shapes: this middleware sits outside the framework's typed scopes.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID_HEADER = b"x-request-id"
_SANE_ID = re.compile(r"[!-~]{1,128}")


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER:
            text = value.decode("latin-1")
            return text if _SANE_ID.fullmatch(text) else None
    return None


def observe(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        rid = _incoming_id(scope) or uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), (REQUEST_ID_HEADER, rid.encode("latin-1"))]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route: str = scope.get("path_template") or "unmatched"  # set by the router when a route matched
            method: str = scope["method"]
            metrics.observe_request(method, route, status, elapsed)
            if log.isEnabledFor(logging.INFO):
                fields: dict[str, Any] = {
                    "method": method,
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                }
                log.info("%s %s %s", method, scope["path"], status, extra={"fields": fields})
            request_id.reset(token)

    return middleware
