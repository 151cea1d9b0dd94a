"""Generation jobs: their rows, code batches committed together with the job's progress, and the sweep that
fails the jobs whose process is gone (docs/design.md, "When a server stops"). And the count of the CLI's
imports and generations (``cli_runs``), which /metrics reads.

A job's owner, the process running it, is named and judged gone by the driver (``job_owner``,
``gone_owners``): the one thing about jobs the engines do their own way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from promopool.domain.errors import Conflict, JobNotFound, PoolNotFound
from promopool.domain.idempotency import Keyed, Once
from promopool.domain.jobs import CliRuns, Job, JobKind, JobState, stopped_error
from promopool.storage.core import StoreCore
from promopool.storage.driver import Execute, Fetch, FetchRow, Op, UniqueViolation
from promopool.storage.ops import idempotency
from promopool.storage.ops.codes import insert_codes
from promopool.storage.ops.pools import lock_pool
from promopool.storage.rows import JOB_COLUMNS, job_of

# The params as JSON text; the owner as the driver's token, which PostgreSQL keeps as its lock's bigint key.
CREATE = (
    "INSERT INTO jobs (account_id, kind, pool_id, params, total, created_at, updated_at, owner)"
    f" VALUES ($1, $2, $3, $4::text::jsonb, $5, $6, $6, $7::text::bigint) RETURNING {JOB_COLUMNS}"
)
COUNT = "UPDATE jobs SET done = done + $2, updated_at = $3 WHERE id = $1 AND state = 'running'"
FINISH = (
    "UPDATE jobs SET state = $2, error = $3, finished_at = $4, updated_at = $4"
    f" WHERE id = $1 AND state = 'running' RETURNING {JOB_COLUMNS}"
)
OWNERS = "SELECT id, owner::text AS owner FROM jobs WHERE state = 'running' AND owner IS NOT NULL"
# SKIP LOCKED: a job whose batch is being written has a live process (a dead one's is rolled back first).
STALE = (
    "SELECT id, done, total FROM jobs WHERE state = 'running'"
    " AND (updated_at < $1 OR id = ANY($2::bigint[])) FOR UPDATE SKIP LOCKED"
)
FAIL = "UPDATE jobs SET state = 'failed', error = $2, finished_at = $3, updated_at = $3 WHERE id = $1"
COUNT_CLI_RUN = (
    "INSERT INTO cli_runs (command, result, runs, codes) VALUES ($1, $2, 1, $3)"
    " ON CONFLICT (command, result) DO UPDATE SET runs = cli_runs.runs + 1, codes = cli_runs.codes + $3"
)


def create_job(
    account_id: int, kind: JobKind, pool_id: int, total: int, params: str, owner: str, now: datetime
) -> Op[Job]:
    try:
        row = yield FetchRow(CREATE, account_id, kind.value, pool_id, params, total, now, owner)
    except UniqueViolation as exc:  # jobs_running_pool: one running job per pool
        raise Conflict(f"a job is already running on pool {pool_id}", pool_id=pool_id) from exc
    return job_of(row)


def create_generation_job(
    account_id: int, pool_id: int, total: int, params: str, owner: str, now: datetime, request: Keyed
) -> Op[Once[Job]]:
    """``create_job`` for a keyed generation, once per request: the same request again gets the job it
    created (as it is now: its progress, or its end), replayed, and creates none."""
    if not (yield from lock_pool(pool_id, account_id)):
        raise PoolNotFound(pool_id)
    scope = idempotency.generate_scope(pool_id)
    earlier = yield from idempotency.reserve_request(account_id, request, scope, now)
    if earlier is not None:
        return Once((yield from generated_job(account_id, pool_id, earlier)), replayed=True)
    job = yield from create_job(account_id, JobKind.GENERATE, pool_id, total, params, owner, now)
    yield from idempotency.record(account_id, [(request.key, job.id)])
    return Once(job)


def generated_job(account_id: int, pool_id: int, earlier: idempotency.Earlier) -> Op[Job]:
    """The job a keyed generation's record points at, checked to be a generation of that pool."""
    job = yield from get_job(account_id, earlier.result_id or 0)
    if job is None or job.kind is not JobKind.GENERATE or job.pool_id != pool_id:
        raise JobNotFound(earlier.result_id or 0)
    return job


def generation_job_of(account_id: int, pool_id: int, request: Keyed) -> Op[Job | None]:
    earlier = yield from idempotency.earlier_request(account_id, request, idempotency.generate_scope(pool_id))
    if earlier is None or earlier.result_id is None:
        return None
    return (yield from generated_job(account_id, pool_id, earlier))


def get_job(account_id: int, job_id: int) -> Op[Job | None]:
    sql = f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1 AND account_id = $2"
    row = yield FetchRow(sql, job_id, account_id)
    return None if row is None else job_of(row)


def insert_job_codes(job_id: int, pool_id: int, values: Sequence[str], now: datetime) -> Op[int]:
    inserted = yield from insert_codes(pool_id, values, now)  # takes the pool's row first
    if not (yield Execute(COUNT, job_id, inserted, now)):
        # Raising rolls the transaction back: nothing stored, nothing counted.
        raise Conflict(f"job {job_id} is no longer running", job_id=job_id)
    return inserted


def finish_job(job_id: int, error: str | None, now: datetime) -> Op[Job | None]:
    state = JobState.SUCCEEDED if error is None else JobState.FAILED
    row = yield FetchRow(FINISH, job_id, state.value, error, now)
    return None if row is None else job_of(row)


def running_owners() -> Op[dict[int, str]]:
    """The running jobs' owners by job id (jobs from before owners were recorded have none)."""
    return {row["id"]: row["owner"] for row in (yield Fetch(OWNERS))}


def fail_stale_jobs(silent_since: datetime, orphans: list[int], error: str, now: datetime) -> Op[int]:
    """Fail the running jobs among ``orphans``, and those silent since ``silent_since``."""
    stale = yield Fetch(STALE, silent_since, orphans)
    for row in stale:
        yield Execute(FAIL, row["id"], stopped_error(error, done=row["done"], total=row["total"]), now)
    return len(stale)


def count_cli_run(command: str, result: str, codes: int) -> Op[None]:
    yield Execute(COUNT_CLI_RUN, command, result, codes)


def cli_runs() -> Op[list[CliRuns]]:
    rows = yield Fetch("SELECT command, result, runs, codes FROM cli_runs ORDER BY command, result")
    return [CliRuns(*row) for row in rows]


class Jobs(StoreCore):
    async def create_job(
        self, *, account_id: int, kind: JobKind, pool_id: int, total: int, params: dict[str, Any]
    ) -> Job:
        """Record a new running job, owned by this process (which runs it). Conflict when the pool already
        has a running job."""
        owner = await self._driver.job_owner()
        op = create_job(account_id, kind, pool_id, total, json.dumps(params), owner, self.clock())
        return await self._driver.write(op)

    async def create_generation_job(
        self, *, account_id: int, pool_id: int, total: int, params: dict[str, Any], request: Keyed
    ) -> Once[Job]:
        """``create_job`` of a generation, once per keyed request: the same request again gets the job it
        created, replayed (JobNotFound should that job be gone). Conflict, PoolNotFound."""
        owner = await self._driver.job_owner()
        params_json = json.dumps(params)
        op = create_generation_job(account_id, pool_id, total, params_json, owner, self.clock(), request)
        return await self._driver.write(op)

    async def generation_job_of(self, *, account_id: int, pool_id: int, request: Keyed) -> Job | None:
        """The job a keyed generation started before, None when the key is new; IdempotencyKeyReused."""
        return await self._driver.read(generation_job_of(account_id, pool_id, request))

    async def get_job(self, *, account_id: int, job_id: int) -> Job | None:
        return await self._driver.read(get_job(account_id, job_id))

    async def insert_job_codes(self, *, job_id: int, pool_id: int, values: Sequence[str]) -> int:
        """``insert_codes`` for a running job: in the same transaction, add the number inserted to the job's
        ``done`` and move its heartbeat (``updated_at``). When the job is no longer running, stores nothing
        and raises Conflict."""
        return await self._driver.write(insert_job_codes(job_id, pool_id, values, self.clock()))

    async def finish_job(self, *, job_id: int, error: str | None) -> Job | None:
        """End a running job: ``succeeded``, or ``failed`` with ``error``. None when it was not running."""
        return await self._driver.write(finish_job(job_id, error, self.clock()))

    async def fail_stale_jobs(self, *, silent_since: datetime, error: str) -> int:
        """Mark ``failed`` every running job whose owner is gone (the process that created and runs it: told
        at once and exactly, never a live process's job), or whose heartbeat is older than ``silent_since``;
        its error is ``error`` with how far it got (``stopped_error``). Return how many."""
        # An owner once gone stays gone, so judging before the write's transaction fails no live job.
        owners = await self._driver.read(running_owners())
        gone = await self._driver.gone_owners(set(owners.values()))
        orphans = [job_id for job_id, owner in owners.items() if owner in gone]
        return await self._driver.write(fail_stale_jobs(silent_since, orphans, error, self.clock()))

    async def count_cli_run(self, *, command: str, result: str, codes: int = 0) -> None:
        """Count one run of a CLI command as ``result`` (and the codes it stored)."""
        await self._driver.write(count_cli_run(command, result, codes))

    async def cli_runs(self) -> list[CliRuns]:
        """The CLI's runs, by command and result."""
        return await self._driver.read(cli_runs())
