"""/v1/leases: confirm or release a code reserved by a claim with ``lease_seconds``."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.params import PathParameter

from promopool import service
from promopool.api.deps import MAX_ID, AccountDep, StoreDep
from promopool.api.native.openapi import REPEATABLE, Documented, error_responses
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
        " goes, or has gone, back to the pool); a released one 409 `lease_released`.",
        responses=error_responses(
            400, 403, 404, 409, write=REPEATABLE.format("confirming again is harmless")
        ),
    )
    async def confirm(self, store: StoreDep, account: AccountDep, lease_id: LeaseId) -> LeaseOut:
        return LeaseOut.of(await service.confirm_lease(store, account=account, lease_id=lease_id))

    @post(
        "/{lease_id:int}/release",
        operation_class=Documented,
        status_code=200,
        summary="Give the leased code back to the pool",
        description="The code can be claimed again (it joins the end of the pool's queue). Repeating it is"
        " harmless; a lease that ran out answers 409 `lease_expired`, a confirmed one 409 `conflict`.",
        responses=error_responses(400, 403, 404, 409, write=REPEATABLE.format("releasing again is harmless")),
    )
    async def release(self, store: StoreDep, account: AccountDep, lease_id: LeaseId) -> LeaseOut:
        return LeaseOut.of(await service.release_lease(store, account=account, lease_id=lease_id))
