"""/v1/pools/{id}/codes and /claim: import, list, read, delete codes; hand out the next one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.exceptions import HTTPException
from litestar.params import FromPath, FromQuery, QueryParameter

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
    error_responses,
)
from promopool.api.native.paging import Cursor, Limit, decode_cursor, encode_cursor
from promopool.api.native.schemas import ClaimOut, CodeOut, CodePage, ImportCodes, ImportOut
from promopool.domain import CodeState
from promopool.domain.export import StateFields
from promopool.domain.leases import MAX_LEASE_SECONDS
from promopool.formats import json
from promopool.formats.lines import aiter_csv_codes, aiter_lines

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
        operation_class=Documented,
        summary="Hand out the next available code, exactly once",
        description=(
            "Commits before answering. Send an `Idempotency-Key` header to make retries safe: the same key"
            " returns the same code (with `replayed: true` and an `Idempotent-Replayed: true` header) for at"
            " least 24 hours. An empty pool answers 409 `pool_exhausted`. With `lease_seconds` the code is"
            " only reserved: confirm the lease (`POST /v1/leases/{id}/confirm`) before it runs out, or it"
            " goes back to the pool."
        ),
        status_code=200,
        responses=error_responses(400, 403, 404, 409, 422, write=KEYED),
    )
    async def claim(
        self,
        store: StoreDep,
        account: AccountDep,
        pool_id: PoolId,
        idempotency_key: IdempotencyKey = None,
        lease_seconds: Annotated[int | None, QueryParameter(ge=1, le=MAX_LEASE_SECONDS)] = None,
    ) -> Response[ClaimOut]:
        claimed = await service.claim(
            store,
            account=account,
            pool_id=pool_id,
            idempotency_key=idempotency_key,
            lease_seconds=lease_seconds,
        )
        headers = {"Idempotent-Replayed": "true"} if claimed.replayed else None
        return Response(ClaimOut.of(claimed), headers=headers)
