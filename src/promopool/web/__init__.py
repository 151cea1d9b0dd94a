"""The admin pages (``/admin``): server-rendered HTML, a little JavaScript, no build step, nothing loaded
from elsewhere. They call the service like any other client."""

from pathlib import Path

from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from promopool.web.export import AdminExportController
from promopool.web.generate import AdminGenerateController
from promopool.web.keys import AdminKeysController
from promopool.web.layout import root, security_headers, with_pages
from promopool.web.pages import AdminController
from promopool.web.pool_delete import AdminPoolDeleteController
from promopool.web.redemptions import AdminRedemptionsController
from promopool.web.search import AdminSearchController

STATIC = Path(__file__).parent / "static"

ROUTES: list[ControllerRouterHandler] = [
    AdminController,
    AdminKeysController,
    AdminSearchController,
    AdminGenerateController,
    AdminExportController,
    AdminRedemptionsController,
    AdminPoolDeleteController,
    root,
    create_static_files_router(path="/admin/static", directories=[STATIC], include_in_schema=False),
]

__all__ = ["ROUTES", "security_headers", "with_pages"]
