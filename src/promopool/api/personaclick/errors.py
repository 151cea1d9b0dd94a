"""The PersonaClick error body, ``{"status": "error", "message": …}``, and the one mapping to it.

Statuses follow the vendor: a wrong or missing ``shop_secret`` (or an unknown ``shop_id``) 403, a missing
required parameter or an unknown list 404, a malformed body or parameter 400, and a list with no free code
404 (the web SDK treats any non-200 as "no code").
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException

from promopool.api.errors import answered_by, dialect_status, framework_message
from promopool.domain import errors as e

log = logging.getLogger("promopool")

JSON_TYPE = "application/json; charset=utf-8"

STATUS: list[tuple[type[e.PromopoolError], int]] = [
    (e.PayloadTooLarge, 413),
    (e.InvalidInput, 400),
    (e.Unauthenticated, 403),
    (e.Forbidden, 403),
    (e.NotFound, 404),
    (e.PoolExhausted, 404),
    (e.PoolExpired, 404),  # an expired list hands out nothing: for the SDK the same as an empty one
    (e.Conflict, 409),
    (e.RateLimited, 429),
    (e.StorageUnavailable, 503),
]


def vendor_error(exc: Exception) -> tuple[int, str, dict[str, str]]:
    """(HTTP status, message, headers) for any exception raised while serving the dialect."""
    if isinstance(exc, e.PromopoolError):
        status, headers = dialect_status(exc, STATUS)
        if status == 500:
            return 500, "internal server error", {}
        return status, exc.message, headers
    if isinstance(exc, HTTPException):
        return exc.status_code, framework_message(exc), dict(exc.headers or {})
    log.error("unhandled error in the PersonaClick dialect", exc_info=exc)
    return 500, "internal server error", {}


class ErrorBody(msgspec.Struct):
    message: str
    status: str = "error"


def handle_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    status, message, headers = vendor_error(exc)
    body = msgspec.json.encode(ErrorBody(message=message))
    return Response(body, status_code=status, media_type=JSON_TYPE, headers=headers)


EXCEPTION_HANDLERS = answered_by(handle_error)
