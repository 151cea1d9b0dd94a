"""/v1/pools/{id}/codes and /claim: import, list, read, delete codes; hand out the next one, or many."""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.exceptions import HTTPException
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from promopool import service
from promopool.api.deps import (
    AccountDep,
    IdempotencyKey,
    PoolId,
    SettingsDep,
    StoreDep,
    limited_stream,
    read_limited,
)
from promopool.api.native.openapi import (
    BEARER,
    KEYED,
    REPEATABLE,
    Documented,
    ImportOperation,
    error_responses,
)
from promopool.api.native.schemas import (
    BulkClaimOut,
    ClaimIn,
    ClaimOut,
    CodeOut,
    CodePage,
    CodeUpdate,
    ImportCodes,
    ImportOut,
)
from promopool.domain import Account, CodeState
from promopool.domain.errors import InvalidInput
from promopool.domain.export import StateFields
from promopool.domain.leases import MAX_LEASE_SECONDS
from promopool.formats import json
from promopool.formats.lines import aiter_csv_codes, aiter_lines
from promopool.storage import Store

IMPORT_DESCRIPTION = """\
Add codes to the pool. The body is either JSON (`["A", "B"]` or `{"codes": ["A", "B"]}`) or a stream of
one code per line (`text/plain`, or `text/csv` whose first column is the code; a `code` header row is
skipped; blank lines are ignored). A CSV whose header names a `state` column, as the export writes it, keeps
each code's `state`, `issued_at`, `profile` (its holder) and `usage_count`; a row with an unknown state or a
malformed time or count is invalid. Codes the pool already holds, and repeats within the upload, are skipped
and counted as `duplicates`. A code must be 1-128 characters without control characters, after surrounding
whitespace is stripped. By default an upload with any invalid code is refused whole (400, nothing stored);
with `skip_invalid=true` invalid codes are skipped and counted instead. Text uploads stream in constant
memory and commit in batches of 10,000.
"""


CLAIM_DESCRIPTION = """\
Commits before answering. Send an `Idempotency-Key` header to make retries safe: the same key returns the same
answer (with `replayed: true` and an `Idempotent-Replayed: true` header) for at least 24 hours. An empty pool
answers 409 `pool_exhausted`.

Without a body (or with `{}`) one code is claimed and answered as `{"code": …}`. With `lease_seconds` that
code is only reserved: confirm the lease (`POST /v1/leases/{id}/confirm`) before it runs out, or it goes back
to the pool.

**Bulk claim**: `{"count": N}` (1-10,000) claims N codes in one transaction and answers `{"codes": […], …}`,
in the pool's queue order. When fewer than N are left the answer is 409 `pool_exhausted` (its details say how
many are `available`) and nothing is taken; with `"partial": true` the claim takes what is left instead (409
only when nothing is). The same Idempotency-Key returns the same codes; the same key with another `count`,
`partial` or pool is refused (422 `idempotency_key_reused`). `lease_seconds` does not go with `count`. For
more than 10,000 codes, claim in chunks, each with its own key (`promopool claim --count` does so).

**Fallback**: a pool with `fallback_code` answers a claim it cannot serve with that shared code and
`"fallback": true` (nothing is marked issued); one with `fallback_pool_id` continues the claim from that pool
(`pool_id` in the answer says which pool served, `fallback` is true). A bulk claim is served whole by one
pool: the first of the chain that can serve `count` (with `partial`: the first with any code left, which gives
what it has); a `fallback_code` answers `count` copies of it. Leased claims do not fall back.
"""


def _encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        return base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("invalid cursor", field="cursor") from None


class CodesController(Controller):
    path = "/v1/pools/{pool_id:int}"
    tags = ["codes"]
    security = BEARER

    @post(
        "/codes",
        summary="Import codes",
        description=IMPORT_DESCRIPTION,
        status_code=200,
        request_max_body_size=None,  # enforced per content type below
        operation_class=ImportOperation,
        responses=error_responses(
            400,
            403,
            404,
            413,
            415,
            write=REPEATABLE.format("codes the pool holds already are skipped as duplicates"),
        ),
    )
    async def import_codes(
        self,
        request: Request[Any, Any, Any],
        store: StoreDep,
        settings: SettingsDep,
        account: AccountDep,
        pool_id: PoolId,
        skip_invalid: FromQuery[bool] = False,
    ) -> ImportOut:
        media_type = request.content_type[0]
        values: AsyncIterator[str] | AsyncIterator[str | StateFields] | list[str]
        ignore_blank = False
        if media_type == "application/json":
            body = await read_limited(request, settings.max_body_bytes)
            # (a union is no type[T] to mypy; msgspec takes it)
            parsed = json.decode(body, list[str] | ImportCodes)  # type: ignore[arg-type]
            values = parsed if isinstance(parsed, list) else parsed.codes
        elif media_type in ("text/plain", "text/csv"):
            ignore_blank = True
            values = aiter_lines(limited_stream(request, settings.max_import_bytes))
            if media_type == "text/csv":
                values = aiter_csv_codes(values)
        else:
            raise HTTPException(
                status_code=415,
                detail="send codes as application/json, text/plain or text/csv",
            )
        report = await service.import_codes(
            store,
            account=account,
            pool_id=pool_id,
            values=values,
            strict=not skip_invalid,
            ignore_blank=ignore_blank,
        )
        return ImportOut.of(report)

    @get(
        "/codes",
        operation_class=Documented,
        summary="List codes (cursor-paged, in code order)",
        responses=error_responses(400, 404),
    )
    async def list_codes(
        self,
        store: StoreDep,
        account: AccountDep,
        pool_id: PoolId,
        state_filter: Annotated[CodeState | None, QueryParameter(name="state")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=service.MAX_PAGE)] = 100,
        cursor: Annotated[
            str | None,
            QueryParameter(pattern="^[A-Za-z0-9_-]*$", description="`next_cursor` of the previous page."),
        ] = None,
    ) -> CodePage:
        after = None if cursor is None else _decode_cursor(cursor)
        codes = await service.list_codes(
            store, account=account, pool_id=pool_id, state=state_filter, after=after, limit=limit
        )
        next_cursor = _encode_cursor(codes[-1].value) if len(codes) == limit else None
        return CodePage(codes=[CodeOut.of(c) for c in codes], next_cursor=next_cursor)

    @get(
        "/codes/{code:str}",
        operation_class=Documented,
        summary="Get one code",
        responses=error_responses(400, 404),
    )
    async def get_code(
        self, store: StoreDep, account: AccountDep, pool_id: PoolId, code: FromPath[str]
    ) -> CodeOut:
        return CodeOut.of(await service.get_code(store, account=account, pool_id=pool_id, value=code))

    @patch(
        "/codes/{code:str}",
        operation_class=Documented,
        summary="Change one code's description",
        responses=error_responses(
            400, 403, 404, 413, write=REPEATABLE.format("it sets the same description again")
        ),
    )
    async def update_code(
        self,
        store: StoreDep,
        account: AccountDep,
        pool_id: PoolId,
        code: FromPath[str],
        data: JSONBody[CodeUpdate],
    ) -> CodeOut:
        changed = await service.set_code_description(
            store, account=account, pool_id=pool_id, value=code, description=data.description
        )
        return CodeOut.of(changed)

    @delete(
        "/codes/{code:str}",
        operation_class=Documented,
        summary="Delete one code",
        responses=error_responses(
            400, 403, 404, write=REPEATABLE.format("a code deleted already answers 404")
        ),
    )
    async def delete_code(
        self, store: StoreDep, account: AccountDep, pool_id: PoolId, code: FromPath[str]
    ) -> None:
        await service.delete_code(store, account=account, pool_id=pool_id, value=code)

    @post(
        "/claim",
        operation_class=Documented,
        summary="Hand out the next available code, or `count` of them, exactly once",
        description=CLAIM_DESCRIPTION,
        status_code=200,
        responses=error_responses(400, 403, 404, 409, 413, 422, write=KEYED),
    )
    async def claim(
        self,
        store: StoreDep,
        account: AccountDep,
        pool_id: PoolId,
        idempotency_key: IdempotencyKey = None,
        lease_seconds: Annotated[int | None, QueryParameter(ge=1, le=MAX_LEASE_SECONDS)] = None,
        data: JSONBody[ClaimIn | None] = None,
    ) -> Response[ClaimOut | BulkClaimOut]:
        body = data or ClaimIn()
        if body.count is not None:
            return await _claim_many(store, account, pool_id, body, idempotency_key, lease_seconds)
        if body.partial:
            raise InvalidInput("partial goes with count", field="partial")
        claimed = await service.claim_with_fallback(
            store,
            account=account,
            pool_id=pool_id,
            idempotency_key=idempotency_key,
            lease_seconds=lease_seconds,
        )
        return Response(ClaimOut.of(claimed), headers=_replayed(claimed.replayed))


def _replayed(replayed: bool) -> dict[str, str] | None:
    return {"Idempotent-Replayed": "true"} if replayed else None


async def _claim_many(
    store: Store,
    account: Account,
    pool_id: int,
    body: ClaimIn,
    idempotency_key: str | None,
    lease_seconds: int | None,
) -> Response[ClaimOut | BulkClaimOut]:
    if lease_seconds is not None:
        raise InvalidInput("lease_seconds is for a claim of one code, not with count", field="lease_seconds")
    claimed = await service.claim_many_with_fallback(
        store,
        account=account,
        pool_id=pool_id,
        count=body.count or 0,
        partial=body.partial,
        idempotency_key=idempotency_key,
    )
    return Response(BulkClaimOut.of(claimed), headers=_replayed(claimed.replayed))
