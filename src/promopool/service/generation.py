"""Generating codes: random codes in batches through the bulk insert, as a job that reports its progress."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict

from promopool.domain import Account
from promopool.domain.errors import PromopoolError, StorageBusy
from promopool.domain.generation import CodeSpec, check_key_space, generate
from promopool.domain.idempotency import Once, keyed
from promopool.domain.jobs import Job, JobKind
from promopool.domain.keys import check_writable
from promopool.service.claims import check_idempotency_key
from promopool.service.pools import get_pool
from promopool.storage import Store

log = logging.getLogger("promopool")

GENERATE_BATCH = 50_000  # codes per transaction
GENERATE_SYNC_LIMIT = 10_000  # the API generates up to this many before answering; more run in the background
MAX_FUTILE_BATCHES = 100  # batches in a row that store nothing: the key space is full, stop
DEFAULT_MAX_FILL = 1e-6
STOPPED = "stopped before it finished (the server or command was stopped)"


async def start_generation(
    store: Store,
    *,
    account: Account,
    pool_id: int,
    spec: CodeSpec,
    count: int,
    max_fill: float = DEFAULT_MAX_FILL,
) -> Job:
    """Check a request for ``count`` new codes against the key-space floor (counting the codes the pool
    already holds) and record it as a running job; ``run_generation`` does the work."""
    started = await start_generation_once(
        store, account=account, pool_id=pool_id, spec=spec, count=count, max_fill=max_fill
    )
    return started.value


async def start_generation_once(
    store: Store,
    *,
    account: Account,
    pool_id: int,
    spec: CodeSpec,
    count: int,
    max_fill: float = DEFAULT_MAX_FILL,
    idempotency_key: str | None = None,
) -> Once[Job]:
    """``start_generation``, once per Idempotency-Key: the same request again gets the job it started (as
    it is now), replayed, and starts none: run it only when not replayed."""
    check_writable(account)
    request = keyed(check_idempotency_key(idempotency_key), asdict(spec), count)
    pool = await get_pool(store, account=account, pool_id=pool_id)
    params = asdict(spec)
    if request is None:
        check_key_space(spec, existing=pool.counts.total, count=count, max_fill=max_fill)
        job = await store.create_job(
            account_id=account.id, kind=JobKind.GENERATE, pool_id=pool_id, total=count, params=params
        )
        return Once(job)
    # A replay is answered whatever the pool holds now (the first request's codes count against it); a
    # new request is checked against the key space first.
    replayed = await store.generation_job_of(account_id=account.id, pool_id=pool_id, request=request)
    if replayed is not None:
        return Once(replayed, replayed=True)
    check_key_space(spec, existing=pool.counts.total, count=count, max_fill=max_fill)
    return await store.create_generation_job(
        account_id=account.id, pool_id=pool_id, total=count, params=params, request=request
    )


async def run_generation(
    store: Store,
    *,
    job: Job,
    batch_size: int = GENERATE_BATCH,
    on_progress: Callable[[int], None] | None = None,
) -> Job:
    """Generate until the job has stored ``total`` new codes and return it finished: ``succeeded``, or
    ``failed`` with its error. Each batch commits together with the job's ``done``; codes the pool already
    holds are skipped by the database and only that shortfall is generated again."""
    spec = CodeSpec(**job.params)
    pool_id = job.pool_id
    assert pool_id is not None  # set when the job is created; only deleting the pool clears it
    done, futile, error = job.done, 0, None
    try:
        while done < job.total and error is None:
            values = generate(spec, min(batch_size, job.total - done))
            try:
                inserted = await store.insert_job_codes(job_id=job.id, pool_id=pool_id, values=values)
            except StorageBusy as busy:  # the pool held past the lock timeout: the batch rolled back
                await asyncio.sleep(busy.retry_after)
                continue
            done += inserted
            futile = 0 if inserted else futile + 1
            if futile == MAX_FUTILE_BATCHES:
                error = f"the key space is full: {futile} batches in a row were all codes the pool holds"
            if on_progress is not None:
                on_progress(done)
    except PromopoolError as exc:
        error = exc.message
    except asyncio.CancelledError:
        # Stopped mid-way: what is committed stays, and `done` says exactly how much that is.
        await asyncio.shield(_finish(store, job, STOPPED))
        raise
    except Exception:
        log.exception("generation job %s failed", job.id)
        error = "internal error"
    return await _finish(store, job, error)


async def _finish(store: Store, job: Job, error: str | None) -> Job:
    finished = await store.finish_job(job_id=job.id, error=error)
    if finished is None:  # no longer running: failed meanwhile by the sweep for stopped servers
        finished = await store.get_job(account_id=job.account_id, job_id=job.id)
    assert finished is not None
    return finished


async def generate_codes(
    store: Store,
    *,
    account: Account,
    pool_id: int,
    spec: CodeSpec,
    count: int,
    max_fill: float = DEFAULT_MAX_FILL,
    on_progress: Callable[[int], None] | None = None,
) -> Job:
    """Generate ``count`` new codes into the pool in the foreground (the CLI; small API requests)."""
    job = await start_generation(
        store, account=account, pool_id=pool_id, spec=spec, count=count, max_fill=max_fill
    )
    return await run_generation(store, job=job, on_progress=on_progress)
