"""The SuperSaaS error envelope, ``{"errors": [{"code": …, "title": …}]}``, and the one mapping to it.

Statuses are those the official clients map (400, 401, 403, 404, 405, 422) where the error has one, and the
honest HTTP status otherwise. ``code`` is promopool's stable error code; ``title`` says what went wrong. A
``.xml`` request gets the same envelope as Rails-style XML.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException

from promopool.api.errors import HTTP_CODES, answered_by, dialect_status, framework_message
from promopool.api.supersaas.render import JSON_TYPE, XML_TYPE, wants_xml
from promopool.domain import errors as e
from promopool.formats.xml import RailsXmlWriter

log = logging.getLogger("promopool")

STATUS: list[tuple[type[e.PromopoolError], int]] = [
    (e.PayloadTooLarge, 413),
    (e.InvalidInput, 400),  # InvalidCode included: the new promotion code cannot be a code
    (e.Unauthenticated, 401),
    (e.Forbidden, 403),
    (e.NotFound, 404),
    (e.Conflict, 422),  # the new promotion code already exists, among others
    (e.RateLimited, 429),
    (e.StorageUnavailable, 503),
]


def vendor_error(exc: Exception) -> tuple[int, str, str, dict[str, str]]:
    """(HTTP status, code, title, headers) for any exception raised while serving the dialect."""
    if isinstance(exc, e.PromopoolError):
        status, headers = dialect_status(exc, STATUS)
        if status == 500:
            return 500, "internal_error", "internal server error", {}
        if isinstance(exc, e.Unauthenticated):
            headers["WWW-Authenticate"] = 'Basic realm="promopool"'
        return status, exc.code, exc.message, headers
    if isinstance(exc, HTTPException):
        status = exc.status_code
        return status, HTTP_CODES.get(status, "http_error"), framework_message(exc), dict(exc.headers or {})
    log.error("unhandled error in the SuperSaaS dialect", exc_info=exc)
    return 500, "internal_error", "internal server error", {}


class ErrorItem(msgspec.Struct):
    code: str
    title: str


class ErrorEnvelope(msgspec.Struct):
    errors: list[ErrorItem]


def handle_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    status, code, title, headers = vendor_error(exc)
    if wants_xml(request):
        writer = RailsXmlWriter()
        writer.start_document()
        writer.start_array("errors")
        writer.record("error", {"code": code, "title": title})
        writer.end_array("errors")
        body, media_type = writer.take(), XML_TYPE
    else:
        body = msgspec.json.encode(ErrorEnvelope([ErrorItem(code, title)]))
        media_type = JSON_TYPE
    return Response(body, status_code=status, media_type=media_type, headers=headers)


EXCEPTION_HANDLERS = answered_by(handle_error)
