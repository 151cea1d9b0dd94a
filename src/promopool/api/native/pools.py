"""/v1/pools: create, list, read, change and delete pools."""

from __future__ import annotations

import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody

from promopool import service
from promopool.api.deps import AccountDep, IdempotencyKey, PoolId, StoreDep
from promopool.api.native.openapi import BEARER, KEYED, REPEATABLE, Documented, error_responses
from promopool.api.native.schemas import PoolCreate, PoolList, PoolOut, PoolUpdate
from promopool.domain import PoolSettings


class PoolsController(Controller):
    path = "/v1/pools"
    tags = ["pools"]
    security = BEARER

    @post(
        "/",
        operation_class=Documented,
        status_code=201,
        summary="Create a pool",
        description="Send an `Idempotency-Key` to make retries safe: the same key returns the pool it created"
        " (200, with an `Idempotent-Replayed: true` header) rather than a second one.",
        responses={
            200: ResponseSpec(PoolOut, description="Replayed: the pool created with this Idempotency-Key"),
            **error_responses(400, 403, 404, 413, 422, write=KEYED),
        },
    )
    async def create_pool(
        self,
        store: StoreDep,
        account: AccountDep,
        data: JSONBody[PoolCreate],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[PoolOut]:
        settings = PoolSettings(
            max_uses=data.max_uses,
            per_profile_limit=data.per_profile_limit,
            expires_at=data.expires_at,
            public_fetch=data.public_fetch,
            case_insensitive=data.case_insensitive,
            ignore_separators=data.ignore_separators,
            holder_only=data.holder_only,
        )
        pool, replayed = await service.create_pool_once(
            store, account=account, name=data.name, settings=settings, idempotency_key=idempotency_key
        )
        if replayed:
            return Response(PoolOut.of(pool), status_code=200, headers={"Idempotent-Replayed": "true"})
        return Response(PoolOut.of(pool), status_code=201)

    @get("/", operation_class=Documented, summary="List pools with their counts", responses=error_responses())
    async def list_pools(self, store: StoreDep, account: AccountDep) -> PoolList:
        return PoolList(pools=[PoolOut.of(p) for p in await service.list_pools(store, account=account)])

    @get(
        "/{pool_id:int}",
        operation_class=Documented,
        summary="Get a pool",
        responses=error_responses(400, 404),
    )
    async def get_pool(self, store: StoreDep, account: AccountDep, pool_id: PoolId) -> PoolOut:
        return PoolOut.of(await service.get_pool(store, account=account, pool_id=pool_id))

    @patch(
        "/{pool_id:int}",
        operation_class=Documented,
        summary="Change a pool's name or settings",
        responses=error_responses(
            400, 403, 404, 413, write=REPEATABLE.format("it sets the same values again")
        ),
    )
    async def update_pool(
        self, store: StoreDep, account: AccountDep, pool_id: PoolId, data: JSONBody[PoolUpdate]
    ) -> PoolOut:
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
        pool = await service.update_pool(store, account=account, pool_id=pool_id, **changes)
        return PoolOut.of(pool)

    @delete(
        "/{pool_id:int}",
        operation_class=Documented,
        summary="Delete a pool and all its codes",
        responses=error_responses(
            400, 403, 404, write=REPEATABLE.format("a pool deleted already answers 404")
        ),
    )
    async def delete_pool(self, store: StoreDep, account: AccountDep, pool_id: PoolId) -> None:
        await service.delete_pool(store, account=account, pool_id=pool_id)
