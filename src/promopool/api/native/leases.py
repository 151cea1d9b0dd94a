"""/v1/leases: confirm or release a code reserved by a claim with ``lease_seconds``."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.params import PathParameter

from promopool import service
from promopool.api.deps import MAX_ID, AccountDep, IdempotencyKey, StoreDep, replayed_headers
from promopool.api.native.openapi import KEYED, Documented, error_responses
from promopool.api.native.schemas import LeaseOut

LeaseId = Annotated[int, PathParameter(ge=1, le=MAX_ID, description="The lease's id.")]


class LeasesController(Controller):
    path = "/v1/leases"
    tags = ["leases"]

    @get(
        "/{lease_id:int}",
        operation_class=Documented,
        summary="Get a lease",
        responses=error_responses(400, 404),
    )
    async def get_lease(self, store: StoreDep, account: AccountDep, lease_id: LeaseId) -> LeaseOut:
        return LeaseOut.of(await service.get_lease(store, account=account, lease_id=lease_id))

    @post(
        "/{lease_id:int}/confirm",
        operation_class=Documented,
        status_code=200,
        summary="Keep the leased code (it stays issued)",
        description="Repeating it is harmless. A lease that ran out answers 409 `lease_expired` (its code"
        " goes, or has gone, back to the pool); a released one 409 `lease_released`. With an"
        " `Idempotency-Key` a retry gets the first answer (`Idempotent-Replayed: true`).",
        responses=error_responses(400, 403, 404, 409, 422, write=KEYED),
    )
    async def confirm(
        self, store: StoreDep, account: AccountDep, lease_id: LeaseId, idempotency_key: IdempotencyKey = None
    ) -> Response[LeaseOut]:
        ended = await service.confirm_lease_once(
            store, account=account, lease_id=lease_id, idempotency_key=idempotency_key
        )
        return Response(LeaseOut.of(ended.value), headers=replayed_headers(ended.replayed))

    @post(
        "/{lease_id:int}/release",
        operation_class=Documented,
        status_code=200,
        summary="Give the leased code back to the pool",
        description="The code can be claimed again (it joins the end of the pool's queue). Repeating it is"
        " harmless; a lease that ran out answers 409 `lease_expired`, a confirmed one 409 `conflict`. With an"
        " `Idempotency-Key` a retry gets the first answer (`Idempotent-Replayed: true`).",
        responses=error_responses(400, 403, 404, 409, 422, write=KEYED),
    )
    async def release(
        self, store: StoreDep, account: AccountDep, lease_id: LeaseId, idempotency_key: IdempotencyKey = None
    ) -> Response[LeaseOut]:
        ended = await service.release_lease_once(
            store, account=account, lease_id=lease_id, idempotency_key=idempotency_key
        )
        return Response(LeaseOut.of(ended.value), headers=replayed_headers(ended.replayed))
