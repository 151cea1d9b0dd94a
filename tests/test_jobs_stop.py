"""A generation job whose server stops counts exactly what it stored: a real `promopool serve` is stopped
mid-job (SIGTERM: the job ends failed at once; SIGKILL: the sweep fails it later), on both engines."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import httpx
import pytest

from promopool import service
from promopool.domain.jobs import JobState
from promopool.service.generation import STOPPED
from tests.conftest import connected, make_tenant
from tests.test_concurrency import free_port

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


def start_job_and_stop_server(database_url: str, api_key: str, pool_id: int, how: signal.Signals) -> int:
    headers = {"Authorization": f"Bearer {api_key}"}
    with server(database_url) as (process, base):
        created = httpx.post(
            f"{base}/v1/pools/{pool_id}/generate", json={"count": 5_000_000}, headers=headers
        )
        assert created.status_code == 202, created.text
        job_id = int(created.json()["id"])
        deadline = time.monotonic() + 120
        while httpx.get(f"{base}/v1/jobs/{job_id}", headers=headers).json()["done"] < 100_000:
            assert time.monotonic() < deadline, "job made no progress"
            time.sleep(0.05)
        if how is signal.SIGKILL:  # a crash takes the server and its workers at once
            os.killpg(process.pid, how)
        else:  # a stop: the server stops its workers gracefully
            process.send_signal(how)
        process.wait(timeout=60)
    return job_id


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_a_stopped_server_leaves_its_job_exact(database_url: str, how: signal.Signals) -> None:
    async with connected(database_url) as store:
        tenant = await make_tenant(store, "acme")
    job_id = start_job_and_stop_server(database_url, tenant.api_key, tenant.pool.id, how)
    async with connected(database_url) as store:
        job = await service.get_job(store, account=tenant.account, job_id=job_id)
        if how is signal.SIGTERM:  # shut down cleanly: the job says so at once
            assert job.state is JobState.FAILED and job.error == STOPPED
        else:  # killed: still "running" until the sweep sees its heartbeat is gone
            assert job.state is JobState.RUNNING
            real_clock = store.clock
            store.clock = lambda: real_clock() + timedelta(minutes=5)
            assert await service.fail_stale_jobs(store) == 1
            store.clock = real_clock
            job = await service.get_job(store, account=tenant.account, job_id=job_id)
            assert job.state is JobState.FAILED
        stored = 0
        async for rows in await service.export_codes(store, account=tenant.account, pool_id=tenant.pool.id):
            stored += len(rows)
        pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
        # Every committed batch is counted, and nothing else: done is exactly what is in the table.
        assert 100_000 <= job.done == stored == pool.counts.available < 5_000_000
