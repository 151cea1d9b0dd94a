"""POST /v1/pools/{id}/generate and GET /v1/jobs/{id} through the in-process client, on both engines."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from promopool import service
from promopool.domain.generation import CodeSpec
from tests.conftest import Tenant
from tests.helpers import assert_error

Client = httpx.AsyncClient


async def wait_for(client: Client, tenant: Tenant, job_id: int) -> dict[str, Any]:
    for _ in range(1000):
        job: dict[str, Any] = (await client.get(f"/v1/jobs/{job_id}", headers=tenant.headers)).json()
        if job["state"] != "running":
            return job
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} still running")


async def test_small_generation_answers_with_the_finished_job(client: Client, tenant: Tenant) -> None:
    body = {"count": 25, "pattern": "SPRING-####-####", "check_character": True}
    r = await client.post(f"/v1/pools/{tenant.pool.id}/generate", json=body, headers=tenant.headers)
    assert r.status_code == 201, r.text
    job = r.json()
    assert r.headers["location"] == f"/v1/jobs/{job['id']}"
    assert (job["state"], job["done"], job["total"], job["kind"]) == ("succeeded", 25, 25, "generate")
    assert job["params"]["pattern"] == "SPRING-####-####" and job["params"]["check_character"] is True
    pool = (await client.get(f"/v1/pools/{tenant.pool.id}", headers=tenant.headers)).json()
    assert pool["counts"]["available"] == 35
    listed = await client.get(f"/v1/pools/{tenant.pool.id}/codes?limit=1000", headers=tenant.headers)
    spec = CodeSpec.of(pattern="SPRING-####-####", check_character=True)
    generated = [c["code"] for c in listed.json()["codes"] if c["code"].startswith("SPRING-")]
    assert len(generated) == 25 and all(spec.matches(code) for code in generated)


async def test_large_generation_runs_in_the_background(client: Client, tenant: Tenant) -> None:
    count = service.GENERATE_SYNC_LIMIT + 5_000
    r = await client.post(
        f"/v1/pools/{tenant.pool.id}/generate",
        json={"count": count, "length": 10, "charset": "alphanumeric", "uppercase": False},
        headers=tenant.headers,
    )
    assert r.status_code == 202, r.text
    assert r.json()["state"] == "running" and r.json()["done"] <= count
    job = await wait_for(client, tenant, r.json()["id"])
    assert (job["state"], job["done"], job["error"]) == ("succeeded", count, None)
    assert job["finished_at"] is not None
    pool = (await client.get(f"/v1/pools/{tenant.pool.id}", headers=tenant.headers)).json()
    assert pool["counts"]["available"] == count + 10


async def test_key_space_floor_is_refused_with_its_numbers(client: Client, tenant: Tenant) -> None:
    url = f"/v1/pools/{tenant.pool.id}/generate"
    body = {"count": 91, "pattern": "########", "charset": "digits"}
    error = assert_error(
        await client.post(url, json=body, headers=tenant.headers), 400, "key_space_too_small"
    )
    assert error["details"]["max_count"] == 90 and error["details"]["key_space"] == 100_000_000
    assert "at most 90 more" in error["message"]
    ok = await client.post(url, json={**body, "count": 90}, headers=tenant.headers)
    assert ok.status_code == 201 and ok.json()["done"] == 90


async def test_bad_generation_requests(client: Client, tenant: Tenant, other: Tenant) -> None:
    url = f"/v1/pools/{tenant.pool.id}/generate"
    h = tenant.headers
    assert_error(await client.post(url, json={"count": 0}, headers=h), 400, "invalid_input")
    assert_error(await client.post(url, json={"count": 5, "pattern": "AB"}, headers=h), 400, "invalid_input")
    both = {"count": 5, "pattern": "##", "length": 2}
    assert_error(await client.post(url, json=both, headers=h), 400, "invalid_input")
    assert_error(await client.post(url, json={"count": 5, "charset": "x"}, headers=h), 400, "invalid_input")
    assert_error(await client.post(url, json={"count": 5, "colour": 1}, headers=h), 400, "invalid_input")
    assert_error(await client.post(url, json={"count": 5}, headers=other.headers), 404, "pool_not_found")
    assert_error(await client.get("/v1/jobs/12345", headers=h), 404, "job_not_found")


async def test_a_job_is_visible_to_its_account_only(client: Client, tenant: Tenant, other: Tenant) -> None:
    r = await client.post(f"/v1/pools/{tenant.pool.id}/generate", json={"count": 3}, headers=tenant.headers)
    job_id = r.json()["id"]
    assert (await client.get(f"/v1/jobs/{job_id}", headers=tenant.headers)).status_code == 200
    assert_error(await client.get(f"/v1/jobs/{job_id}", headers=other.headers), 404, "job_not_found")


async def test_a_second_job_on_a_busy_pool_is_refused(client: Client, tenant: Tenant) -> None:
    url = f"/v1/pools/{tenant.pool.id}/generate"
    first = await client.post(url, json={"count": 60_000}, headers=tenant.headers)
    assert first.status_code == 202
    assert_error(await client.post(url, json={"count": 5}, headers=tenant.headers), 409, "conflict")
    await wait_for(client, tenant, first.json()["id"])
