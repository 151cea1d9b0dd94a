"""The Altcraft API v1.1 promo-code methods under /api/v1.1/promocodes, in JSON and XML.

A thin translation over ``promopool.service``: ``responses`` (the route: token, format, dispatch),
``request`` (JSON and defused XML bodies), ``methods`` (one function per vendor method), ``errors`` (the
vendor's envelope, mapped from the error tree in one function), ``render`` (the wire shapes). See
docs/dialects/altcraft.md.
"""

from litestar import Router

from promopool.api.altcraft.errors import EXCEPTION_HANDLERS
from promopool.api.altcraft.responses import not_allowed, promocodes
from promopool.api.deps import utf8_query

router = Router(
    path="/api/v1.1/promocodes",
    route_handlers=[promocodes, not_allowed],
    exception_handlers=EXCEPTION_HANDLERS,
    guards=[utf8_query],
    tags=["altcraft"],
)

ROUTES = [router]

__all__ = ["ROUTES"]
