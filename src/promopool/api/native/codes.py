"""/v1/pools/{id}/codes and /claim: import, list, read, delete codes; hand out the next one, or many."""

from __future__ import annotations

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
    no_content,
    read_limited,
    replayed_headers,
)
from promopool.api.native.openapi import (
    BEARER,
    KEYED,
    NO_CONTENT,
    Documented,
    ImportOperation,
    OptionalBodyOperation,
    error_responses,
)
from promopool.api.native.paging import Cursor, Limit, decode_cursor, encode_cursor
from promopool.api.native.recipients import RecipientClaimsOut
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

With an `Idempotency-Key` the upload is read whole before anything is stored; the same upload again with the
key gets the first report (`Idempotent-Replayed: true`) and stores nothing, another upload with it 422
`idempotency_key_reused`. A keyed import that broke off (a crash, a lost connection) is done again by its
retry: the codes the first attempt stored are counted as `duplicates`, each code is stored once.
"""


CLAIM_DESCRIPTION = """\
Commits before answering. Send an `Idempotency-Key` header to make retries safe: the same key returns the same
answer (with `replayed: true` and an `Idempotent-Replayed: true` header) for at least 24 hours. An empty pool
answers 409 `pool_exhausted`.

Without a body (or with `{}`) one code is claimed and answered as `{"code": …}`. With `lease_seconds` (in the
query or the body) that code is only reserved: confirm the lease (`POST /v1/leases/{id}/confirm`) before it
runs out, or it goes back to the pool.

**Bulk claim**: `{"count": N}` (1-10,000) claims N codes in one transaction and answers `{"codes": […], …}`,
in the pool's queue order. When fewer than N are left the answer is 409 `pool_exhausted` (its details say how
many are `available`) and nothing is taken; with `"partial": true` the claim takes what is left instead (409
only when nothing is). The same Idempotency-Key returns the same codes; the same key with another `count`,
`partial` or pool is refused (422 `idempotency_key_reused`). `lease_seconds` and recipients do not go with
`count`. For more than 10,000 codes, claim in chunks, each with its own key (`promopool claim --count` does
so).

**Recipients**: with `{"recipient": "customer-42"}` the recipient gets its code of the pool: the same code
every time, for as long as the pool exists, however often and concurrently it is asked (a repeat answers
`replayed: true`); the recipient becomes the code's holder (a profile of that id in the `default` profile
database), so a `holder_only` pool refuses its redemption by anyone else. With `lease_seconds` a recipient's
new code is leased: a re-send while the lease lives gets the same code; once the lease is released or runs
out, the recipient's next claim gets a new one. `{"recipients": [...]}` (up to 10,000, repeats allowed) does
the same for each in one transaction and answers them in request order; when the pool cannot serve every
recipient that has no code yet, 409 `pool_exhausted` and nothing is taken.

**Fallback**: a pool with `fallback_code` answers a claim it cannot serve with that shared code and
`"fallback": true` (nothing is marked issued); one with `fallback_pool_id` continues the claim from that pool
(`pool_id` in the answer says which pool served, `fallback` is true). A bulk claim is served whole by one
pool: the first of the chain that can serve `count` (with `partial`: the first with any code left, which gives
what it has); a `fallback_code` answers `count` copies of it. Leased and recipient claims do not fall back: a
recipient's code belongs to the pool asked, so an empty pool answers them 409 `pool_exhausted`.
"""


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
        responses=error_responses(400, 403, 404, 413, 415, 422, write=KEYED),
    )
    async def import_codes(
        self,
        request: Request[Any, Any, Any],
        store: StoreDep,
        settings: SettingsDep,
        account: AccountDep,
        pool_id: PoolId,
        skip_invalid: FromQuery[bool] = False,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ImportOut]:
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
        report = await service.import_codes_once(
            store,
            account=account,
            pool_id=pool_id,
            values=values,
            strict=not skip_invalid,
            ignore_blank=ignore_blank,
            idempotency_key=idempotency_key,
        )
        return Response(ImportOut.of(report.value), headers=replayed_headers(report.replayed))

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
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> CodePage:
        after = None if cursor is None else decode_cursor(cursor)
        page = await service.list_codes_page(
            store, account=account, pool_id=pool_id, state=state_filter, after=after, limit=limit
        )
        next_cursor = encode_cursor(page.items[-1].value) if page.has_more else None
        return CodePage([CodeOut.of(c) for c in page.items], next_cursor=next_cursor, has_more=page.has_more)

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
        description="With an `Idempotency-Key` the same body again gets the first answer"
        " (`Idempotent-Replayed: true`).",
        responses=error_responses(400, 403, 404, 413, 422, write=KEYED),
    )
    async def update_code(
        self,
        store: StoreDep,
        account: AccountDep,
        pool_id: PoolId,
        code: FromPath[str],
        data: JSONBody[CodeUpdate],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[CodeOut]:
        changed = await service.set_code_description(
            store,
            account=account,
            pool_id=pool_id,
            value=code,
            description=data.description,
            idempotency_key=idempotency_key,
        )
        return Response(CodeOut.of(changed.value), headers=replayed_headers(changed.replayed))

    @delete(
        "/codes/{code:str}",
        operation_class=Documented,
        summary="Delete one code",
        description="Without an `Idempotency-Key` a code deleted already answers 404; with one, a retry gets"
        " the first answer (204, `Idempotent-Replayed: true`).",
        status_code=204,
        responses={**NO_CONTENT, **error_responses(400, 403, 404, 422, write=KEYED)},
    )
    async def delete_code(
        self,
        store: StoreDep,
        account: AccountDep,
        pool_id: PoolId,
        code: FromPath[str],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[None]:
        replayed = await service.delete_code(
            store, account=account, pool_id=pool_id, value=code, idempotency_key=idempotency_key
        )
        return no_content(replayed)

    @post(
        "/claim",
        operation_class=OptionalBodyOperation,
        summary="Hand out the next available code, `count` of them, or a recipient's code, exactly once",
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
    ) -> Response[ClaimOut | BulkClaimOut | RecipientClaimsOut]:
        options = data or ClaimIn()
        if lease_seconds is not None and options.lease_seconds is not None:
            raise InvalidInput(
                "give lease_seconds in the query or in the body, not both", field="lease_seconds"
            )
        seconds = options.lease_seconds if lease_seconds is None else lease_seconds
        if options.count is not None:
            return await _claim_many(store, account, pool_id, options, idempotency_key, seconds)
        if options.partial:
            raise InvalidInput("partial goes with count", field="partial")
        out: ClaimOut | RecipientClaimsOut
        if options.recipients is not None:
            if options.recipient is not None:
                raise InvalidInput("give recipient or recipients, not both", field="recipients")
            answers = await service.claim_for_recipients(
                store,
                account=account,
                pool_id=pool_id,
                recipients=options.recipients,
                idempotency_key=idempotency_key,
                lease_seconds=seconds,
            )
            out = RecipientClaimsOut.of(pool_id, answers)
        else:
            out = ClaimOut.of(
                await service.claim_with_fallback(
                    store,
                    account=account,
                    pool_id=pool_id,
                    idempotency_key=idempotency_key,
                    lease_seconds=seconds,
                    recipient=options.recipient,
                )
            )
        return Response(out, headers=replayed_headers(out.replayed))


async def _claim_many(
    store: Store,
    account: Account,
    pool_id: int,
    body: ClaimIn,
    idempotency_key: str | None,
    lease_seconds: int | None,
) -> Response[ClaimOut | BulkClaimOut | RecipientClaimsOut]:
    if lease_seconds is not None:
        raise InvalidInput("lease_seconds is for a claim of one code, not with count", field="lease_seconds")
    if body.recipient is not None or body.recipients is not None:
        raise InvalidInput("count does not go with recipient or recipients", field="count")
    claimed = await service.claim_many_with_fallback(
        store,
        account=account,
        pool_id=pool_id,
        count=body.count or 0,
        partial=body.partial,
        idempotency_key=idempotency_key,
    )
    return Response(BulkClaimOut.of(claimed), headers=replayed_headers(claimed.replayed))
