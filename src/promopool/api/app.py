"""The ASGI application: the native API and the vendor dialects, on one store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from promopool import __version__, service
from promopool.api.altcraft import ROUTES as ALTCRAFT_ROUTES
from promopool.api.auth import Authenticator
from promopool.api.deps import provide_account, provide_settings, provide_store
from promopool.api.errors import EXCEPTION_HANDLERS
from promopool.api.native import ROUTES
from promopool.api.observe import observe
from promopool.api.ops import ops_routes
from promopool.api.supersaas import ROUTES as SUPERSAAS_ROUTES
from promopool.config import Settings
from promopool.domain.guessing import FailureBudget
from promopool.storage import Store, open_store
from promopool.web import ROUTES as ADMIN_ROUTES
from promopool.web.session import Signer

log = logging.getLogger("promopool")

PURGE_EVERY_SECONDS = 3600
LEASE_SWEEP_SECONDS = 1.0  # how late at most a run-out lease's code is claimable again


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> Litestar:
    """The app for ``settings``; pass ``store`` to share an already-connected store (tests do)."""
    settings = settings or Settings.load()
    owns_store = store is None
    the_store = (
        store if store is not None else open_store(settings.database_url, pool_size=settings.db_pool_size)
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if owns_store:
            await the_store.connect()
            await the_store.migrate()
        purger = asyncio.create_task(_purge_idempotency_keys(the_store, settings))
        sender = asyncio.create_task(service.WebhookSender(the_store).run())
        sweeper = asyncio.create_task(_expire_leases(the_store))
        try:
            yield
        finally:
            for task in (purger, sender, sweeper):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if owns_store:
                await the_store.close()

    app = Litestar(
        route_handlers=[*ROUTES, *SUPERSAAS_ROUTES, *ALTCRAFT_ROUTES, *ops_routes, *ADMIN_ROUTES],
        dependencies={
            "store": Provide(provide_store, sync_to_thread=False),
            "settings": Provide(provide_settings, sync_to_thread=False),
            "account": Provide(provide_account),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="promopool",
            version=__version__,
            description="Unique promo-code pools with exactly-once claims. Authenticate with"
            " `Authorization: Bearer <api key>`.",
            path="/docs",
            render_plugins=[SwaggerRenderPlugin(path="/"), JsonRenderPlugin(path="/openapi.json")],
            components=Components(security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer")}),
            security=[{"bearer": []}],
        ),
        logging_config=None,
        debug=False,
    )
    app.state.store = the_store
    app.state.settings = settings
    app.state.auth = Authenticator(the_store, ttl=settings.auth_cache_seconds)
    app.state.signer = Signer(settings.session_secret or secrets.token_urlsafe(32))
    app.state.guessing = FailureBudget(settings.guess_budget, settings.guess_window_seconds)
    # Outermost: request id, latency and access log for every request, unmatched ones included.
    app.asgi_handler = observe(app.asgi_handler)  # type: ignore[arg-type,assignment]
    return app


async def _purge_idempotency_keys(store: Store, settings: Settings) -> None:
    from datetime import timedelta

    ttl = timedelta(hours=settings.idempotency_ttl_hours)
    while True:
        try:
            await service.purge_idempotency_keys(store, ttl=ttl)
        except Exception:  # the database may be away for a while; try again next round
            log.warning("could not purge old idempotency keys", exc_info=True)
        await asyncio.sleep(PURGE_EVERY_SECONDS)


async def _expire_leases(store: Store) -> None:
    """Put the codes of run-out leases back into their pools, about every LEASE_SWEEP_SECONDS."""
    while True:
        try:
            await service.expire_leases(store)
        except Exception:
            log.warning("could not end run-out leases", exc_info=True)
        await asyncio.sleep(LEASE_SWEEP_SECONDS)


def app_from_env() -> Any:
    """Factory for ``uvicorn --factory``: settings from the environment (the CLI sets them for workers)."""
    return create_app(Settings.load())
