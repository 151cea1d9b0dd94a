"""The native error body, and the one mapping from the error tree (and the framework's own errors) to it.

Every native error response is ``{"error": {"code": "...", "message": "...", "details": {...}}}``.
"""

from __future__ import annotations

import logging
import traceback
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

from promopool.domain import errors as e
from promopool.formats.json import UNDECODABLE

log = logging.getLogger("promopool")

STATUS: list[tuple[type[e.PromopoolError], int]] = [
    (e.PayloadTooLarge, 413),
    (e.InvalidInput, 400),
    (e.Unauthenticated, 401),
    (e.Forbidden, 403),
    (e.NotFound, 404),
    (e.IdempotencyKeyReused, 422),
    (e.Conflict, 409),
    (e.RateLimited, 429),
    (e.StorageUnavailable, 503),
]

# The framework's own refusals, named in the same vocabulary.
HTTP_CODES = {
    400: "invalid_input",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "internal_error",
    503: "storage_unavailable",
}


def status_for(error: e.PromopoolError, table: list[tuple[type[e.PromopoolError], int]] = STATUS) -> int:
    """The status of the first (most specific) entry of ``table`` the error is an instance of; 500 for none.
    Each dialect passes its own table: the vendors answer some errors with other statuses."""
    return next((status for kind, status in table if isinstance(error, kind)), 500)


def dialect_status(
    error: e.PromopoolError, table: list[tuple[type[e.PromopoolError], int]]
) -> tuple[int, dict[str, str]]:
    """A vendor dialect's status for ``error`` (its own ``table``) and the Retry-After header of a rate
    limit. An error the table does not map is a bug: logged here with its traceback; the dialect answers
    its own 500."""
    status = status_for(error, table)
    if status == 500:
        log.error("unmapped promopool error %s", error.code, exc_info=error)
    return status, retry_after(error)


def retry_after(error: e.PromopoolError) -> dict[str, str]:
    if isinstance(error, e.RateLimited | e.StorageBusy):
        return {"Retry-After": str(error.retry_after)}
    return {}


def framework_message(exc: HTTPException) -> str:
    """The message of one of the framework's own refusals. A failed validation is named by parameter: the
    framework's own detail quotes the whole URL, credentials included."""
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list) and exc.extra:
        return "; ".join(
            f"{item.get('key', 'parameter')}: {item.get('message', 'invalid')}"
            for item in exc.extra
            if isinstance(item, dict)
        )
    return exc.detail or HTTPStatus(exc.status_code).phrase


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return {"error": body}


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    return Response(
        content=error_body(code, message, details),
        status_code=status,
        media_type=MediaType.JSON,
        headers=headers,
    )


def _jsonable(details: dict[str, Any]) -> dict[str, Any]:
    return msgspec.to_builtins(details, str_keys=True, enc_hook=str)  # type: ignore[no-any-return]


def domain_error(exc: e.PromopoolError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """The status, body and headers that answer ``exc`` on the native API."""
    headers = retry_after(exc)
    if isinstance(exc, e.Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    return status_for(exc), error_body(exc.code, exc.message, _jsonable(exc.details)), headers


def handle_domain_error(_: Request[Any, Any, Any], exc: e.PromopoolError) -> Response[Any]:
    status, body, headers = domain_error(exc)
    return Response(content=body, status_code=status, media_type=MediaType.JSON, headers=headers)


def handle_http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    code = HTTP_CODES.get(status, "http_error")
    message = exc.detail or HTTPStatus(status).phrase
    details: dict[str, Any] = {}
    if isinstance(exc, ValidationException) and exc.extra:
        details["errors"] = exc.extra
    headers = dict(exc.headers or {})
    return error_response(status, code, message, _jsonable(details), headers)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    # Logged here with its traceback; the client learns nothing about internals.
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal server error")


# msgspec answers some malformed JSON with plain Python errors rather than its DecodeError (UNDECODABLE),
# and the framework's body parsing converts only DecodeError. Raised there, they are bad input; anywhere
# else, bugs.
def handle_undecodable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    frames = traceback.extract_tb(exc.__traceback__)
    if frames and frames[-1].name == "decode_json":  # litestar.serialization's, around msgspec
        return error_response(400, "invalid_input", UNDECODABLE[type(exc)])
    return handle_unexpected(request, exc)


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    e.PromopoolError: handle_domain_error,
    HTTPException: handle_http_error,
    **dict.fromkeys(UNDECODABLE, handle_undecodable),
    Exception: handle_unexpected,
}


def answered_by(handler: Any) -> dict[type[Exception] | int, Any]:
    """A dialect router's exception handlers: ``handler`` for every key of the app's own table. A key
    left out would let the app's more specific handler answer the dialect's routes in the native body."""
    return dict.fromkeys(EXCEPTION_HANDLERS, handler)
