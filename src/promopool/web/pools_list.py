"""The pools list (``/admin/``): a filter, a sort and a page of the account's pools, read from the query
string so that every view is a link."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from litestar import Response

from promopool import service
from promopool.api.deps import StoreDep
from promopool.domain.listing import POOL_SORTS, PoolQuery, pool_query
from promopool.web.admin import Admin
from promopool.web.render import render
from promopool.web.session import COOKIE_PATH


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


def link(query: PoolQuery, **changes: Any) -> str:
    """The list's URL for ``query`` with ``changes`` (PoolQuery's fields) applied; defaults left out."""
    changed = replace(query, **changes)
    params = {
        "contains": changed.name_contains,
        "low": "1" if changed.low_stock else "",
        "sort": changed.sort if changed.sort != "created" else "",
        "desc": "1" if changed.descending else "",
        "page": str(changed.page) if changed.page != 1 else "",
    }
    kept = {key: value for key, value in params.items() if value}
    return f"{COOKIE_PATH}/" + (f"?{urlencode(kept)}" if kept else "")


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
    return render(
        "pools.html",
        status_code=status_code,
        admin=admin,
        listing=listing,
        sorts=POOL_SORTS,
        link=link,
        error=error,
    )
