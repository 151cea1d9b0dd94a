"""What route handlers receive: the store, the settings and the caller's account."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import unquote_to_bytes

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.handlers import BaseRouteHandler
from litestar.params import HeaderParameter, PathParameter

from promopool import service
from promopool.config import Settings
from promopool.domain import Account
from promopool.domain.errors import InvalidInput, PayloadTooLarge
from promopool.service.jobs import JobRunner
from promopool.storage import Store

# Handler parameters filled by dependency injection (by name: store, settings, account).
StoreDep = NamedDependency[Store]
SettingsDep = NamedDependency[Settings]
AccountDep = NamedDependency[Account]
JobsDep = NamedDependency[JobRunner]

# The largest integer a JSON number (and the OpenAPI document, which writes bounds as floats) holds exactly;
# no id comes near it.
MAX_ID = 2**53 - 1
PoolId = Annotated[int, PathParameter(ge=1, le=MAX_ID, description="The pool's numeric id.")]
JobId = Annotated[int, PathParameter(ge=1, le=MAX_ID, description="The job's numeric id.")]

# service.check_idempotency_key: 1-255 printable characters; a header carries latin-1, in which U+00A0 and
# U+00AD are the only non-control characters Python does not call printable.
IDEMPOTENCY_KEY_PATTERN = "^[\\x20-\\x7e\\xa1-\\xac\\xae-\\xff]+$"
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=1,
        max_length=service.MAX_IDEMPOTENCY_KEY,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Makes retries safe: the same key returns the first request's result.",
    ),
]


REPLAYED = {"Idempotent-Replayed": "true"}  # on every keyed route's replayed answer


def replayed_headers(replayed: bool) -> dict[str, str] | None:
    return REPLAYED if replayed else None


def no_content(replayed: bool) -> Response[None]:
    """A keyed DELETE's 204 (documented without a body by ``openapi.NO_CONTENT``)."""
    return Response(None, status_code=204, headers=replayed_headers(replayed))


# Litestar resolves the dependencies of one depth in an anyio task group, a task each: with `store` and
# `account` side by side that was a fifth of a claim's CPU time. So the providers form a chain, along what
# each really uses (settings -> store -> account / jobs), and a handler's dependencies resolve one per depth,
# inline.


def provide_settings(state: State) -> Settings:
    settings: Settings = state.settings
    return settings


def provide_store(state: State, settings: SettingsDep) -> Store:  # opened from the settings' database_url
    store: Store = state.store
    return store


def provide_jobs(state: State, store: StoreDep) -> JobRunner:  # runs its jobs on the store
    jobs: JobRunner = state.jobs
    return jobs


async def provide_account(request: Request[Any, Any, Any], store: StoreDep) -> Account:
    # (`store` orders this after the store: the authenticator reads the keys from it.)
    return await request.app.state.auth.account_for_header(  # type: ignore[no-any-return]
        request.headers.get("authorization")
    )


async def limited_stream(request: Request[Any, Any, Any], limit: int) -> AsyncIterator[bytes]:
    """The request body in chunks; PayloadTooLarge as soon as it announces or exceeds ``limit`` bytes."""
    announced = request.headers.get("content-length")
    if announced is not None and announced.isdigit() and int(announced) > limit:
        raise PayloadTooLarge(f"request body larger than {limit} bytes", limit=limit)
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise PayloadTooLarge(f"request body larger than {limit} bytes", limit=limit)
        yield chunk


async def read_limited(request: Request[Any, Any, Any], limit: int) -> bytes:
    return b"".join([chunk async for chunk in limited_stream(request, limit)])


def utf8_query(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard of the vendor dialects' routers: InvalidInput when the query string's escapes are not UTF-8.

    The framework decodes such bytes as U+FFFD, so a code, a device id or a name the client never sent
    would be stored or looked up (the native API takes no free text from its query strings)."""
    raw: bytes = connection.scope.get("query_string", b"")
    try:
        unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the query string is not UTF-8") from None
