"""The SuperSaaS Promotion API under /api: list, one and duplicate, in JSON and Rails-style XML.

A thin translation over ``promopool.service``: ``responses`` (the handlers), ``auth`` (the vendor's four
credential schemes), ``errors`` (the vendor's error envelope, mapped from the error tree in one function),
``render`` (the wire shapes). See docs/dialects/supersaas.md.
"""

from litestar import Router
from litestar.di import Provide

from promopool.api.deps import utf8_query
from promopool.api.supersaas.auth import provide_supersaas_account
from promopool.api.supersaas.errors import EXCEPTION_HANDLERS
from promopool.api.supersaas.responses import duplicate_promotion, list_promotions, not_allowed

# The router's `account` dependency replaces the native Bearer one for these routes only.
router = Router(
    path="/api",
    route_handlers=[list_promotions, duplicate_promotion, not_allowed],
    dependencies={"account": Provide(provide_supersaas_account)},
    exception_handlers=EXCEPTION_HANDLERS,
    guards=[utf8_query],
    tags=["supersaas"],
)

ROUTES = [router]

__all__ = ["ROUTES"]
