"""Background jobs: looked up by their account, run as asyncio tasks of the server process, and marked
failed when the process that ran them stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any, TypeVar

from promopool.domain import Account, CliCommand, CliResult, CliRuns
from promopool.domain.errors import JobNotFound
from promopool.domain.jobs import Job
from promopool.outages import OUTAGES, background_failure
from promopool.storage import Store

log = logging.getLogger("promopool")
T = TypeVar("T")

# A job whose owner (the process running it) is gone is failed at once; sweeps run on a server's start and
# then every SWEEP_EVERY. A running job also moves its heartbeat with every batch (about a second apart): one
# silent this long has lost its task even if its process lives on (its end could not be recorded).
STALE_AFTER = timedelta(minutes=2)
SWEEP_EVERY_SECONDS = 30.0
SERVER_STOPPED = "its server stopped before it finished"


async def get_job(store: Store, *, account: Account, job_id: int) -> Job:
    """One job of the account, with its progress; JobNotFound otherwise."""
    job = await store.get_job(account_id=account.id, job_id=job_id)
    if job is None:
        raise JobNotFound(job_id)
    return job


async def counted_cli_run(
    store: Store,
    *,
    command: CliCommand,
    run: Callable[[], Awaitable[T]],
    stored: Callable[[T], int],
    succeeded: Callable[[T], bool] = lambda _: True,
) -> T:
    """Run a CLI command's work, counted in the database (``cli_runs``: started, then succeeded or failed,
    with the codes ``stored``) for the servers' /metrics: the CLI's own process has no scrape."""
    await store.count_cli_run(command=command, result=CliResult.STARTED)
    try:
        value = await run()
    except Exception:
        # The run's own error is the one to tell (the database may be away).
        with contextlib.suppress(Exception):
            await store.count_cli_run(command=command, result=CliResult.FAILED)
        raise
    result = CliResult.SUCCEEDED if succeeded(value) else CliResult.FAILED
    await store.count_cli_run(command=command, result=result, codes=stored(value))
    return value


async def cli_runs(store: Store) -> list[CliRuns]:
    """How many imports and generations the CLI started, and how they ended."""
    return await store.cli_runs()


async def fail_stale_jobs(store: Store, *, stale_after: timedelta = STALE_AFTER) -> int:
    """Mark ``failed`` the running jobs whose process is gone, or whose heartbeat stopped ``stale_after``
    ago, each saying how far it got; return how many."""
    return await store.fail_stale_jobs(silent_since=store.clock() - stale_after, error=SERVER_STOPPED)


class JobRunner:
    """The background jobs of one server process. ``stop`` cancels them; each marks itself failed, keeping
    what it committed (``run_generation``)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep())

    def spawn(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.create_task(work)
        self._tasks.add(task)  # a reference, or the task could be garbage-collected mid-way
        task.add_done_callback(self._tasks.discard)
        return task

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self._sweeper] if self._sweeper else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _sweep(self) -> None:
        while True:
            try:
                if failed := await fail_stale_jobs(self._store):
                    log.warning("marked %d job(s) failed: their server stopped before they finished", failed)
            except Exception as exc:  # the database may be away for a while; try again next round
                background_failure("could not check for stopped jobs", exc)
            else:
                OUTAGES.succeeded()
            await asyncio.sleep(SWEEP_EVERY_SECONDS)
