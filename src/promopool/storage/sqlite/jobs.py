"""Generation jobs: their rows, and code batches committed together with the job's progress (sqlite
engine)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from promopool.domain.jobs import Job, JobKind, JobState
from promopool.storage.base import job_running, job_stopped
from promopool.storage.sqlite.base import SQLiteBase, ts
from promopool.storage.sqlite.codes import insert_values

JOB_COLUMNS = (
    "id, account_id, kind, pool_id, total, done, state, created_at, updated_at, finished_at, error, params"
)


def _job_of(row: sqlite3.Row) -> Job:
    return Job(
        id=row[0],
        account_id=row[1],
        kind=JobKind(row[2]),
        pool_id=row[3],
        total=row[4],
        done=row[5],
        state=JobState(row[6]),
        created_at=datetime.fromisoformat(row[7]),
        updated_at=datetime.fromisoformat(row[8]),
        finished_at=None if row[9] is None else datetime.fromisoformat(row[9]),
        error=row[10],
        params=json.loads(row[11]),
    )


class SQLiteJobs(SQLiteBase):
    async def create_job(
        self, *, account_id: int, kind: JobKind, pool_id: int, total: int, params: dict[str, Any]
    ) -> Job:
        now = ts(self.clock())

        def op(conn: sqlite3.Connection) -> Job:
            try:
                row = conn.execute(
                    "INSERT INTO jobs (account_id, kind, pool_id, params, total, created_at, updated_at)"
                    f" VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING {JOB_COLUMNS}",
                    (account_id, kind.value, pool_id, json.dumps(params), total, now, now),
                ).fetchone()
            except sqlite3.IntegrityError as exc:  # jobs_running_pool: one running job per pool
                raise job_running(pool_id) from exc
            return _job_of(row)

        return await self._write(op)

    async def get_job(self, *, account_id: int, job_id: int) -> Job | None:
        sql = f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ? AND account_id = ?"
        row = await self._read(lambda conn: conn.execute(sql, (job_id, account_id)).fetchone())
        return None if row is None else _job_of(row)

    async def insert_job_codes(self, *, job_id: int, pool_id: int, values: Sequence[str]) -> int:
        now = ts(self.clock())

        def op(conn: sqlite3.Connection) -> int:
            inserted = insert_values(conn, pool_id, values, now)
            counted = conn.execute(
                "UPDATE jobs SET done = done + ?, updated_at = ? WHERE id = ? AND state = 'running'",
                (inserted, now, job_id),
            ).rowcount
            if not counted:  # raising rolls this write back (its savepoint): nothing stored, nothing counted
                raise job_stopped(job_id)
            return inserted

        return await self._write(op)

    async def finish_job(self, *, job_id: int, error: str | None) -> Job | None:
        now = ts(self.clock())
        state = JobState.SUCCEEDED if error is None else JobState.FAILED

        def op(conn: sqlite3.Connection) -> Job | None:
            row = conn.execute(
                "UPDATE jobs SET state = ?, error = ?, finished_at = ?, updated_at = ?"
                f" WHERE id = ? AND state = 'running' RETURNING {JOB_COLUMNS}",
                (state.value, error, now, now, job_id),
            ).fetchone()
            return None if row is None else _job_of(row)

        return await self._write(op)

    async def fail_stale_jobs(self, *, silent_since: datetime, error: str) -> int:
        now, cutoff = ts(self.clock()), ts(silent_since)

        def op(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "UPDATE jobs SET state = 'failed', error = ?, finished_at = ?, updated_at = ?"
                " WHERE state = 'running' AND updated_at < ?",
                (error, now, now, cutoff),
            ).rowcount

        return await self._write(op)
