"""Bad input gets a 4xx with the standard error body, and changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from promopool import service
from promopool.storage import Store
from tests.conftest import Tenant
from tests.helpers import assert_error, snapshot

HUNDRED_MB = 100 * 1024 * 1024


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        (
            "POST",
            "/v1/pools",
            {"content": b'{"name": "x"', "headers": {"content-type": "application/json"}},
            400,
            "invalid_input",
        ),
        (
            "POST",
            "/v1/pools",
            {"content": b"name=x", "headers": {"content-type": "text/plain"}},
            400,
            "invalid_input",
        ),
        ("POST", "/v1/pools", {"json": {}}, 400, "invalid_input"),
        ("POST", "/v1/pools", {"json": {"name": "x", "max_uses": 0}}, 400, "invalid_input"),
        ("POST", "/v1/pools", {"json": {"name": "x", "surprise": 1}}, 400, "invalid_input"),
        ("POST", "/v1/pools", {"json": {"name": "bad\u0000name"}}, 400, "invalid_input"),
        ("POST", "/v1/pools", {"json": {"name": "x", "max_uses": 10**30}}, 400, "invalid_input"),
        ("PATCH", "/v1/pools/{pool}", {"json": {"max_uses": "many"}}, 400, "invalid_input"),
        ("POST", "/v1/pools/{pool}/codes", {"json": ["OK1", "bad\u0000code"]}, 400, "invalid_code"),
        ("POST", "/v1/pools/{pool}/codes", {"json": ["OK1", 5]}, 400, "invalid_input"),
        ("POST", "/v1/pools/{pool}/codes", {"json": {"codes": "OK1"}}, 400, "invalid_input"),
        (
            "POST",
            "/v1/pools/{pool}/codes",
            {"content": b'["OK1", ', "headers": {"content-type": "application/json"}},
            400,
            "invalid_input",
        ),
        (
            "POST",
            "/v1/pools/{pool}/codes",
            {"content": b"OK1\nbad\x00\n", "headers": {"content-type": "text/plain"}},
            400,
            "invalid_code",
        ),
        (
            "POST",
            "/v1/pools/{pool}/codes",
            {"content": b"OK1\n\xff\xfe\n", "headers": {"content-type": "text/plain"}},
            400,
            "invalid_input",
        ),
        (
            "POST",
            "/v1/pools/{pool}/codes",
            {"content": b"OK1", "headers": {"content-type": "application/xml"}},
            415,
            "unsupported_media_type",
        ),
        ("POST", "/v1/pools/{pool}/claim", {"headers": {"Idempotency-Key": "x" * 300}}, 400, "invalid_input"),
        ("GET", "/v1/pools/{pool}/codes/bad%00code", {}, 404, "code_not_found"),
        ("DELETE", "/v1/pools/{pool}/codes/bad%00code", {}, 404, "code_not_found"),
        ("GET", "/v1/pools/{pool}/codes?limit=-1", {}, 400, "invalid_input"),
        ("GET", "/v1/pools/{pool}/codes?cursor=AA", {}, 400, "invalid_input"),
        ("GET", "/v1/pools/0", {}, 400, "invalid_input"),
        ("GET", "/v1/pools/abc", {}, 404, "not_found"),
        ("PUT", "/v1/pools", {}, 405, "method_not_allowed"),
    ],
)
async def test_bad_request_changes_nothing(
    client: httpx.AsyncClient,
    store: Store,
    tenant: Tenant,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
    code: str,
) -> None:
    before = await snapshot(store, tenant)
    kwargs = dict(kwargs)  # the parameters are shared by both engines' runs
    headers = {**tenant.headers, **kwargs.pop("headers", {})}
    response = await client.request(method, path.format(pool=tenant.pool.id), headers=headers, **kwargs)
    assert_error(response, status, code)
    assert await snapshot(store, tenant) == before


@pytest.mark.parametrize("path", ["/v1/pools", "/v1/pools/{pool}/codes"])
async def test_hundred_megabyte_body_is_refused(
    client: httpx.AsyncClient, store: Store, tenant: Tenant, path: str
) -> None:
    before = await snapshot(store, tenant)
    body = b'["' + b"A" * (HUNDRED_MB - 4) + b'"]'
    response = await client.post(
        path.format(pool=tenant.pool.id),
        content=body,
        headers={**tenant.headers, "content-type": "application/json"},
    )
    assert_error(response, 413, "payload_too_large")
    assert await snapshot(store, tenant) == before


async def test_overlong_text_line_does_not_buffer_and_is_reported(
    client: httpx.AsyncClient, store: Store, tenant: Tenant
) -> None:
    body = b"GOOD\n" + b"L" * (10 * 1024 * 1024) + b"\n"
    response = await client.post(
        f"/v1/pools/{tenant.pool.id}/codes",
        content=body,
        headers={**tenant.headers, "content-type": "text/plain"},
    )
    error = assert_error(response, 400, "invalid_code")
    assert error["details"]["samples"] == [{"position": 2, "reason": "too_long"}]
    assert (await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)).counts.total == 10
