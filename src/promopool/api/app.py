"""The ASGI application: the native API and the vendor dialects, on one store."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import secrets
import signal
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from granian.utils.proxies import wrap_asgi_with_proxy_headers
from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from promopool import __version__, metrics, service
from promopool.api.altcraft import ROUTES as ALTCRAFT_ROUTES
from promopool.api.auth import Authenticator
from promopool.api.deps import provide_account, provide_jobs, provide_settings, provide_store
from promopool.api.docs import docs_assets, swagger_page
from promopool.api.errors import EXCEPTION_HANDLERS
from promopool.api.limits import limit_requests
from promopool.api.native import ROUTES
from promopool.api.native.fast_claim import fast_claims
from promopool.api.native.openapi import ClosedStructSchemaPlugin
from promopool.api.observe import ASGIApp, observe
from promopool.api.ops import ops_routes
from promopool.api.personaclick import ROUTES as PERSONACLICK_ROUTES
from promopool.api.supersaas import ROUTES as SUPERSAAS_ROUTES
from promopool.config import SERVER_PID_ENV, Settings
from promopool.domain.guessing import FailureBudget
from promopool.ledger import BUDGETS_ENV, SharedLedger
from promopool.outages import OUTAGES, background_failure
from promopool.storage import Store, open_store
from promopool.web import ROUTES as ADMIN_ROUTES
from promopool.web import security_headers, with_pages
from promopool.web.session import Signer

log = logging.getLogger("promopool")

PURGE_EVERY_SECONDS = 3600
LEASE_SWEEP_SECONDS = 1.0  # how late at most a run-out lease's code is claimable again


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    fast_claim: bool = True,
    budgets_file: str | None = None,
) -> Litestar:
    """The app for ``settings``; pass ``store`` to share an already-connected store (tests do).
    ``fast_claim=False`` leaves every claim to the route (tests compare the two ways). ``budgets_file``:
    where the workers of a server share the guessing budgets (``promopool.ledger``); none: in memory."""
    settings = settings or Settings.load()
    owns_store = store is None
    the_store = store or open_store(
        settings.database_url, pool_size=settings.db_pool_size, lock_timeout=settings.lock_timeout_seconds
    )

    jobs = service.JobRunner(the_store)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if owns_store:
            await the_store.connect()
            await the_store.migrate()
        purger = asyncio.create_task(_purge_idempotency_keys(the_store, settings))
        sender = asyncio.create_task(service.WebhookSender(the_store).run())
        sweeper = asyncio.create_task(_expire_leases(the_store))
        jobs.start()
        try:
            yield
        finally:
            await jobs.stop()  # running jobs end as failed, keeping what they committed
            for task in (purger, sender, sweeper):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if owns_store:
                await the_store.close()

    app = Litestar(
        route_handlers=[
            *ROUTES,
            *SUPERSAAS_ROUTES,
            *PERSONACLICK_ROUTES,
            *ALTCRAFT_ROUTES,
            *ops_routes,
            *ADMIN_ROUTES,
            docs_assets,
        ],
        dependencies={
            "store": Provide(provide_store, sync_to_thread=False),
            "settings": Provide(provide_settings, sync_to_thread=False),
            "account": Provide(provide_account),
            "jobs": Provide(provide_jobs, sync_to_thread=False),
        },
        exception_handlers=with_pages(EXCEPTION_HANDLERS),
        before_send=[security_headers],
        lifespan=[lifespan],
        plugins=[ClosedStructSchemaPlugin()],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="promopool",
            version=__version__,
            description="Unique promo-code pools with exactly-once claims. Authenticate with"
            " `Authorization: Bearer <api key>`.",
            path="/docs",
            render_plugins=[swagger_page, JsonRenderPlugin(path="/openapi.json")],
            # Declared per route (native: Bearer; health: none; dialects: their own), not document-wide.
            components=Components(security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer")}),
        ),
        logging_config=None,
        debug=False,
    )
    app.state.store = the_store
    app.state.settings = settings
    app.state.jobs = jobs
    app.state.auth = Authenticator(the_store, ttl=settings.auth_cache_seconds)
    app.state.signer = Signer(settings.session_secret or secrets.token_urlsafe(32))
    app.state.guessing = FailureBudget(
        settings.guess_budget,
        settings.guess_window_seconds,
        ledger=SharedLedger(budgets_file, "guessing") if budgets_file else None,
        on_refused=lambda: metrics.count_refusal("guessing"),
        on_spent=metrics.count_failed_guess,
    )
    app.state.public_fetches = FailureBudget(  # a token bucket per client address (PersonaClick front end)
        settings.public_fetch_per_minute,
        60,
        what="front-end promo code fetches",
        ledger=SharedLedger(budgets_file, "public_fetch") if budgets_file else None,
        on_refused=lambda: metrics.count_refusal("public_fetches"),
    )
    handler: ASGIApp = app.asgi_handler  # type: ignore[assignment]
    # Inside the fast claim path, which reads no body and so needs neither limit (nor its cost).
    handler = limit_requests(
        handler, max_requests=settings.max_requests, body_timeout=settings.body_timeout_seconds
    )
    if fast_claim:
        handler = fast_claims(handler, store=the_store, auth=app.state.auth)
    # Outermost: request id, latency and access log for every request, unmatched ones included.
    app.asgi_handler = observe(handler)  # type: ignore[assignment]
    return app


async def _purge_idempotency_keys(store: Store, settings: Settings) -> None:
    from datetime import timedelta

    ttl = timedelta(hours=settings.idempotency_ttl_hours)
    while True:
        try:
            await service.purge_idempotency_keys(store, ttl=ttl)
        except Exception as exc:  # the database may be away for a while; try again next round
            background_failure("could not purge old idempotency keys", exc)
        else:
            OUTAGES.succeeded()
        await asyncio.sleep(PURGE_EVERY_SECONDS)


async def _expire_leases(store: Store) -> None:
    """Put the codes of run-out leases back into their pools, about every LEASE_SWEEP_SECONDS."""
    while True:
        try:
            await service.expire_leases(store)
        except Exception as exc:
            background_failure("could not end run-out leases", exc)
        else:
            OUTAGES.succeeded()  # every second: the end of an outage is logged within one
        await asyncio.sleep(LEASE_SWEEP_SECONDS)


def app_from_env() -> Any:
    """The app of a server worker process (``promopool serve`` starts them): settings from the environment,
    where the CLI put them; the client address from ``X-Forwarded-For`` when a trusted proxy sends it."""
    app = create_app(Settings.of_worker(), budgets_file=os.environ.get(BUDGETS_ENV))
    server_pid = os.environ.get(SERVER_PID_ENV)
    if server_pid is not None and server_pid == str(os.getppid()):
        _end_when_orphaned(int(server_pid))
    _tune_gc_for_serving()
    trusted = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
    return wrap_asgi_with_proxy_headers(app, trusted_hosts=trusted)


ORPHAN_CHECK_SECONDS = 0.5


def _end_when_orphaned(server_pid: int) -> None:
    """A worker whose server process died (SIGKILL, OOM) would go on serving, unsupervised, on the port;
    it stops itself instead, as if the server had asked it to."""

    def watch() -> None:
        while os.getppid() == server_pid:
            time.sleep(ORPHAN_CHECK_SECONDS)
        log.error("the server process %d is gone: this worker stops", server_pid)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)  # the graceful stop's grace; then out, whatever holds it
        os._exit(1)

    threading.Thread(target=watch, name="promopool-orphan-watch", daemon=True).start()


def _tune_gc_for_serving() -> None:
    """Keep the cyclic garbage collector off the request path of a server process.

    The modules and the app built by now live until the process ends; frozen, a full collection no longer
    walks them (those walks made the claim p99 76 ms). Requests make few reference cycles, so gen0 can wait
    for 10,000 allocations instead of 700. Only server processes: tests build many apps in one process.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
