"""The account-wide search page (``/admin/search?q=…``): one box for codes, profiles and orders."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.params import FromQuery

from promopool import service
from promopool.api.deps import StoreDep
from promopool.domain.errors import PromopoolError
from promopool.web.pages import handle_admin_error, signed_in
from promopool.web.render import render
from promopool.web.session import COOKIE_PATH

AnyRequest = Request[Any, Any, Any]


class AdminSearchController(Controller):
    path = COOKIE_PATH
    include_in_schema = False
    exception_handlers = {PromopoolError: handle_admin_error}

    @get("/search")
    async def search(self, request: AnyRequest, store: StoreDep, q: FromQuery[str] = "") -> Response[str]:
        admin = await signed_in(request, store)
        results = await service.search(store, account=admin.account, query=q)
        return render("search.html", admin=admin, results=results)
