"""Generation jobs: their rows, and code batches committed together with the job's progress (postgres
engine)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from promopool.domain.errors import StorageUnavailable
from promopool.domain.jobs import Job, JobKind, JobState, stopped_error
from promopool.storage.base import job_running, job_stopped
from promopool.storage.postgres.base import PostgresBase
from promopool.storage.postgres.codes import insert_values
from promopool.storage.postgres.driver import CONNECTION_ERRORS

# A job's owner is a process holding the session advisory lock (JOB_OWNERS, its key) on a connection of its
# own for as long as it lives: PostgreSQL frees it the moment that session ends, however the process died, so
# any server can tell a job whose process is gone from one that is running elsewhere.
JOB_OWNERS = 7_311_821  # the lock's first key (its class); pg_advisory_lock(int, int) form

# Running jobs whose owner holds no lock (or that have been silent since $1). SKIP LOCKED: a job whose batch
# is being written has a live process.
ORPHANED_SQL = """
SELECT id, done, total FROM jobs
WHERE state = 'running'
  AND (updated_at < $1 OR owner NOT IN (
      SELECT objid::bigint FROM pg_locks
      WHERE locktype = 'advisory' AND classid = $2::bigint::oid AND objsubid = 2 AND granted
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())))
FOR UPDATE OF jobs SKIP LOCKED
"""

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
    _owner_conn: asyncpg.Connection | None = None
    _owner_key: int | None = None
    _owner_guard: asyncio.Lock | None = None

    async def _job_owner(self) -> int:
        """This process's owner key, its lock held (taken again on a new connection if that one was lost)."""
        if self._owner_guard is None:
            self._owner_guard = asyncio.Lock()
        async with self._owner_guard:
            if self._owner_conn is not None and not self._owner_conn.is_closed():
                assert self._owner_key is not None
                return self._owner_key
            try:
                conn = await asyncpg.connect(self._db.dsn)
                key = self._owner_key or secrets.randbelow(2**31 - 1) + 1
                while not await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", JOB_OWNERS, key):
                    key = secrets.randbelow(2**31 - 1) + 1  # another live process's: ours must be unique
            except CONNECTION_ERRORS as exc:
                raise StorageUnavailable(f"PostgreSQL is unavailable: {exc}") from exc
            self._owner_conn, self._owner_key = conn, key
            return key

    async def close(self) -> None:
        if self._owner_conn is not None:  # its lock goes with it: this process runs no job any more
            await self._owner_conn.close()
            self._owner_conn = None
        await super().close()

    async def create_job(
        self, *, account_id: int, kind: JobKind, pool_id: int, total: int, params: dict[str, Any]
    ) -> Job:
        now, owner = self.clock(), await self._job_owner()
        try:
            row = await self._fetchrow(
                "INSERT INTO jobs (account_id, kind, pool_id, params, total, created_at, updated_at, owner)"
                f" VALUES ($1, $2, $3, $4, $5, $6, $6, $7) RETURNING {JOB_COLUMNS}",
                account_id,
                kind.value,
                pool_id,
                params,
                total,
                now,
                owner,
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
        if self._owner_conn is not None:  # our jobs stay ours: hold the lock again if its connection was lost
            await self._job_owner()
        now = self.clock()
        async with self._tx() as conn:
            orphaned = await conn.fetch(ORPHANED_SQL, silent_since, JOB_OWNERS)
            if not orphaned:
                return 0
            await conn.execute(
                "UPDATE jobs SET state = 'failed', error = v.error, finished_at = $3, updated_at = $3"
                " FROM unnest($1::bigint[], $2::text[]) AS v(id, error) WHERE jobs.id = v.id",
                [row["id"] for row in orphaned],
                [stopped_error(error, done=row["done"], total=row["total"]) for row in orphaned],
                now,
            )
        return len(orphaned)
