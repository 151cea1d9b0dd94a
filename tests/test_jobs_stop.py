"""A generation job whose server stops counts exactly what it stored: a real `promopool serve` is stopped
mid-job (SIGTERM: the job ends failed at once; SIGKILL: the next server's start fails it), on both engines."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from promopool import service
from promopool.domain.jobs import Job, JobState, stopped_error
from promopool.service.generation import STOPPED
from promopool.service.jobs import SERVER_STOPPED
from promopool.storage import Store
from tests.conftest import Tenant, connected, free_port, make_tenant

pytestmark = pytest.mark.slow


@contextmanager
def server(database_url: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    env = {**os.environ, "PROMOPOOL_DATABASE_URL": database_url}
    process = subprocess.Popen(
        [sys.executable, "-m", "promopool", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the server and its workers
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "server exited"
            try:
                if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        yield process, base
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


TOTAL = 5_000_000


def start_job(base: str, headers: dict[str, str], pool_id: int) -> int:
    created = httpx.post(f"{base}/v1/pools/{pool_id}/generate", json={"count": TOTAL}, headers=headers)
    assert created.status_code == 202, created.text
    return int(created.json()["id"])


def wait_for_progress(base: str, headers: dict[str, str], job_id: int, at_least: int) -> int:
    deadline = time.monotonic() + 120
    while (done := int(httpx.get(f"{base}/v1/jobs/{job_id}", headers=headers).json()["done"])) < at_least:
        assert time.monotonic() < deadline, "job made no progress"
        time.sleep(0.05)
    return done


def wait_until_ended(base: str, headers: dict[str, str], job_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while (shown := httpx.get(f"{base}/v1/jobs/{job_id}", headers=headers).json())["state"] == "running":
        assert time.monotonic() < deadline, "the job was left running"
        time.sleep(0.1)
    return dict(shown)


def stop(process: subprocess.Popen[bytes], how: signal.Signals) -> None:
    if how is signal.SIGKILL:  # a crash takes the server and its workers at once
        os.killpg(process.pid, how)
    else:  # a stop: the server stops its workers gracefully
        process.send_signal(how)
    process.wait(timeout=60)


async def assert_exact(store: Store, tenant: Tenant, job: Job) -> None:
    stored = 0
    async for rows in await service.export_codes(store, account=tenant.account, pool_id=tenant.pool.id):
        stored += len(rows)
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    # Every committed batch is counted, and nothing else: done is exactly what is in the table.
    assert 100_000 <= job.done == stored == pool.counts.available < TOTAL


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_a_stopped_server_leaves_its_job_exact(database_url: str, how: signal.Signals) -> None:
    async with connected(database_url) as store:
        tenant = await make_tenant(store, "acme")
    headers = {"Authorization": f"Bearer {tenant.api_key}"}
    with server(database_url) as (process, base):
        job_id = start_job(base, headers, tenant.pool.id)
        wait_for_progress(base, headers, job_id, 100_000)
        stop(process, how)
    if how is signal.SIGKILL:
        # Killed, it could not say so; the server started next fails the job at once (long before its
        # heartbeat's STALE_AFTER), saying how far it got.
        with server(database_url) as (_, base):
            shown = wait_until_ended(base, headers, job_id)
    async with connected(database_url) as store:
        job = await service.get_job(store, account=tenant.account, job_id=job_id)
        assert job.state is JobState.FAILED
        if how is signal.SIGTERM:  # shut down cleanly: the job said so itself
            assert job.error == STOPPED
        else:
            assert job.error == stopped_error(SERVER_STOPPED, done=job.done, total=TOTAL) == shown["error"]
        await assert_exact(store, tenant, job)


async def test_a_starting_server_leaves_a_live_servers_job_running(database_url: str) -> None:
    """Several servers may share a database: one starting (and sweeping) fails only the jobs of processes
    that are gone."""
    async with connected(database_url) as store:
        tenant = await make_tenant(store, "acme")
        headers = {"Authorization": f"Bearer {tenant.api_key}"}
        with server(database_url) as (running, base):
            job_id = start_job(base, headers, tenant.pool.id)
            wait_for_progress(base, headers, job_id, 100_000)
            with server(database_url) as (_, other_base):
                assert await service.fail_stale_jobs(store) == 0  # a sweep as the other server's start ran
                seen = wait_for_progress(other_base, headers, job_id, 0)
                wait_for_progress(other_base, headers, job_id, seen + 1)  # still running, still storing
                job = await service.get_job(store, account=tenant.account, job_id=job_id)
                assert job.state is JobState.RUNNING
            stop(running, signal.SIGKILL)
        # Its process is gone: failed as soon as the database has seen its sessions end (PostgreSQL notices a
        # killed client's closed socket within moments, and a batch it was writing is rolled back).
        deadline = time.monotonic() + 10
        while not await service.fail_stale_jobs(store):
            assert time.monotonic() < deadline, "the killed server's job was left running"
            await asyncio.sleep(0.1)
        job = await service.get_job(store, account=tenant.account, job_id=job_id)
        assert (
            job.state is JobState.FAILED and job.error is not None and f"{job.done} of {TOTAL}" in job.error
        )
        await assert_exact(store, tenant, job)
