"""/metrics: the Prometheus text exposition (see ``promopool.metrics``). Readiness is /health/ready."""

from __future__ import annotations

from litestar import Response, get

from promopool import metrics
from promopool.api.deps import StoreDep


@get("/metrics", tags=["system"], summary="Prometheus metrics", media_type=metrics.CONTENT_TYPE)
async def metrics_endpoint(store: StoreDep) -> Response[bytes]:
    return Response(await metrics.exposition(store), media_type=metrics.CONTENT_TYPE)


ops_routes = [metrics_endpoint]
