"""/metrics: the Prometheus text exposition (see ``promopool.metrics``). Readiness is /health/ready.

With ``metrics_token`` set, a scrape must send it as a bearer token: the metrics name every account and
pool, which a multi-tenant server must not tell the internet.
"""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Request, Response, get
from litestar.openapi import ResponseSpec

from promopool import metrics
from promopool.api.deps import SettingsDep, StoreDep
from promopool.api.errors import error_response
from promopool.api.native.schemas import ErrorOut


def _allowed(request: Request[Any, Any, Any], token: str | None) -> bool:
    if token is None:
        return True
    sent = request.headers.get("authorization", "").encode("latin-1")
    return hmac.compare_digest(sent, b"Bearer " + token.encode())  # constant time: no guessing by timing


@get(
    "/metrics",
    tags=["system"],
    summary="Prometheus metrics",
    description="With the server's metrics token set (`PROMOPOOL_METRICS_TOKEN`), send it as"
    " `Authorization: Bearer <token>`.",
    media_type=metrics.CONTENT_TYPE,
    responses={401: ResponseSpec(ErrorOut, description="The metrics token is set and was not sent.")},
)
async def metrics_endpoint(
    request: Request[Any, Any, Any], store: StoreDep, settings: SettingsDep
) -> Response[Any]:
    if not _allowed(request, settings.metrics_token):
        message = "/metrics needs the metrics token: Authorization: Bearer <token>"
        return error_response(401, "unauthenticated", message, headers={"WWW-Authenticate": "Bearer"})
    exposition = await metrics.exposition(store, max_pools=settings.metrics_max_pools)
    return Response(exposition, media_type=metrics.CONTENT_TYPE)


ops_routes = [metrics_endpoint]
