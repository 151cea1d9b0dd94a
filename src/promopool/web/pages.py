"""The admin pages under /admin: parse the form, call the service, render a template.

Signed in with an account's API key (see ``session.py``); every page shows that account's data only, like
the API. Forms post and redirect (303) back; a refused form is shown again with the reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Stream

from promopool import service
from promopool.api.deps import PoolId, SettingsDep, StoreDep, limited_stream
from promopool.api.errors import handle_domain_error, status_for
from promopool.domain import Code, PoolCounts, PoolSettings
from promopool.domain.alerts import standard_secret
from promopool.domain.errors import CodeNotFound, InvalidInput, PromopoolError, Unauthenticated
from promopool.formats.lines import aiter_csv_codes, aiter_lines
from promopool.service.activity import RANGES
from promopool.service.sessions import session_account, sign_in
from promopool.web.admin import Admin
from promopool.web.chart import chart_context
from promopool.web.forms import utc_moment, whole_number
from promopool.web.pools_list import pools_list
from promopool.web.render import render
from promopool.web.session import (
    COOKIE_PATH,
    CSRF_FIELD,
    CSRF_HEADER,
    LOGIN_COOKIE,
    LOGIN_SECONDS,
    SESSION_COOKIE,
    SESSION_SECONDS,
    Signer,
)

AnyRequest = Request[Any, Any, Any]
EXPORT_PAGE = 1000
DELIVERIES_SHOWN = 20


class SignInRequired(Unauthenticated):
    """No valid session: pages redirect to the sign-in form."""


def _signer(request: AnyRequest) -> Signer:
    signer: Signer = request.app.state.signer
    return signer


async def signed_in(request: AnyRequest, store: StoreDep) -> Admin:
    """The request's admin session; SignInRequired (a redirect to the sign-in form) without a valid one."""
    signer = _signer(request)
    session = signer.session(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise SignInRequired("sign in first")
    try:
        account, key = await session_account(store, key_hash=session.key_hash)
    except Unauthenticated:
        raise SignInRequired("sign in again") from None
    if account.id != session.account_id:
        raise SignInRequired("sign in again")
    return Admin(account, key, session, signer)


def _cookie(response: Response[Any], request: AnyRequest, key: str, value: str, max_age: int) -> None:
    response.set_cookie(
        key,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


async def form_of(request: AnyRequest) -> dict[str, str]:
    data = await request.form()
    return {key: str(value) for key, value in data.items()}


def handle_admin_error(request: AnyRequest, exc: PromopoolError) -> Response[Any]:
    """Pages get a page (or the sign-in form); the page's scripts get the native JSON error."""
    if isinstance(exc, SignInRequired):
        return Redirect(f"{COOKIE_PATH}/login", status_code=303)
    if "text/html" not in request.headers.get("accept", ""):
        return handle_domain_error(request, exc)
    status = status_for(exc)
    return render("error.html", status_code=status, status=status, message=exc.message, admin=None)


class AdminController(Controller):
    path = COOKIE_PATH
    include_in_schema = False
    exception_handlers = {PromopoolError: handle_admin_error}

    # -- signing in and out ------------------------------------------------------------------------------
    @get("/login")
    async def login_page(self, request: AnyRequest) -> Response[str]:
        return self._login_form(request, error=None, status_code=200)

    def _login_form(self, request: AnyRequest, *, error: str | None, status_code: int) -> Response[str]:
        signer = _signer(request)
        nonce = signer.login_nonce()
        response = render(
            "login.html", status_code=status_code, admin=None, token=signer.login_token(nonce), error=error
        )
        _cookie(response, request, LOGIN_COOKIE, nonce, LOGIN_SECONDS)
        return response

    @post("/login", status_code=303)
    async def login(self, request: AnyRequest, store: StoreDep) -> Response[Any]:
        form = await form_of(request)
        if not _signer(request).login_ok(request.cookies.get(LOGIN_COOKIE), form.get(CSRF_FIELD)):
            return self._login_form(request, error="The form expired; please try again.", status_code=403)
        try:
            account, key_hash = await sign_in(store, api_key=form.get("api_key", ""))
        except Unauthenticated:
            return self._login_form(request, error="That API key is not known.", status_code=401)
        response: Response[Any] = Redirect(f"{COOKIE_PATH}/", status_code=303)
        cookie = _signer(request).open_session(account_id=account.id, key_hash=key_hash)
        _cookie(response, request, SESSION_COOKIE, cookie, SESSION_SECONDS)
        response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
        return response

    @post("/logout", status_code=303)
    async def logout(self, request: AnyRequest, store: StoreDep) -> Response[Any]:
        admin = await signed_in(request, store)
        admin.check((await form_of(request)).get(CSRF_FIELD))
        response: Response[Any] = Redirect(f"{COOKIE_PATH}/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
        return response

    # -- pools -------------------------------------------------------------------------------------------
    @get("/")
    async def pools(self, request: AnyRequest, store: StoreDep) -> Response[str]:
        admin = await signed_in(request, store)
        return await pools_list(store, admin, dict(request.query_params.items()))

    @get("/pools.json")
    async def pools_json(self, request: AnyRequest, store: StoreDep) -> dict[str, Any]:
        admin = await signed_in(request, store)
        pools = await service.list_pools(store, account=admin.account)
        return {"pools": [{"id": p.id, **_counts(p.counts)} for p in pools]}

    @post("/pools", status_code=303)
    async def create_pool(self, request: AnyRequest, store: StoreDep) -> Response[Any]:
        admin = await signed_in(request, store)
        form = await form_of(request)
        admin.check(form.get(CSRF_FIELD))
        try:
            pool = await service.create_pool(
                store, account=admin.account, name=form.get("name", ""), settings=PoolSettings()
            )
        except InvalidInput as exc:
            return await pools_list(store, admin, {}, status_code=400, error=exc.message)
        return Redirect(f"{COOKIE_PATH}/pools/{pool.id}", status_code=303)

    @get("/pools/{pool_id:int}")
    async def pool_page(
        self,
        request: AnyRequest,
        store: StoreDep,
        pool_id: PoolId,
        code: FromQuery[str | None] = None,
        saved: FromQuery[bool] = False,
        days: FromQuery[int] = RANGES[0],
    ) -> Response[str]:
        admin = await signed_in(request, store)
        notice = "Settings saved." if saved else None
        return await self._pool_page(store, admin, pool_id, code=code, notice=notice, days=days)

    async def _pool_page(
        self,
        store: StoreDep,
        admin: Admin,
        pool_id: int,
        *,
        code: str | None = None,
        error: str | None = None,
        notice: str | None = None,
        typed: dict[str, str] | None = None,
        status_code: int = 200,
        days: int = RANGES[0],
    ) -> Response[str]:
        account = admin.account
        pool = await service.get_pool(store, account=account, pool_id=pool_id)
        series = await service.activity_series(store, account=account, pool_id=pool_id, days=days)
        alert = await service.get_low_stock_alert(store, account=account, pool_id=pool_id)
        deliveries = await service.list_deliveries(
            store, account=account, pool_id=pool_id, limit=DELIVERIES_SHOWN
        )
        secret = await service.webhook_secret(store, account=account) if alert and alert.webhook_url else None
        history, missing = None, None
        if code:
            try:
                history = await service.code_history(store, account=account, pool_id=pool_id, value=code)
            except CodeNotFound:
                missing = code
        return render(
            "pool.html",
            status_code=status_code,
            admin=admin,
            pool=pool,
            trend=series.trend,
            **chart_context(series),
            alert=alert,
            low=alert is not None and pool.counts.available <= alert.threshold,
            deliveries=deliveries,
            secret=secret,
            standard_secret=standard_secret(secret) if secret else None,
            lookup=code or "",
            history=history,
            missing=missing,
            error=error,
            notice=notice,
            typed=typed,
        )

    @get("/pools/{pool_id:int}/summary.json")
    async def pool_summary(self, request: AnyRequest, store: StoreDep, pool_id: PoolId) -> dict[str, Any]:
        admin = await signed_in(request, store)
        pool = await service.get_pool(store, account=admin.account, pool_id=pool_id)
        return {"id": pool.id, **_counts(pool.counts)}

    @post("/pools/{pool_id:int}/settings", status_code=303)
    async def save_settings(self, request: AnyRequest, store: StoreDep, pool_id: PoolId) -> Response[Any]:
        admin = await signed_in(request, store)
        form = await form_of(request)
        admin.check(form.get(CSRF_FIELD))
        try:
            # One call that checks the alert before changing anything: a refused form changes nothing.
            await service.update_pool_and_alert(
                store,
                account=admin.account,
                pool_id=pool_id,
                name=form.get("name", ""),
                max_uses=whole_number(form, "max_uses", low=1) or 1,
                per_profile_limit=whole_number(form, "per_profile_limit", low=1),
                expires_at=utc_moment(form, "expires_at"),
                public_fetch=form.get("public_fetch") == "on",
                fallback_code=form.get("fallback_code", "").strip() or None,
                fallback_pool_id=whole_number(form, "fallback_pool_id", low=1),
                valid_for_seconds=whole_number(form, "valid_for_seconds", low=1),
                threshold=whole_number(form, "threshold"),
                webhook_url=form.get("webhook_url") or None,
            )
        except InvalidInput as exc:
            # Shown again as typed, so that one wrong field does not cost the others.
            return await self._pool_page(
                store, admin, pool_id, error=exc.message, typed=form, status_code=400
            )
        return Redirect(f"{COOKIE_PATH}/pools/{pool_id}?saved=1", status_code=303)

    @post("/pools/{pool_id:int}/description", status_code=303)
    async def save_description(self, request: AnyRequest, store: StoreDep, pool_id: PoolId) -> Response[Any]:
        """The looked-up code's description, from the form beside its facts."""
        admin = await signed_in(request, store)
        form = await form_of(request)
        admin.check(form.get(CSRF_FIELD))
        code = form.get("code", "")
        try:
            await service.set_code_description(
                store,
                account=admin.account,
                pool_id=pool_id,
                value=code,
                description=form.get("description", "").strip(),
            )
        except InvalidInput as exc:
            return await self._pool_page(store, admin, pool_id, code=code, error=exc.message, status_code=400)
        return Redirect(f"{COOKIE_PATH}/pools/{pool_id}?{urlencode({'code': code})}", status_code=303)

    @post("/pools/{pool_id:int}/codes", status_code=200, request_max_body_size=None)
    async def upload(
        self,
        request: AnyRequest,
        store: StoreDep,
        settings: SettingsDep,
        pool_id: PoolId,
        skip_invalid: FromQuery[bool] = False,
    ) -> dict[str, Any]:
        """The page's upload script posts the file here as it is (text or CSV), with the CSRF header."""
        admin = await signed_in(request, store)
        admin.check(request.headers.get(CSRF_HEADER))
        lines = aiter_lines(limited_stream(request, settings.max_import_bytes))
        values = aiter_csv_codes(lines) if request.content_type[0] == "text/csv" else lines
        report = await service.import_codes(
            store,
            account=admin.account,
            pool_id=pool_id,
            values=values,
            strict=not skip_invalid,
            ignore_blank=True,
        )
        pool = await service.get_pool(store, account=admin.account, pool_id=pool_id)
        return {
            "inserted": report.inserted,
            "duplicates": report.duplicates,
            "invalid": report.invalid,
            "counts": _counts(pool.counts),
        }

    @get("/pools/{pool_id:int}/export.csv")
    async def export(self, request: AnyRequest, store: StoreDep, pool_id: PoolId) -> Stream:
        admin = await signed_in(request, store)
        await service.get_pool(store, account=admin.account, pool_id=pool_id)

        async def rows() -> AsyncIterator[bytes]:
            yield b"code,state,usage_count,issued_at\n"
            after = None
            while True:
                page = await service.list_codes(
                    store, account=admin.account, pool_id=pool_id, after=after, limit=EXPORT_PAGE
                )
                yield "".join(_csv_row(c) for c in page).encode()
                if len(page) < EXPORT_PAGE:
                    return
                after = page[-1].value

        disposition = f'attachment; filename="pool-{pool_id}.csv"'
        return Stream(rows(), media_type="text/csv", headers={"Content-Disposition": disposition})

    @post("/secret", status_code=303)
    async def rotate_secret(self, request: AnyRequest, store: StoreDep) -> Response[Any]:
        admin = await signed_in(request, store)
        form = await form_of(request)
        admin.check(form.get(CSRF_FIELD))
        await service.rotate_webhook_secret(store, account=admin.account)
        back = form.get("pool_id", "")
        target = f"{COOKIE_PATH}/pools/{back}" if back.isdigit() else f"{COOKIE_PATH}/"
        return Redirect(target, status_code=303)


def _counts(counts: PoolCounts) -> dict[str, int]:
    return {
        "available": counts.available,
        "issued": counts.issued,
        "redeemed": counts.redeemed,
        "total": counts.total,
    }


def _csv_row(code: Code) -> str:
    issued = code.issued_at.isoformat() if code.issued_at else ""
    return f"{_csv(code.value)},{code.state},{code.usage_count},{issued}\n"


def _csv(value: str) -> str:
    if any(ch in value for ch in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value
