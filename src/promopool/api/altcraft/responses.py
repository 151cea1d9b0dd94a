"""The one Altcraft route, ``POST /api/v1.1/promocodes/{method}``: read, authenticate, dispatch, render."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post, route
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from litestar.response import Stream

from promopool.api.altcraft import methods, render
from promopool.api.altcraft.request import FORMAT_STATE, Params, is_xml_body, parse_body, wants_xml
from promopool.api.deps import SettingsDep, StoreDep, read_limited
from promopool.domain import Account
from promopool.domain.errors import Forbidden, NotFound, Unauthenticated

ALL_METHODS = [*methods.METHODS, "export_all"]

DESCRIPTION = """\
Altcraft API v1.1 promo codes: `import`, `get`, `activate`, `update`, `attach`, `detach`, `export_all`.
Parameters in a JSON object or an `<xml>` document (`Content-Type: application/xml`); `token` in the body,
as `Authorization: Bearer`, or in the query; `format` (`json`, `xml`) in the body or the query. Every answer
is the envelope `{"data", "error", "error_text"}`. See docs/dialects/altcraft.md.
"""


def _token(request: Request[Any, Any, Any], values: dict[str, Any]) -> str:
    token = values.get("token")
    if isinstance(token, str) and token.strip():
        return token.strip()
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    query_token: str | None = request.query_params.get("token")
    if query_token and query_token.strip():
        return query_token.strip()
    raise Unauthenticated("API token required")


async def _account(request: Request[Any, Any, Any], values: dict[str, Any]) -> Account:
    token = _token(request, values)
    try:
        account: Account = await request.app.state.auth.account_for_key(token)
    except Unauthenticated:
        raise Forbidden("Access denied") from None
    return account


@post("/{method:str}", status_code=200, summary="Altcraft promo-code method", description=DESCRIPTION)
async def promocodes(
    request: Request[Any, Any, Any], store: StoreDep, settings: SettingsDep, method: FromPath[str]
) -> Response[Any]:
    request.state[FORMAT_STATE] = wants_xml(request.query_params.get("format"))
    body = await read_limited(request, settings.max_body_bytes)
    values = parse_body(body, xml=is_xml_body(request))
    if values.get("format") not in (None, ""):
        request.state[FORMAT_STATE] = wants_xml(values["format"])
    xml: bool = request.state[FORMAT_STATE]
    if method not in ALL_METHODS:
        raise NotFound(f"unknown method {method!r}: use one of {', '.join(ALL_METHODS)}")
    account = await _account(request, values)
    params = Params(values)
    if method == "export_all":
        pages = methods.export_pages(store, account, params)
        first = await anext(pages, None)  # the loyalty program is checked before the answer starts
        if first is None:
            return Response(render.envelope([], xml=xml), media_type=render.media_type(xml))
        return Stream(render.streamed_envelope(first, pages, xml=xml), media_type=render.media_type(xml))
    data = await methods.METHODS[method](store, account, params)
    return Response(render.envelope(data, xml=xml), media_type=render.media_type(xml))


@route("/{method:str}", http_method=["GET", "PUT", "PATCH", "DELETE"], include_in_schema=False)
async def not_allowed(method: FromPath[str]) -> None:
    # Answered here rather than by the router, so that the vendor's envelope applies.
    raise HTTPException(status_code=405, detail="only POST", headers={"Allow": "POST"})
