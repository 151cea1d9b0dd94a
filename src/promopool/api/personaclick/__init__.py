"""The PersonaClick (and REES46) promo-code API under /promo_codes: lists, upload, fetch, purge, delete.

A thin translation over ``promopool.service``: ``routes`` (the handlers), ``params`` (the vendor's query and
body parameters), ``errors`` (the vendor's error body, mapped from the error tree in one function). The
caller is named by ``shop_id`` (the account's public key) with ``shop_secret`` (one of its API keys); only
the front-end fetch goes without a secret. See docs/dialects/personaclick.md.
"""

from litestar import Router

from promopool.api.deps import utf8_query
from promopool.api.personaclick.errors import EXCEPTION_HANDLERS
from promopool.api.personaclick.routes import NOT_ALLOWED, delete_codes, fetch, list_lists, purge, upload

router = Router(
    path="/",
    route_handlers=[list_lists, upload, fetch, purge, delete_codes, *NOT_ALLOWED],
    exception_handlers=EXCEPTION_HANDLERS,
    guards=[utf8_query],
    tags=["personaclick"],
)

ROUTES = [router]

__all__ = ["ROUTES"]
