"""Altcraft's error envelope, ``{"data": null, "error": <code>, "error_text": …}``, and the one mapping to it.

Codes: 400 incorrect request, 401 API token required, 403 access denied (a wrong token), 404 unknown loyalty
program, code, profile or profile database, 409 conflict (attached already, not attached, no free code),
and the honest HTTP status for the rest (429, 503, 500). The HTTP status equals the envelope's code.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException

from promopool.api.altcraft.render import envelope, media_type
from promopool.api.altcraft.request import FORMAT_STATE
from promopool.api.errors import answered_by, dialect_status
from promopool.domain import errors as e

log = logging.getLogger("promopool")

STATUS: list[tuple[type[e.PromopoolError], int]] = [
    (e.InvalidInput, 400),  # a body over the size limit included
    (e.Unauthenticated, 401),
    (e.Forbidden, 403),
    (e.NotFound, 404),
    (e.Conflict, 409),
    (e.RateLimited, 429),
    (e.StorageUnavailable, 503),
]


def vendor_error(exc: Exception) -> tuple[int, str, dict[str, str]]:
    """(code = HTTP status, error_text, headers) for any exception raised while serving the dialect."""
    if isinstance(exc, e.PromopoolError):
        status, headers = dialect_status(exc, STATUS)
        if status == 500:
            return 500, "Internal server error", {}
        return status, exc.message, headers
    if isinstance(exc, HTTPException):
        status = exc.status_code
        if status == 413:
            # The framework's own body limit (it counts a chunked body first): as PayloadTooLarge.
            return 400, "request body larger than the limit", {}
        text = exc.detail or HTTPStatus(status).phrase
        return status, text, dict(exc.headers or {})
    log.error("unhandled error in the Altcraft dialect", exc_info=exc)
    return 500, "Internal server error", {}


def handle_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    status, text, headers = vendor_error(exc)
    xml = request.state.get(FORMAT_STATE)
    if xml is None:  # failed before the format was read: the URL's, if valid
        xml = str(request.query_params.get("format", "")).strip().lower() == "xml"
    body = envelope(None, error=status, error_text=text, xml=xml)
    return Response(body, status_code=status, media_type=media_type(xml), headers=headers)


EXCEPTION_HANDLERS = answered_by(handle_error)
