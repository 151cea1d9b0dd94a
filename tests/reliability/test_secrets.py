"""Secrets: API keys are stored only as digests, and no secret reaches the server's logs.

Comparison in constant time is a matter of code review (no timing test): a presented key is hashed with
SHA-256 first and looked up by its digest (api/auth.py, service/accounts.py); timing can at most reveal
something about a digest, never about a key. Secrets compared as plain values (the dialects' shop
secrets) must go through domain/keys.same_secret (hmac.compare_digest). See docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from promopool import service
from promopool.domain.keys import hash_api_key
from tests.conftest import connected, free_port, make_tenant
from tests.reliability.conftest import Tally
from tests.reliability.integrity import sqlite_path, table_dump
from tests.reliability.servers import Server

pytestmark = [pytest.mark.reliability]


async def test_api_keys_are_stored_only_as_digests(fresh_url: str, engine: str) -> None:
    async with connected(fresh_url) as store:
        tenant = await make_tenant(store, "hashed", ["C1"])
        second = await service.create_api_key(store, account=tenant.account)
        default = await service.create_account(store, name="another")
    keys = [tenant.api_key, second, default.api_key]
    stored = await table_dump(fresh_url)
    for key in keys:
        assert key not in stored
        assert key.removeprefix("pp_") not in stored
        assert hash_api_key(key) in stored  # what is stored instead
    if engine == "sqlite":  # and not in any byte of the files (the write-ahead log included)
        for file in Path(sqlite_path(fresh_url)).parent.glob("promopool.db*"):
            raw = file.read_bytes()
            for key in keys:
                assert key.encode() not in raw, file


def with_password(url: str, password: str) -> str:
    """``url`` with a password for its user (PostgreSQL here trusts, so any password connects)."""
    parts = urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    user = user.partition(":")[0] or "postgres"
    return urlunsplit((parts.scheme, f"{user}:{password}@{host}", parts.path, parts.query, parts.fragment))


async def test_no_secret_in_the_logs(fresh_url: str, engine: str, tmp_path: Path, tally: Tally) -> None:
    password = "pw-" + secrets.token_hex(8)
    url = fresh_url if engine == "sqlite" else with_password(fresh_url, password)
    async with connected(url) as store:
        tenant = await make_tenant(store, "logged", [f"L{i}" for i in range(5)])
        extra_key = await service.create_api_key(store, account=tenant.account)
    unknown = "pp_" + secrets.token_urlsafe(32)
    secrets_used = [tenant.api_key, extra_key, unknown, hash_api_key(tenant.api_key), password]
    requests = 0
    with Server(url, tmp_path / "server.log", log_level="debug") as server:
        await asyncio.to_thread(server.start)
        pool = f"/v1/pools/{tenant.pool.id}"
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            for key in (tenant.api_key, extra_key, unknown, "Bearer " + tenant.api_key, tenant.api_key + "x"):
                for scheme in ("Bearer", "bearer", "Basic"):
                    h = {"Authorization": f"{scheme} {key}"}
                    calls = [
                        client.get("/v1/pools", headers=h),
                        client.get(pool, headers=h),
                        client.post(f"{pool}/claim", headers={**h, "Idempotency-Key": key}),
                        client.post(f"{pool}/codes", headers=h, content=b"\xff\n", params={"x": key}),
                        client.post("/v1/pools", headers=h, content=b'{"name": '),
                        client.get(f"{pool}/codes/none", headers=h),
                        client.get("/v1/missing", headers=h),
                    ]
                    for response in await asyncio.gather(*calls):
                        assert response.status_code < 500, response.text
                        requests += 1
        server.stop()
        log = server.log()
    assert "Started worker-1" in log  # the log is the served one
    if engine == "postgresql":
        # and when the database cannot be reached at all, the complaint does not show the password either
        unreachable = with_password(f"postgresql://postgres@127.0.0.1:{free_port()}/test", password)
        failed = Server(unreachable, tmp_path / "unreachable.log", log_level="debug")
        with pytest.raises(AssertionError, match="server exited"):
            failed.start()
        log += failed.log()
        assert "cannot open PostgreSQL database" in failed.log()
    leaked = [s for s in secrets_used if s in log]
    leaked += [s for s in secrets_used if hashlib.sha256(s.encode()).hexdigest() in log and s != password]
    assert leaked == [], f"secrets in the log: {leaked}"
    tally.add(f"secrets ({engine}): requests carrying keys to a debug-logging server", requests)
