"""The promo-code handlers: parse the vendor's request, call the service, render the vendor's response."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, delete, get, post, route
from litestar.enums import HttpMethod
from litestar.exceptions import HTTPException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec

from promopool import service
from promopool.api.deps import SettingsDep, StoreDep
from promopool.api.native.openapi import Documented
from promopool.api.personaclick import params
from promopool.api.personaclick.errors import JSON_TYPE
from promopool.domain import Account
from promopool.domain.errors import InvalidInput, Unauthenticated
from promopool.domain.guessing import FailureBudget
from promopool.storage import Store

DEFAULT_LIMIT = 1000


class PromoList(msgspec.Struct):
    id: int
    name: str
    available: int


class Fetched(msgspec.Struct):
    code: str


class Done(msgspec.Struct, omit_defaults=True):
    status: str  # "success"
    message: str | None = None


class Deleted(msgspec.Struct):
    deleted_count: int
    not_found_count: int


class DeletedBody(msgspec.Struct):
    payload: Deleted
    status: str = "success"


def _answer(body: Any, description: str) -> dict[int, ResponseSpec]:
    """The handlers answer encoded bytes; the document names the body they hold."""
    return {200: ResponseSpec(body, description=description, generate_examples=False)}


def _json(value: Any) -> Response[bytes]:
    return Response(msgspec.json.encode(value), media_type=JSON_TYPE)


async def _shop(store: Store, shop_id: str, shop_secret: str | None) -> Account:
    if not shop_secret:
        raise Unauthenticated("shop_secret is missing")
    return await service.authenticate_shop(store, public_key=shop_id, api_key=shop_secret)


def _shop_id(value: str | None) -> str:
    return str(params.required(value, "shop_id"))


@get(
    "/promo_codes",
    summary="Promo code lists",
    operation_class=Documented,
    responses=_answer(list[PromoList], "The lists, in list-id order, with their free codes"),
)
async def list_lists(request: Request[Any, Any, Any], store: StoreDep) -> Response[bytes]:
    shop_id = _shop_id(params.query(request, "shop_id"))
    active = params.query(request, "active")
    if active not in (None, "0", "1", "true", "false"):
        raise InvalidInput(f"active must be 1 or 0, got {active!r}", field="active")
    include = params.id_list(request, "include")
    exclude = params.id_list(request, "exclude") or set()
    offset = params.number(request, "offset", 0)
    limit = params.number(request, "limit", DEFAULT_LIMIT)
    account = await _shop(store, shop_id, params.query(request, "shop_secret"))
    pools = await service.select_pools(
        store,
        account=account,
        active=active in ("1", "true"),
        include=include,
        exclude=exclude,
        offset=offset,
        limit=limit,
    )
    return _json([PromoList(pool.id, pool.name, pool.counts.available) for pool in pools])


# The framework's body limit is off for this route (an upload of a million codes is larger than other JSON
# bodies); the handler reads at most `personaclick_max_body_mib` instead.
@post(
    "/promo_codes",
    status_code=200,
    request_max_body_size=None,
    summary="Upload codes",
    operation_class=Documented,
    responses=_answer(Done, "What was added and skipped"),
)
async def upload(request: Request[Any, Any, Any], store: StoreDep, settings: SettingsDep) -> Response[bytes]:
    body = await params.body(request, settings.personaclick_max_body_bytes)
    shop_id = _shop_id(body.shop_id)
    pool_id = params.list_id(body.id)
    if body.codes is None:
        raise params.missing("codes")
    codes, body.codes = body.codes, None  # the only reference left: freed as soon as the import is done
    account = await _shop(store, shop_id, body.shop_secret)
    report = await service.import_codes(store, account=account, pool_id=pool_id, values=codes)
    message = f"{report.inserted} promo codes added, {report.duplicates} non-unique skipped"
    if report.invalid:
        message += f", {report.invalid} invalid skipped"
    return _json(Done("success", message))


@get(
    "/promo_codes/fetch",
    summary="The next promo code",
    operation_class=Documented,
    responses=_answer(Fetched, "The code, handed out to the caller"),
)
async def fetch(request: Request[Any, Any, Any], store: StoreDep) -> Response[bytes]:
    shop_id = _shop_id(params.query(request, "shop_id"))
    pool_id = params.list_id(params.query(request, "id"))
    secret = params.query(request, "shop_secret")
    if secret is not None:  # backend: a new code on every call
        account = await _shop(store, shop_id, secret)
        claimed = await service.claim(store, account=account, pool_id=pool_id)
        return _json(Fetched(claimed.code.value))
    # Front end: with the visitor's `did` one code per device; without it (the vendor's own example) a new
    # code per call. Either way only on public-fetch pools, and rate-limited per address.
    did = params.query(request, "did")
    budget: FailureBudget = request.app.state.public_fetches
    budget.take([f"address:{request.client.host if request.client else 'unknown'}"])
    account = await service.account_by_public_key(store, public_key=shop_id)
    claimed = await service.fetch_for_device(store, account=account, pool_id=pool_id, did=did)
    return _json(Fetched(claimed.code.value))


@delete(
    "/promo_codes/purge",
    status_code=200,
    summary="Delete a list's free codes",
    operation_class=Documented,
    responses=_answer(Done, "The free codes are gone"),
)
async def purge(request: Request[Any, Any, Any], store: StoreDep, settings: SettingsDep) -> Response[bytes]:
    body = await params.body(request, settings.max_body_bytes)
    shop_id = _shop_id(body.shop_id)
    pool_id = params.list_id(body.id)
    account = await _shop(store, shop_id, body.shop_secret)
    await service.purge_pool(store, account=account, pool_id=pool_id)
    return _json(Done("success"))


@delete(
    "/promo_codes/delete",
    status_code=200,
    summary="Delete codes of a list",
    operation_class=Documented,
    responses=_answer(DeletedBody, "How many were deleted and how many not found"),
)
async def delete_codes(
    request: Request[Any, Any, Any], store: StoreDep, settings: SettingsDep
) -> Response[bytes]:
    body = await params.body(request, settings.max_body_bytes)
    shop_id = _shop_id(body.shop_id)
    pool_id = params.list_id(body.promo_code_list_id, "promo_code_list_id")
    if body.codes is None:
        raise params.missing("codes")
    account = await _shop(store, shop_id, body.shop_secret)
    deleted, not_found = await service.delete_codes(
        store, account=account, pool_id=pool_id, values=body.codes
    )
    return _json(DeletedBody(payload=Deleted(deleted, not_found)))


# Answered here rather than by the router, so that the vendor's error body applies.
def _not_allowed(path: str, allowed: list[str]) -> HTTPRouteHandler:
    others = [HttpMethod(m) for m in ("GET", "POST", "PUT", "PATCH", "DELETE") if m not in allowed]

    async def handler() -> None:
        raise HTTPException(
            status_code=405, detail=f"only {', '.join(allowed)}", headers={"Allow": ", ".join(allowed)}
        )

    handler.__name__ = f"not_allowed_{path.strip('/').replace('/', '_')}"
    return route(path, http_method=others, include_in_schema=False)(handler)


NOT_ALLOWED = [
    _not_allowed("/promo_codes", ["GET", "POST"]),
    _not_allowed("/promo_codes/fetch", ["GET"]),
    _not_allowed("/promo_codes/purge", ["DELETE"]),
    _not_allowed("/promo_codes/delete", ["DELETE"]),
]
