"""promopool's own REST API, under /v1."""

from litestar.types import ControllerRouterHandler

from promopool.api.native.codes import CodesController
from promopool.api.native.export import ExportController
from promopool.api.native.generation import GenerationController
from promopool.api.native.keys import KeysController
from promopool.api.native.leases import LeasesController
from promopool.api.native.pools import PoolsController
from promopool.api.native.recipients import RecipientsController
from promopool.api.native.redemptions import RedemptionsController
from promopool.api.native.system import AccountController, system_routes

ROUTES: list[ControllerRouterHandler] = [
    PoolsController,
    CodesController,
    AccountController,
    *system_routes,
    RedemptionsController,
    LeasesController,
    RecipientsController,
    GenerationController,
    ExportController,
    KeysController,
]

__all__ = ["ROUTES"]
