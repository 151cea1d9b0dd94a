"""Fixtures: every storage and API test runs on SQLite and on a real PostgreSQL.

PostgreSQL comes from ``PROMOPOOL_TEST_POSTGRES_URL`` (``.ci/run`` points it at the machine's server); without
it, a throwaway server from the ``pgserver`` wheel is started for the session. Each test gets its own schema
(the store's ``?schema=`` URL parameter), dropped afterwards.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from promopool import service, serving
from promopool.api.app import create_app
from promopool.config import Settings
from promopool.domain import Account, Pool, PoolSettings
from promopool.storage import Store, open_store
from promopool.storage.core import Clock, utc_now

POSTGRES_URL_ENV = "PROMOPOOL_TEST_POSTGRES_URL"
ENGINES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    url = os.environ.get(POSTGRES_URL_ENV)
    if url:
        yield url
        return
    import pgserver

    server = pgserver.get_server(Path(tempfile.mkdtemp(prefix="promopool-pg-")), cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def with_schema(url: str, schema: str) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query), ("schema", schema)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


async def drop_schema(server_url: str, schema: str) -> None:
    parts = urlsplit(server_url)
    dsn = urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, ""))
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
async def postgres_url(postgres_server_url: str) -> AsyncIterator[str]:
    """A URL to an empty PostgreSQL database (a fresh schema), dropped afterwards."""
    schema = "t_" + uuid.uuid4().hex[:12]
    yield with_schema(postgres_server_url, schema)
    await drop_schema(postgres_server_url, schema)


@pytest.fixture(params=ENGINES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to an empty database of each engine."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/promopool.db"
    return str(request.getfixturevalue("postgres_url"))


@asynccontextmanager
async def connected(url: str, clock: Clock = utc_now) -> AsyncIterator[Store]:
    the_store = open_store(url, clock=clock)
    await the_store.connect()
    await the_store.migrate()
    try:
        yield the_store
    finally:
        await the_store.close()


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    async with connected(database_url) as the_store:
        yield the_store


@pytest.fixture
async def postgres_store(postgres_url: str) -> AsyncIterator[Store]:
    async with connected(postgres_url) as the_store:
        yield the_store


@dataclass
class Tenant:
    """An account with its API key and one pool, as a client sees it."""

    account: Account
    api_key: str
    pool: Pool

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


async def make_tenant(store: Store, name: str, codes: list[str] | None = None) -> Tenant:
    new = await service.create_account(store, name=name)
    pool = await service.create_pool(store, account=new.account, name=f"{name}-pool", settings=PoolSettings())
    if codes:
        await service.import_codes(store, account=new.account, pool_id=pool.id, values=codes)
    return Tenant(account=new.account, api_key=new.api_key, pool=pool)


@pytest.fixture
async def tenant(store: Store) -> Tenant:
    return await make_tenant(store, "acme", [f"CODE{i:03d}" for i in range(10)])


@pytest.fixture
async def other(store: Store) -> Tenant:
    return await make_tenant(store, "rival", [f"RIVAL{i:03d}" for i in range(3)])


@pytest.fixture
async def client(store: Store, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client on the test's event loop, sharing the test's store (no lifespan needed)."""
    app = create_app(Settings(database_url=database_url, max_body_mib=1), store=store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://promopool.test") as test_client:
        yield test_client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def two_workers(postgres_url: str, tmp_path: Path) -> Iterator[str]:
    """A ``promopool serve --workers 2`` on PostgreSQL (its log in ``tmp_path/server.log``): its URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMOPOOL_", "PROMETHEUS_"))}
    env["PROMOPOOL_DATABASE_URL"] = postgres_url
    env["PROMOPOOL_ACCESS_LOG"] = "true"  # into a file: a pipe nobody reads would fill and stall the server
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "promopool", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture
def two_servers(postgres_url: str) -> Iterator[list[str]]:
    """Two `promopool serve` processes on one PostgreSQL database (SQLite is served by one server)."""
    ports = [free_port(), free_port()]
    env = {**os.environ, "PROMOPOOL_DATABASE_URL": postgres_url}
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", "promopool", "serve", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        deadline = time.monotonic() + 30
        for url, server in zip(urls, servers, strict=True):
            while True:
                assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
                try:
                    if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        yield urls
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=30)
            if server.stderr is not None:
                server.stderr.close()


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """``serving.run`` replaced by a recorder: ``serve`` does all it does before the HTTP server starts."""
    started: list[Settings] = []
    monkeypatch.setattr(serving, "run", started.append)
    return started
