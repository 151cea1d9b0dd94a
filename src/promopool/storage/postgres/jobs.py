"""Generation jobs: their rows, and code batches committed together with the job's progress (postgres
engine)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from promopool.domain.jobs import Job, JobKind, JobState
from promopool.storage.base import job_running, job_stopped
from promopool.storage.postgres.base import PostgresBase
from promopool.storage.postgres.codes import insert_values

JOB_COLUMNS = (
    "id, account_id, kind, pool_id, total, done, state, created_at, updated_at, finished_at, error, params"
)


def _job_of(row: asyncpg.Record) -> Job:
    return Job(
        id=row["id"],
        account_id=row["account_id"],
        kind=JobKind(row["kind"]),
        pool_id=row["pool_id"],
        total=row["total"],
        done=row["done"],
        state=JobState(row["state"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
        error=row["error"],
        params=row["params"],
    )


class PostgresJobs(PostgresBase):
    async def create_job(
        self, *, account_id: int, kind: JobKind, pool_id: int, total: int, params: dict[str, Any]
    ) -> Job:
        now = self.clock()
        try:
            row = await self._fetchrow(
                "INSERT INTO jobs (account_id, kind, pool_id, params, total, created_at, updated_at)"
                f" VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {JOB_COLUMNS}",
                account_id,
                kind.value,
                pool_id,
                params,
                total,
                now,
            )
        except asyncpg.UniqueViolationError as exc:  # jobs_running_pool: one running job per pool
            raise job_running(pool_id) from exc
        assert row is not None
        return _job_of(row)

    async def get_job(self, *, account_id: int, job_id: int) -> Job | None:
        row = await self._fetchrow(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1 AND account_id = $2", job_id, account_id
        )
        return None if row is None else _job_of(row)

    async def insert_job_codes(self, *, job_id: int, pool_id: int, values: Sequence[str]) -> int:
        now = self.clock()
        async with self._tx() as conn:
            inserted = await insert_values(conn, pool_id, values, now)
            status = await conn.execute(
                "UPDATE jobs SET done = done + $2, updated_at = $3 WHERE id = $1 AND state = 'running'",
                job_id,
                inserted,
                now,
            )
            if status == "UPDATE 0":  # raising rolls the transaction back: nothing stored, nothing counted
                raise job_stopped(job_id)
        return inserted

    async def finish_job(self, *, job_id: int, error: str | None) -> Job | None:
        now = self.clock()
        state = JobState.SUCCEEDED if error is None else JobState.FAILED
        row = await self._fetchrow(
            "UPDATE jobs SET state = $2, error = $3, finished_at = $4, updated_at = $4"
            f" WHERE id = $1 AND state = 'running' RETURNING {JOB_COLUMNS}",
            job_id,
            state.value,
            error,
            now,
        )
        return None if row is None else _job_of(row)

    async def fail_stale_jobs(self, *, silent_since: datetime, error: str) -> int:
        async with self._conn() as conn:
            status = await conn.execute(
                "UPDATE jobs SET state = 'failed', error = $1, finished_at = $2, updated_at = $2"
                " WHERE state = 'running' AND updated_at < $3",
                error,
                self.clock(),
                silent_since,
            )
        return int(status.split()[-1])
