"""Deleting a pool from the admin pages: a confirmation page naming what goes with it (its available, issued
and redeemed codes), then the delete. The service has no archive (a pool is kept or deleted with its codes and
redemptions), so this is delete only. Read-only keys get neither the link nor the page (403)."""

from __future__ import annotations

from litestar import Controller, Response, get, post

from promopool import service
from promopool.api.deps import PoolId, StoreDep
from promopool.domain.errors import PromopoolError
from promopool.domain.keys import check_writable
from promopool.web.pages import AnyRequest, form_of, handle_admin_error, signed_in
from promopool.web.render import render
from promopool.web.session import COOKIE_PATH, CSRF_FIELD


class AdminPoolDeleteController(Controller):
    path = f"{COOKIE_PATH}/pools/{{pool_id:int}}/delete"
    include_in_schema = False
    exception_handlers = {PromopoolError: handle_admin_error}

    @get("/")
    async def confirm(self, request: AnyRequest, store: StoreDep, pool_id: PoolId) -> Response[str]:
        admin = await signed_in(request, store)
        check_writable(admin.account)
        pool = await service.get_pool(store, account=admin.account, pool_id=pool_id)
        return render("pool_delete.html", admin=admin, pool=pool)

    @post("/", status_code=200)
    async def delete(self, request: AnyRequest, store: StoreDep, pool_id: PoolId) -> Response[str]:
        """Answered with a page, not a redirect: there is no pool left to go back to."""
        admin = await signed_in(request, store)
        admin.check((await form_of(request)).get(CSRF_FIELD))
        pool = await service.get_pool(store, account=admin.account, pool_id=pool_id)
        await service.delete_pool(store, account=admin.account, pool_id=pool_id)
        return render("pool_deleted.html", admin=admin, pool=pool)
