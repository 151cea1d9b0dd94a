"""The pools list (``/admin/``): a filter, a sort and a page of the account's pools, read from the query
string so that every view is a link."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from litestar import Response

from promopool import service
from promopool.api.deps import StoreDep
from promopool.domain.listing import POOL_SORTS, PoolPage, PoolQuery, pool_query
from promopool.web.render import render
from promopool.web.session import COOKIE_PATH

if TYPE_CHECKING:  # (pages.py imports this module)
    from promopool.web.pages import Admin


def query_of(params: Mapping[str, str]) -> PoolQuery:
    """The list's query from the page's query string (a missing field: its default)."""
    page = params.get("page", "1")
    return pool_query(
        name=params.get("contains", ""),
        low_stock=params.get("low") in ("1", "on", "true"),
        sort=params.get("sort", "created"),
        descending=params.get("desc") in ("1", "on", "true"),
        page=int(page) if page.isdigit() else 0,
    )


def link(query: PoolQuery, **changes: object) -> str:
    """The list's URL for ``query`` with ``changes`` (field names of PoolQuery) applied."""
    fields: dict[str, Any] = {
        "name": query.name_contains,
        "low_stock": query.low_stock,
        "sort": query.sort,
        "descending": query.descending,
        "page": query.page,
        **changes,
    }
    params = {
        "contains": fields["name"],
        "low": "1" if fields["low_stock"] else "",
        "sort": fields["sort"] if fields["sort"] != "created" else "",
        "desc": "1" if fields["descending"] else "",
        "page": str(fields["page"]) if fields["page"] != 1 else "",
    }
    kept = {key: value for key, value in params.items() if value}
    return f"{COOKIE_PATH}/" + (f"?{urlencode(kept)}" if kept else "")


async def pools_page(
    admin: Admin, listing: PoolPage, *, status_code: int = 200, error: str | None = None
) -> Response[str]:
    return render(
        "pools.html",
        status_code=status_code,
        admin=admin,
        listing=listing,
        sorts=POOL_SORTS,
        link=link,
        error=error,
    )


async def pools_list(
    store: StoreDep,
    admin: Admin,
    params: Mapping[str, str],
    *,
    status_code: int = 200,
    error: str | None = None,
) -> Response[str]:
    """The pools page for the query string ``params``."""
    listing = await service.page_pools(store, account=admin.account, query=query_of(params))
    return await pools_page(admin, listing, status_code=status_code, error=error)
