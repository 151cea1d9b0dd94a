"""Health, the caller's account, and the OpenAPI document at /openapi.json."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.datastructures import ResponseHeader
from litestar.openapi import ResponseSpec

from promopool.api.deps import AccountDep, StoreDep
from promopool.api.native.openapi import BEARER, Documented, error_responses
from promopool.api.native.schemas import AccountOut, Health
from promopool.domain.errors import StorageUnavailable

ENGINE_HEADER = "Promopool-Database-Engine"
SCHEMA_HEADER = "Promopool-Schema-Version"


@get("/health", operation_class=Documented, tags=["system"], summary="Liveness: the server answers")
async def health() -> Health:
    return Health(status="ok")


@get(
    "/health/ready",
    operation_class=Documented,
    tags=["system"],
    summary="Readiness: the database answers",
    description="The database engine and the schema version (the highest migration applied) are in the"
    " response headers.",
    response_headers=[
        ResponseHeader(
            name=ENGINE_HEADER, description="sqlite or postgresql.", documentation_only=True, required=True
        ),
        ResponseHeader(
            name=SCHEMA_HEADER,
            description="The highest database migration applied (200 only).",
            documentation_only=True,
        ),
    ],
    responses={
        503: ResponseSpec(Health, description="The database does not answer.", generate_examples=False)
    },
)
async def ready(store: StoreDep) -> Response[Health]:
    try:
        version = await store.schema_version()
    except StorageUnavailable:
        unavailable = Health(status="unavailable", database="unreachable")
        return Response(unavailable, status_code=503, headers={ENGINE_HEADER: store.engine})
    # In headers, not the body: the body's shape is what existing probes and tests compare whole.
    headers = {ENGINE_HEADER: store.engine, SCHEMA_HEADER: str(version or 0)}
    return Response(Health(status="ok", database="ok"), headers=headers)


@get("/openapi.json", include_in_schema=False, media_type="application/vnd.oai.openapi+json")
async def openapi_document(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return request.app.openapi_schema.to_schema()


class AccountController(Controller):
    path = "/v1/account"
    tags = ["account"]
    security = BEARER

    @get(
        "/",
        operation_class=Documented,
        summary="The account the API key belongs to",
        responses=error_responses(),
    )
    async def get_account(self, account: AccountDep) -> AccountOut:
        return AccountOut.of(account)


system_routes = [health, ready, openapi_document]
