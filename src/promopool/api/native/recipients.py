"""Recipient-bound claims' answers; /v1/recipients: the codes a recipient holds across the account's pools.

(The claims themselves are the claim route's, ``codes.py``, with ``recipient`` or ``recipients`` in its body.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.params import PathParameter, QueryParameter

from promopool import service
from promopool.api.deps import AccountDep, StoreDep
from promopool.api.native.openapi import BEARER, Documented, error_responses
from promopool.api.native.paging import Limit
from promopool.api.native.schemas import VISIBLE_TEXT, LeaseOut
from promopool.domain import Claimed, CodeState, Lease
from promopool.domain.recipients import MAX_RECIPIENT, Held


def _lease(lease: Lease | None) -> LeaseOut | None:
    return None if lease is None else LeaseOut.of(lease)


class RecipientCodeOut(msgspec.Struct):
    recipient: str
    code: str
    issued_at: datetime | None
    replayed: bool  # the recipient had this code already (or was named earlier in the request)
    lease: LeaseOut | None = None


class RecipientClaimsOut(msgspec.Struct):
    """Each recipient of the request and its code, in request order."""

    pool_id: int
    recipients: list[RecipientCodeOut]
    replayed: bool  # every recipient had its code already: nothing was taken

    @classmethod
    def of(cls, pool_id: int, answers: Sequence[tuple[str, Claimed]]) -> RecipientClaimsOut:
        out = [
            RecipientCodeOut(
                recipient=recipient,
                code=claimed.code.value,
                issued_at=claimed.code.issued_at,
                replayed=claimed.replayed,
                lease=_lease(claimed.lease),
            )
            for recipient, claimed in answers
        ]
        return cls(pool_id=pool_id, recipients=out, replayed=all(item.replayed for item in out))


class HeldOut(msgspec.Struct):
    pool_id: int
    code: str
    state: CodeState
    issued_at: datetime | None
    lease: LeaseOut | None  # when the code was claimed with lease_seconds

    @classmethod
    def of(cls, held: Held) -> HeldOut:
        code = held.code
        return cls(
            pool_id=code.pool_id,
            code=code.value,
            state=code.state,
            issued_at=code.issued_at,
            lease=_lease(held.lease),
        )


class RecipientCodesPage(msgspec.Struct):
    recipient: str
    codes: list[HeldOut]
    next_cursor: str | None
    has_more: bool


RecipientPath = Annotated[
    str,
    PathParameter(
        min_length=1,
        max_length=MAX_RECIPIENT,
        pattern=VISIBLE_TEXT,
        description="The recipient, as named in claims (percent-encoded in the path).",
    ),
]


# The cursor is the page's last pool id (a recipient holds at most one code per pool): opaque to clients
# like every list's, digits where the others are base64url.
PoolCursor = Annotated[
    str | None,
    QueryParameter(pattern="^[0-9]{1,16}$", description="`next_cursor` of the previous page (opaque)."),
]


class RecipientsController(Controller):
    path = "/v1/recipients"
    tags = ["recipients"]
    security = BEARER

    @get(
        "/{recipient:str}/codes",
        operation_class=Documented,
        summary="List the codes a recipient holds, across the account's pools (cursor-paged, by pool)",
        description="A recipient the account has never named (in a claim, or as a redeem's `profile`) answers"
        " 404 `not_found`; one that holds no code now (its leases were released or ran out), an empty page."
        " A recipient holding a `/` cannot be named in this path, even percent-encoded.",
        responses=error_responses(400, 404),
    )
    async def recipient_codes(
        self,
        store: StoreDep,
        account: AccountDep,
        recipient: RecipientPath,
        limit: Limit = 100,
        cursor: PoolCursor = None,
    ) -> RecipientCodesPage:
        after = 0 if cursor is None else int(cursor)
        page = await service.recipient_codes(
            store, account=account, recipient=recipient, after_pool=after, limit=limit
        )
        next_cursor = str(page.items[-1].code.pool_id) if page.has_more else None
        return RecipientCodesPage(
            recipient=recipient,
            codes=[HeldOut.of(h) for h in page.items],
            next_cursor=next_cursor,
            has_more=page.has_more,
        )
