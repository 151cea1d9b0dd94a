"""The admin pages of the account's API keys (``/admin/keys``): list, create (the secret shown once, on
the answer to the form), revoke (after a confirmation page). They call the same service functions as
``/v1/keys``; a read-only key's session sees the list without the forms, and the service refuses its
writes (403 ``read_only_key``).

Revoking the key the session was opened with ends the session: the answer signs out, and any other tab's
next page goes to the sign-in form (every page checks the session's key still exists).
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get, post
from litestar.params import FromQuery
from litestar.response import Redirect

from promopool import service
from promopool.api.deps import StoreDep
from promopool.api.native.keys import KeyId
from promopool.domain import ApiKeyInfo
from promopool.domain.errors import ApiKeyNotFound, InvalidInput, LastApiKey, PromopoolError
from promopool.domain.keys import check_writable
from promopool.web.admin import Admin
from promopool.web.pages import AnyRequest, form_of, handle_admin_error, signed_in
from promopool.web.render import render
from promopool.web.session import COOKIE_PATH, CSRF_FIELD, SESSION_COOKIE

KEYS = f"{COOKIE_PATH}/keys"


async def _key(store: StoreDep, admin: Admin, key_id: int) -> ApiKeyInfo:
    for key in await service.list_keys(store, account=admin.account):
        if key.id == key_id:
            return key
    raise ApiKeyNotFound(key_id)


async def _list(
    store: StoreDep,
    admin: Admin,
    *,
    error: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response[str]:
    keys = await service.list_keys(store, account=admin.account)
    return render("keys.html", status_code=status_code, admin=admin, keys=keys, error=error, notice=notice)


class AdminKeysController(Controller):
    path = KEYS
    include_in_schema = False
    exception_handlers = {PromopoolError: handle_admin_error}

    @get("/")
    async def keys(
        self, request: AnyRequest, store: StoreDep, revoked: FromQuery[bool] = False
    ) -> Response[str]:
        admin = await signed_in(request, store)
        return await _list(store, admin, notice="The key is revoked." if revoked else None)

    @post("/", status_code=200)
    async def create_key(self, request: AnyRequest, store: StoreDep) -> Response[str]:
        """The answer shows the new key's secret, this once (the page is never cached)."""
        admin = await signed_in(request, store)
        form = await form_of(request)
        admin.check(form.get(CSRF_FIELD))
        try:
            new = await service.create_key(
                store,
                account=admin.account,
                name=form.get("name", ""),
                read_only=form.get("read_only") == "on",
            )
        except InvalidInput as exc:
            return await _list(store, admin, error=exc.message, status_code=400)
        return render("key_created.html", status_code=201, admin=admin, new=new)

    @get("/{key_id:int}/revoke")
    async def confirm_revoke(self, request: AnyRequest, store: StoreDep, key_id: KeyId) -> Response[str]:
        admin = await signed_in(request, store)
        check_writable(admin.account)  # the page of an action a read-only key may not take
        key = await _key(store, admin, key_id)
        return render("key_revoke.html", admin=admin, key=key, own=key.id == admin.key.id)

    @post("/{key_id:int}/revoke", status_code=303)
    async def revoke_key(self, request: AnyRequest, store: StoreDep, key_id: KeyId) -> Response[Any]:
        admin = await signed_in(request, store)
        admin.check((await form_of(request)).get(CSRF_FIELD))
        try:
            await service.revoke_key(store, account=admin.account, key_id=key_id)
        except LastApiKey as exc:
            return await _list(store, admin, error=exc.message, status_code=409)
        if key_id != admin.key.id:
            return Redirect(f"{KEYS}/?revoked=1", status_code=303)
        # This session's own key: the session ends with it.
        response: Response[Any] = Redirect(f"{COOKIE_PATH}/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
        return response
