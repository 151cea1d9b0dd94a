"""PostgreSQL URLs naming several hosts (libpq's ``postgresql://h1:5432,h2:5432/db``), and a server that
takes no writes (a standby, or a primary being demoted): the store connects to the writable primary among
the hosts, and a server that takes no writes answers 503, never 500, readiness included.

The failover itself (a primary killed, its standby promoted) is tests/reliability/test_failover.py.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from promopool.api.app import create_app
from promopool.config import Settings
from promopool.domain.errors import StorageUnavailable
from promopool.storage import Store, open_store
from promopool.storage.failures import safe_url
from tests.conftest import Tenant, connected, free_port, make_tenant
from tests.helpers import cli, with_password

# A server setting in the URL (asyncpg hands unknown parameters to the server): every session on it refuses
# writes, as every session on a standby does.
READ_ONLY = ("default_transaction_read_only", "on")


def edited(url: str, *, hosts: str | None = None, query: tuple[tuple[str, str], ...] = ()) -> str:
    """``url`` with its hosts replaced and parameters added."""
    parts = urlsplit(url)
    userinfo, _, old_hosts = parts.netloc.rpartition("@")
    netloc = f"{userinfo}@{hosts or old_hosts}" if userinfo else hosts or old_hosts
    pairs = [*parse_qsl(parts.query), *query]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(pairs), ""))


def dead_then(url: str) -> str:
    """``url`` naming first a host where nothing listens, then its own host."""
    return edited(url, hosts=f"127.0.0.1:{free_port()},{urlsplit(url).netloc.rpartition('@')[2]}")


@pytest.fixture
async def tenant_on(postgres_url: str) -> Tenant:
    async with connected(postgres_url) as store:
        return await make_tenant(store, "ha", [f"HA{i:03d}" for i in range(10)])


@pytest.fixture
async def read_only_store(postgres_url: str, tenant_on: Tenant) -> AsyncIterator[Store]:
    """A store on ``postgres_url`` (migrated, a tenant in it) whose every session refuses writes."""
    store = open_store(edited(postgres_url, query=(READ_ONLY,)))
    await store.connect()  # (a server that takes no writes cannot be migrated: tenant_on did that)
    try:
        yield store
    finally:
        await store.close()


def client_of(store: Store) -> httpx.AsyncClient:
    app = create_app(Settings(database_url=store.url, max_body_mib=1), store=store)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://promopool.test")


async def test_a_url_of_two_hosts_reaches_the_one_that_answers(postgres_url: str, tenant_on: Tenant) -> None:
    url = dead_then(postgres_url)
    async with connected(url) as store, client_of(store) as client:
        assert (await client.get("/health/ready")).status_code == 200
        claimed = await client.post(f"/v1/pools/{tenant_on.pool.id}/claim", headers=tenant_on.headers)
        assert claimed.status_code == 200, claimed.text
        assert claimed.json()["code"] == "HA000"


async def test_several_hosts_none_writable_is_no_primary(postgres_url: str) -> None:
    """Of several hosts, only the writable primary will do (libpq's default would take a standby)."""
    host = urlsplit(postgres_url).netloc.rpartition("@")[2]
    url = edited(postgres_url, hosts=f"{host},{host}", query=(READ_ONLY, ("password", "s3cret")))
    with pytest.raises(StorageUnavailable) as refused:
        async with connected(url):
            pass
    message = refused.value.message
    assert safe_url(url) in message and "s3cret" not in message, message
    assert "no writable primary among the hosts" in message, message


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("POST", "/v1/pools/{pool}/claim", {}),  # the fast claim path: one statement
        ("POST", "/v1/pools/{pool}/claim", {"Idempotency-Key": "k-1"}),  # the route: a transaction
        ("GET", "/health/ready", {}),
    ],
)
async def test_a_server_that_takes_no_writes_answers_503(
    read_only_store: Store, tenant_on: Tenant, method: str, path: str, headers: dict[str, str]
) -> None:
    async with client_of(read_only_store) as client:
        response = await client.request(
            method, path.format(pool=tenant_on.pool.id), headers=tenant_on.headers | headers
        )
    assert response.status_code == 503, response.text
    body = response.json()
    assert body.get("error", {}).get("code") == "storage_unavailable" or body["status"] == "unavailable"


def test_a_multi_host_url_is_shown_without_its_password() -> None:
    url = "postgresql://promo:s3cret@db1:5432,db2:5433/promo?target_session_attrs=read-write"
    assert safe_url(url) == "postgresql://promo@db1:5432,db2:5433/promo?target_session_attrs=read-write"
    assert Settings(database_url=url).database_url == url


def test_serve_on_a_multi_host_url_starts_and_shows_it_without_its_password(
    postgres_url: str, served: list[Settings]
) -> None:
    url = with_password(dead_then(postgres_url), "s3cret-pw")
    output = cli(url, "serve", "--port", str(free_port()))
    shown = re.search(r"database:\s+(\S+)", output)
    assert shown is not None and "s3cret-pw" not in output, output
    assert shown.group(1) == safe_url(url) and "," in urlsplit(shown.group(1)).netloc
    assert len(served) == 1 and served[0].database_url == url
