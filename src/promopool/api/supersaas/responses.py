"""The Promotion API handlers: parse the vendor's request, call the service, render the vendor's response.

``/api/promotions.json`` and ``/api/promotions.xml`` differ only in the rendering.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qs, quote

import msgspec
from litestar import Request, Response, get, post, route
from litestar.exceptions import HTTPException
from litestar.params import FromQuery, QueryParameter
from litestar.response import Stream

from promopool import service
from promopool.api.deps import AccountDep, SettingsDep, StoreDep, read_limited
from promopool.api.supersaas import render
from promopool.domain.errors import InvalidInput
from promopool.formats import json

PATHS = ["/promotions.json", "/promotions.xml"]
MAX_POSITION = 2**63 - 1

Position = Annotated[int | None, QueryParameter(ge=0, le=MAX_POSITION)]
CodeParam = Annotated[str | None, QueryParameter(name="id", description="A promotion code.")]

LIST_DESCRIPTION = """\
Without `id` or `promotion_code`: the account's promotions (`code`, `description`, `usage`), pool by pool in
code order, `offset` skipped, at most `limit`; without `limit` the whole list. With `id`: that one
promotion as an object. With `promotion_code`: it as a one-element array. Authenticate with HTTP Basic
(account name, API key), or `account` plus `api_key`, `checksum` or a Bearer key.
"""


def _media_type(xml: bool) -> str:
    return render.XML_TYPE if xml else render.JSON_TYPE


@get(PATHS, summary="List promotions, or get one", description=LIST_DESCRIPTION, tags=["supersaas"])
async def list_promotions(
    request: Request[Any, Any, Any],
    store: StoreDep,
    account: AccountDep,
    code: CodeParam = None,
    promotion_code: FromQuery[str | None] = None,
    limit: Position = None,
    offset: Position = None,
) -> Response[Any]:
    xml = render.wants_xml(request)
    if code is not None and promotion_code is not None:
        raise InvalidInput("give either id or promotion_code, not both", field="id")
    if code is not None:
        found = await service.find_promotion(store, account=account, value=code)
        return Response(render.one(found, xml=xml), media_type=_media_type(xml))
    if promotion_code is not None:
        found = await service.find_promotion(store, account=account, value=promotion_code)
        return Response(render.array([found], xml=xml), media_type=_media_type(xml))
    pages = service.promotion_pages(store, account=account, offset=offset or 0, limit=limit)
    spool, size = await render.spooled_array(pages, xml=xml)
    if size <= render.SPOOL_MEMORY:
        with spool:
            return Response(spool.read(), media_type=_media_type(xml))
    # Streamed from the spool with its length known: every SuperSaaS answer carries a Content-Length.
    headers = {"Content-Length": str(size)}
    return Stream(render.read_spool(spool), media_type=_media_type(xml), headers=headers)


class DuplicateParams(msgspec.Struct):
    """A JSON body of the duplicate call (the Python, Ruby and PHP clients send one); other fields ignored."""

    id: str | int | None = None
    template_code: str | int | None = None


async def _body_params(request: Request[Any, Any, Any], limit: int) -> dict[str, str]:
    body = await read_limited(request, limit)
    if not body.strip():
        return {}
    media_type = request.content_type[0]
    if media_type == "application/json":
        parsed = json.decode(body, DuplicateParams)
        fields = {"id": parsed.id, "template_code": parsed.template_code}
        return {name: str(value) for name, value in fields.items() if value is not None}
    if media_type == "application/x-www-form-urlencoded":
        try:
            # strict: an escape that is not UTF-8 is refused, not turned into U+FFFD
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            raise InvalidInput("the form body is not UTF-8") from None
        return {name: form[name][-1] for name in ("id", "template_code") if name in form}
    raise HTTPException(status_code=415, detail="send the parameters as JSON, a form or in the query string")


@post(
    PATHS,
    status_code=201,
    summary="Duplicate a promotion",
    description="A new promotion `id` with the description, limits and settings of `template_code`, in the"
    " template's pool. Parameters in the query string or a JSON (or form) body; the body wins.",
    tags=["supersaas"],
)
async def duplicate_promotion(
    request: Request[Any, Any, Any],
    store: StoreDep,
    settings: SettingsDep,
    account: AccountDep,
    code: CodeParam = None,
    template_code: FromQuery[str | None] = None,
) -> Response[bytes]:
    xml = render.wants_xml(request)
    params = await _body_params(request, settings.max_body_bytes)
    new_code = params.get("id", code)
    template = params.get("template_code", template_code)
    if new_code is None:
        raise InvalidInput("id (the new promotion code) is required", field="id")
    if template is None:
        raise InvalidInput("template_code (the promotion to copy) is required", field="template_code")
    created = await service.duplicate_promotion(
        store, account=account, template_code=template, new_code=new_code
    )
    extension = "xml" if xml else "json"
    location = (
        f"{str(request.base_url).rstrip('/')}/api/promotions.{extension}?id={quote(created.value, safe='')}"
    )
    return Response(render.one(created, xml=xml), media_type=_media_type(xml), headers={"Location": location})


@route(PATHS, http_method=["PUT", "PATCH", "DELETE"], include_in_schema=False)
async def not_allowed() -> None:
    # Answered here rather than by the router, so that the vendor's error shape applies.
    raise HTTPException(status_code=405, detail="only GET and POST", headers={"Allow": "GET, POST"})
