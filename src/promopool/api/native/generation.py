"""/v1/pools/{id}/generate and /v1/jobs/{id}: generate codes, in the background when there are many."""

from __future__ import annotations

import asyncio

from litestar import Controller, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody

from promopool import service
from promopool.api.deps import (
    AccountDep,
    IdempotencyKey,
    JobId,
    JobsDep,
    PoolId,
    SettingsDep,
    StoreDep,
    replayed_headers,
)
from promopool.api.native.openapi import KEYED, Documented, error_responses
from promopool.api.native.schemas import GenerateCodes, JobOut
from promopool.domain.generation import CodeSpec
from promopool.domain.jobs import JobState

GENERATE_DESCRIPTION = f"""\
Add `count` new random codes to the pool. Shape them with `pattern` (`#` = a random character, anything
else kept as written, e.g. `SALE-####-####`) or `length` (default 12), plus `prefix` and `suffix`; draw
from `charset` (`unambiguous`, the default: no 0/O or 1/I/L; `digits`, `letters`, `alphanumeric`),
uppercase unless `uppercase` is false; `check_character` appends a check character after the last random
one. Codes are unique in the pool (against everything it already holds). A request that would fill more than
`PROMOPOOL_MAX_KEYSPACE_FILL` of the pattern's possible codes (counting the pool's codes) is refused with 400
`key_space_too_small`. Give `pattern` or `length`, not both; a pattern holds at least one `#` and no control
characters; prefix, pattern (or length), suffix and check character together fit in 128 characters, and a code
neither starts nor ends with whitespace. Up to {service.GENERATE_SYNC_LIMIT:,} codes are generated before the
answer (201, the finished job); more run as a background job (202): follow `Location`
(`GET /v1/jobs/{{id}}`) for progress.

With an `Idempotency-Key` the same request again starts nothing: it answers the job the first one started,
as it is now (201 when that was generated before answering and has finished, 202 otherwise), with
`Idempotent-Replayed: true`; another request with the key is refused (422 `idempotency_key_reused`).
Without a key a retry after a lost answer asks for `count` more codes.
"""


class GenerationController(Controller):
    path = "/v1"
    tags = ["generation"]

    @post(
        "/pools/{pool_id:int}/generate",
        operation_class=Documented,
        summary="Generate codes",
        description=GENERATE_DESCRIPTION,
        status_code=202,
        responses={
            201: ResponseSpec(data_container=JobOut, description="Generated before answering"),
            **error_responses(400, 403, 404, 409, 413, 422, write=KEYED),
        },
    )
    async def generate(
        self,
        store: StoreDep,
        settings: SettingsDep,
        jobs: JobsDep,
        account: AccountDep,
        pool_id: PoolId,
        data: JSONBody[GenerateCodes],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[JobOut]:
        spec = CodeSpec.of(
            pattern=data.pattern,
            length=data.length,
            charset=data.charset,
            prefix=data.prefix,
            suffix=data.suffix,
            check_character=data.check_character,
            uppercase=data.uppercase,
        )
        started = await service.start_generation_once(
            store,
            account=account,
            pool_id=pool_id,
            spec=spec,
            count=data.count,
            max_fill=settings.max_keyspace_fill,
            idempotency_key=idempotency_key,
        )
        job, status = started.value, 202
        sync = data.count <= service.GENERATE_SYNC_LIMIT
        if started.replayed:
            status = 201 if sync and job.state is not JobState.RUNNING else 202
        else:
            task = jobs.spawn(service.run_generation(store, job=job))
            if sync:
                # Shielded: a client that goes away does not stop the job, as it would not a background one.
                job, status = await asyncio.shield(task), 201
        headers = {"Location": f"/v1/jobs/{job.id}", **(replayed_headers(started.replayed) or {})}
        return Response(JobOut.of(job), status_code=status, headers=headers)

    @get(
        "/jobs/{job_id:int}",
        operation_class=Documented,
        summary="A job and its progress",
        responses=error_responses(400, 404),
    )
    async def get_job(self, store: StoreDep, account: AccountDep, job_id: JobId) -> JobOut:
        return JobOut.of(await service.get_job(store, account=account, job_id=job_id))
