"""promopool's own REST API, under /v1."""

from litestar.types import ControllerRouterHandler

from promopool.api.native.codes import CodesController
from promopool.api.native.export import ExportController
from promopool.api.native.generation import GenerationController
from promopool.api.native.pools import PoolsController
from promopool.api.native.system import AccountController, system_routes

ROUTES: list[ControllerRouterHandler] = [
    PoolsController,
    CodesController,
    AccountController,
    GenerationController,
    ExportController,
    *system_routes,
]

__all__ = ["ROUTES"]
