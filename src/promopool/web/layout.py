"""What every admin response shares, whichever handler (or none) answered it: the security headers, styled
error pages for ``/admin/…`` (an unknown path or a crash is a page, not the API's JSON), and ``GET /`` leading
to the admin pages.

The app installs ``security_headers`` as a before-send hook and wraps its own error handlers with
``for_pages``: so a 404 for a path no route matches, raised before any admin handler runs, is styled too.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.response import Redirect
from litestar.types import Message, Scope

from promopool.web.render import SECURITY_HEADERS, render
from promopool.web.session import COOKIE_PATH

AnyRequest = Request[Any, Any, Any]
Handler = Callable[[AnyRequest, Any], Response[Any]]
STATIC = f"{COOKIE_PATH}/static/"


def is_admin(path: str) -> bool:
    return path == COOKIE_PATH or path.startswith(f"{COOKIE_PATH}/")


def wants_page(request: AnyRequest) -> bool:
    """A browser navigating (not the pages' own scripts, which ask for JSON)."""
    return is_admin(request.url.path) and "text/html" in request.headers.get("accept", "")


async def security_headers(message: Message, scope: Scope) -> None:
    """Every admin response, static files and errors included, carries the headers a page does (a
    handler's own values win); only the static files may be cached."""
    if message["type"] != "http.response.start" or scope["type"] != ScopeType.HTTP:
        return
    if not is_admin(scope["path"]):
        return
    headers = MutableScopeHeaders.from_message(message)
    for name, value in SECURITY_HEADERS.items():
        if name == "Cache-Control" and scope["path"].startswith(STATIC):
            continue
        if name not in headers:
            headers[name] = value


def error_page(status: int, message: str) -> Response[str]:
    return render("error.html", status_code=status, status=status, message=message, admin=None)


def for_pages(handler: Handler, *, crash: bool = False) -> Handler:
    """``handler`` (one of the app's error handlers), answering a browser under /admin with a page. With
    ``crash`` the handler's own answer is still made (it logs the error) and the page says nothing more."""

    def answer(request: AnyRequest, exc: Any) -> Response[Any]:
        response = handler(request, exc)
        if not wants_page(request):
            return response
        if crash:
            return error_page(500, "Something went wrong on the server (it is logged). Please try again.")
        status = exc.status_code if isinstance(exc, HTTPException) else (response.status_code or 500)
        if status == 404:
            return error_page(404, "There is no such page.")
        message = exc.detail if isinstance(exc, HTTPException) and exc.detail else HTTPStatus(status).phrase
        return error_page(status, message)

    return answer


def with_pages(handlers: dict[type[Exception] | int, Any]) -> dict[type[Exception] | int, Any]:
    """The app's error handlers, with HTTP errors and crashes under /admin answered by a page."""
    return {
        **handlers,
        HTTPException: for_pages(handlers[HTTPException]),
        Exception: for_pages(handlers[Exception], crash=True),
    }


@get("/", include_in_schema=False)
async def root() -> Redirect:
    """The server's front page is the admin pages (which ask for a sign-in first)."""
    return Redirect(f"{COOKIE_PATH}/", status_code=302)
