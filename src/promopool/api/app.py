"""The ASGI application: native API and (later) the vendor dialects, on one store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from promopool import __version__, service
from promopool.api.auth import Authenticator
from promopool.api.deps import provide_account, provide_jobs, provide_settings, provide_store
from promopool.api.errors import EXCEPTION_HANDLERS
from promopool.api.native import ROUTES
from promopool.config import Settings
from promopool.storage import Store, open_store

log = logging.getLogger("promopool")

PURGE_EVERY_SECONDS = 3600


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> Litestar:
    """The app for ``settings``; pass ``store`` to share an already-connected store (tests do)."""
    settings = settings or Settings.load()
    owns_store = store is None
    the_store = (
        store if store is not None else open_store(settings.database_url, pool_size=settings.db_pool_size)
    )

    jobs = service.JobRunner(the_store)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if owns_store:
            await the_store.connect()
            await the_store.migrate()
        purger = asyncio.create_task(_purge_idempotency_keys(the_store, settings))
        jobs.start()
        try:
            yield
        finally:
            await jobs.stop()  # running jobs end as failed, keeping what they committed
            purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purger
            if owns_store:
                await the_store.close()

    app = Litestar(
        route_handlers=ROUTES,
        dependencies={
            "store": Provide(provide_store, sync_to_thread=False),
            "settings": Provide(provide_settings, sync_to_thread=False),
            "account": Provide(provide_account),
            "jobs": Provide(provide_jobs, sync_to_thread=False),
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
    app.state.jobs = jobs
    app.state.auth = Authenticator(the_store, ttl=settings.auth_cache_seconds)
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


def app_from_env() -> Any:
    """Factory for ``uvicorn --factory``: settings from the environment (the CLI sets them for workers)."""
    return create_app(Settings.load())
