"""/v1/codes/validate, /v1/codes/redeem and /v1/redemptions: use a code, give a use back.

Validate and redeem draw on the caller's guessing budgets (per API key, per client address): a caller who
keeps getting ``code_unusable`` is answered 429 with ``Retry-After`` for a while (``domain/guessing.py``).
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody, PathParameter, QueryParameter

from promopool import service
from promopool.api.deps import MAX_ID, AccountDep, IdempotencyKey, PoolId, StoreDep
from promopool.api.native.openapi import KEYED, REPEATABLE, Documented, error_responses
from promopool.api.native.paging import Cursor, Limit, encode_cursor, id_after
from promopool.api.native.schemas import (
    CodeCheck,
    RedeemIn,
    RedeemOut,
    RedemptionOut,
    RedemptionPage,
    ValidationOut,
)
from promopool.domain.guessing import FailureBudget
from promopool.domain.keys import hash_api_key

RedemptionId = Annotated[int, PathParameter(ge=1, le=MAX_ID, description="The redemption's id.")]

REFUSALS = """\
Every refusal a caller who does not hold the code could get — no such code, expired, used up, attached to
another profile, over the profile's limit — is the same 404 `code_unusable`, so a guess cannot tell a real
code from a wrong one. Only the profile the code is attached to learns the reason (409 `code_expired`,
`code_used_up`, `profile_limit_reached`). Each `code_unusable` spends one of the caller's failed attempts
(per API key and per client address); with none left the answer is 429 `rate_limited` with `Retry-After`.
"""


def guessing_budget(request: Request[Any, Any, Any]) -> FailureBudget:
    budget: FailureBudget = request.app.state.guessing
    return budget


def callers(request: Request[Any, Any, Any]) -> list[str]:
    """Whose budgets an attempt draws on: the API key's (by digest; it authenticated already) and the
    client address's."""
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    found = [f"key:{hash_api_key(token)}"]
    if request.client is not None:
        found.append(f"address:{request.client.host}")
    return found


def _replayed(done: RedeemOut, created: int) -> Response[RedeemOut]:
    if done.replayed:
        return Response(done, status_code=200, headers={"Idempotent-Replayed": "true"})
    return Response(done, status_code=created)


class RedemptionsController(Controller):
    path = "/v1"
    tags = ["redemptions"]

    @post(
        "/codes/validate",
        operation_class=Documented,
        status_code=200,
        summary="May this code be used now, by this profile?",
        description="Answers what a redeem would, without using the code. The code is matched under its"
        " pool's normalization, across the account's pools (`pool_id` narrows it to one).\n\n" + REFUSALS,
        responses=error_responses(400, 404, 409, 413, 429, write=REPEATABLE.format("it writes nothing")),
    )
    async def validate(
        self, request: Request[Any, Any, Any], store: StoreDep, account: AccountDep, data: JSONBody[CodeCheck]
    ) -> ValidationOut:
        with guessing_budget(request).attempt(callers(request)):
            use = await service.validate_code(
                store, account=account, code=data.code, pool_id=data.pool_id, profile=data.profile
            )
        return ValidationOut.of(use)

    @post(
        "/codes/redeem",
        operation_class=Documented,
        status_code=201,
        summary="Record one use of a code",
        description="Checks and counts in one transaction: exactly `max_uses` redeems of a code succeed"
        " however many arrive at once, and a profile stays within `per_profile_limit`. Send an"
        " `Idempotency-Key` to make retries safe: the same key returns the same redemption (200,"
        " `replayed: true`).\n\n" + REFUSALS,
        responses={
            200: ResponseSpec(
                RedeemOut, description="Replayed: the redemption made with this Idempotency-Key"
            ),
            **error_responses(400, 403, 404, 409, 413, 422, 429, write=KEYED),
        },
    )
    async def redeem(
        self,
        request: Request[Any, Any, Any],
        store: StoreDep,
        account: AccountDep,
        data: JSONBody[RedeemIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[RedeemOut]:
        with guessing_budget(request).attempt(callers(request)):
            done = await service.redeem(
                store,
                account=account,
                code=data.code,
                pool_id=data.pool_id,
                profile=data.profile,
                order_ref=data.order_ref,
                amount=data.decimal_amount(),
                metadata=data.metadata,
                idempotency_key=idempotency_key,
            )
        return _replayed(RedeemOut.of(done), 201)

    @post(
        "/redemptions/{redemption_id:int}/rollback",
        operation_class=Documented,
        status_code=200,
        summary="Give a redemption's use back, exactly once",
        description="A second rollback answers 409 `already_rolled_back`; with an `Idempotency-Key` a retry"
        " gets the first answer instead.",
        responses=error_responses(400, 403, 404, 409, 422, write=KEYED),
    )
    async def rollback(
        self,
        store: StoreDep,
        account: AccountDep,
        redemption_id: RedemptionId,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[RedeemOut]:
        done = await service.rollback_redemption(
            store, account=account, redemption_id=redemption_id, idempotency_key=idempotency_key
        )
        return _replayed(RedeemOut.of(done), 200)

    @get(
        "/redemptions/{redemption_id:int}",
        operation_class=Documented,
        summary="Get a redemption",
        responses=error_responses(400, 404),
    )
    async def get_redemption(
        self, store: StoreDep, account: AccountDep, redemption_id: RedemptionId
    ) -> RedemptionOut:
        found = await service.get_redemption(store, account=account, redemption_id=redemption_id)
        return RedemptionOut.of(found)

    @get(
        "/pools/{pool_id:int}/codes/{code:str}/redemptions",
        operation_class=Documented,
        summary="A code's redemptions, oldest first (cursor-paged)",
        responses=error_responses(400, 404),
    )
    async def list_redemptions(
        self,
        store: StoreDep,
        account: AccountDep,
        pool_id: PoolId,
        code: Annotated[str, PathParameter(description="The code's exact value.")],
        limit: Limit = 100,
        cursor: Cursor = None,
        # Deprecated alias of cursor (the numeric id of the last redemption seen). ge=0 is enforced, but the
        # framework leaves a falsy bound out of the document: stated explicitly.
        after: Annotated[
            int | None,
            QueryParameter(
                ge=0,
                le=MAX_ID,
                schema_extra={"minimum": 0},
                description="Deprecated: use `cursor`. The id of the last redemption seen (`next_after`).",
            ),
        ] = None,
    ) -> RedemptionPage:
        page = await service.list_redemptions_page(
            store, account=account, pool_id=pool_id, code=code, after=id_after(cursor, after), limit=limit
        )
        last = page.items[-1].id if page.has_more else None
        return RedemptionPage(
            redemptions=[RedemptionOut.of(r) for r in page.items],
            next_cursor=None if last is None else encode_cursor(last),
            has_more=page.has_more,
            next_after=last,
        )
