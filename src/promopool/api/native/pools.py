"""/v1/pools: create, list, read, change and delete pools."""

from __future__ import annotations

import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody

from promopool import service
from promopool.api.deps import (
    REPLAYED,
    AccountDep,
    IdempotencyKey,
    PoolId,
    StoreDep,
    no_content,
    replayed_headers,
)
from promopool.api.native.openapi import BEARER, KEYED, NO_CONTENT, Documented, error_responses
from promopool.api.native.paging import Cursor, Limit, encode_cursor, id_after
from promopool.api.native.schemas import DeliveryOut, PoolCreate, PoolList, PoolOut, PoolUpdate
from promopool.domain import PoolSettings
from promopool.domain.alerts import KEEP


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
            fallback_code=data.fallback_code,
            fallback_pool_id=data.fallback_pool_id,
            valid_for_seconds=data.valid_for_seconds,
        )
        pool, replayed = await service.create_pool_once(
            store, account=account, name=data.name, settings=settings, idempotency_key=idempotency_key
        )
        if replayed:
            return Response(PoolOut.of(pool), status_code=200, headers=REPLAYED)
        return Response(PoolOut.of(pool), status_code=201)

    @get(
        "/",
        operation_class=Documented,
        summary="List pools with their counts (cursor-paged, in id order)",
        responses=error_responses(400),
    )
    async def list_pools(
        self, store: StoreDep, account: AccountDep, limit: Limit = 100, cursor: Cursor = None
    ) -> PoolList:
        page = await service.list_pools_page(store, account=account, after=id_after(cursor), limit=limit)
        alerts = await service.list_low_stock_alerts(store, account=account)
        return PoolList(
            pools=[PoolOut.of(p, alerts.get(p.id)) for p in page.items],
            next_cursor=encode_cursor(page.items[-1].id) if page.has_more else None,
            has_more=page.has_more,
        )

    @get(
        "/{pool_id:int}",
        operation_class=Documented,
        summary="Get a pool",
        responses=error_responses(400, 404),
    )
    async def get_pool(self, store: StoreDep, account: AccountDep, pool_id: PoolId) -> PoolOut:
        pool = await service.get_pool(store, account=account, pool_id=pool_id)
        return PoolOut.of(pool, await service.get_low_stock_alert(store, account=account, pool_id=pool_id))

    @patch(
        "/{pool_id:int}",
        operation_class=Documented,
        summary="Change a pool's name, settings or low-stock alert",
        description="`low_stock_threshold` and `webhook_url` set the pool's low-stock alert; `null` clears"
        " either (clearing the threshold removes the alert and its URL). A refused value changes nothing."
        " With an `Idempotency-Key` the same body again gets the first answer (`Idempotent-Replayed: true`),"
        " another body with that key 422 `idempotency_key_reused`.",
        responses=error_responses(400, 403, 404, 413, 422, write=KEYED),
    )
    async def update_pool(
        self,
        store: StoreDep,
        account: AccountDep,
        pool_id: PoolId,
        data: JSONBody[PoolUpdate],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[PoolOut]:
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
        threshold = changes.pop("low_stock_threshold", KEEP)
        webhook_url = changes.pop("webhook_url", KEEP)
        changed = await service.update_pool_and_alert(
            store,
            account=account,
            pool_id=pool_id,
            threshold=threshold,
            webhook_url=webhook_url,
            idempotency_key=idempotency_key,
            **changes,
        )
        pool, alert = changed.value
        return Response(PoolOut.of(pool, alert), headers=replayed_headers(changed.replayed))

    @post(
        "/{pool_id:int}/webhook/test",
        operation_class=Documented,
        status_code=202,
        summary="Send a test event to the pool's webhook URL",
        description="Queues a `test` event, signed and retried like every delivery; 409 when the pool has no"
        " webhook URL. With an `Idempotency-Key` a retry queues no second event and gets the first answer"
        " (`Idempotent-Replayed: true`).",
        responses=error_responses(400, 403, 404, 409, 422, write=KEYED),
    )
    async def send_test_event(
        self, store: StoreDep, account: AccountDep, pool_id: PoolId, idempotency_key: IdempotencyKey = None
    ) -> Response[DeliveryOut]:
        sent = await service.send_test_event(
            store, account=account, pool_id=pool_id, idempotency_key=idempotency_key
        )
        return Response(DeliveryOut.of(sent.value), status_code=202, headers=replayed_headers(sent.replayed))

    @delete(
        "/{pool_id:int}",
        operation_class=Documented,
        summary="Delete a pool and all its codes",
        description="Without an `Idempotency-Key` a pool deleted already answers 404; with one, a retry gets"
        " the first answer (204, `Idempotent-Replayed: true`).",
        status_code=204,
        responses={**NO_CONTENT, **error_responses(400, 403, 404, 422, write=KEYED)},
    )
    async def delete_pool(
        self, store: StoreDep, account: AccountDep, pool_id: PoolId, idempotency_key: IdempotencyKey = None
    ) -> Response[None]:
        replayed = await service.delete_pool(
            store, account=account, pool_id=pool_id, idempotency_key=idempotency_key
        )
        return no_content(replayed)
