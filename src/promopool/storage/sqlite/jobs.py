"""Generation jobs: their rows, and code batches committed together with the job's progress (sqlite
engine)."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from promopool.domain.jobs import Job, JobKind, JobState, stopped_error
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


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name, from the state on; None without one."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def this_process() -> str:
    """This process as a job's owner: its pid, and its start time where Linux tells it, which a later
    process given the same pid does not share. (Every process using a SQLite file is on its machine.)"""
    pid = os.getpid()
    fields = _stat(pid)
    return f"{pid}" if fields is None else f"{pid}:{fields[19]}"


def owner_gone(owner: str) -> bool:
    """Whether the process ``this_process`` described has ended (a zombie has: it runs nothing)."""
    pid_text, _, started = owner.partition(":")
    pid = int(pid_text)
    if started:
        fields = _stat(pid)
        return fields is None or fields[0] in ("Z", "X") or fields[19] != started
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's: it exists
        return False
    return False


class SQLiteJobs(SQLiteBase):
    async def create_job(
        self, *, account_id: int, kind: JobKind, pool_id: int, total: int, params: dict[str, Any]
    ) -> Job:
        now, owner = ts(self.clock()), this_process()

        def op(conn: sqlite3.Connection) -> Job:
            try:
                row = conn.execute(
                    "INSERT INTO jobs"
                    " (account_id, kind, pool_id, params, total, created_at, updated_at, owner)"
                    f" VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING {JOB_COLUMNS}",
                    (account_id, kind.value, pool_id, json.dumps(params), total, now, now, owner),
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
            running = conn.execute(
                "SELECT id, done, total, owner, updated_at FROM jobs WHERE state = 'running'"
            ).fetchall()
            failed = 0
            for job_id, done, total, owner, updated_at in running:
                if updated_at < cutoff or (owner is not None and owner_gone(owner)):
                    failed += conn.execute(
                        "UPDATE jobs SET state = 'failed', error = ?, finished_at = ?, updated_at = ?"
                        " WHERE id = ? AND state = 'running'",
                        (stopped_error(error, done=done, total=total), now, now, job_id),
                    ).rowcount
            return failed

        return await self._write(op)
