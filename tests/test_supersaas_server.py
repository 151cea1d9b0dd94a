"""The SuperSaaS dialect on a real server (granian, HTTP/1.1), read off a raw socket: every answer carries a
``Content-Length`` equal to its body, long lists included, since some official clients (the Node.js one)
read a body only when it is there (vendor-apis.md §3). The in-process client cannot show the framing."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from promopool.api.supersaas import render
from promopool.storage import Store
from tests.conftest import Tenant, make_tenant
from tests.helpers import xml_array
from tests.reliability.servers import Server

pytestmark = pytest.mark.slow

# About 1.2 MB of JSON and 2.8 MB of XML: past the spool's memory part, so the list goes out from its file.
LONG = 25_000
CODES = [f"P{i:07d}" for i in range(LONG)]


class Served:
    def __init__(self, server: Server, tenant: Tenant) -> None:
        self.server = server
        self.tenant = tenant
        credentials = base64.b64encode(f"acme:{tenant.api_key}".encode()).decode()
        self.auth = f"Basic {credentials}"


@pytest.fixture
async def served(store: Store, database_url: str, tmp_path: Path) -> AsyncIterator[Served]:
    tenant = await make_tenant(store, "acme", CODES)
    with Server(database_url, tmp_path / "server.log") as server:
        await asyncio.to_thread(server.start)
        yield Served(server, tenant)


def exchange(port: int, request: str) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request on a fresh connection, read to its close: status, headers (lower-cased), body."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
        conn.sendall(request.encode())
        received = bytearray()
        while chunk := conn.recv(1 << 16):
            received += chunk
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)}
    return int(status_line.split()[1]), headers, body


def answer(served: Served, method: str, target: str, auth: str | None = None) -> tuple[int, bytes]:
    """The answer's status and body, after checking it is framed by a Content-Length, not chunked."""
    request = f"{method} {target} HTTP/1.1\r\nHost: promopool.test\r\nAccept: application/json\r\n"
    request += f"Authorization: {auth or served.auth}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    status, headers, body = exchange(served.server.port, request)
    assert "transfer-encoding" not in headers, (target, headers)
    assert int(headers["content-length"]) == len(body), (target, headers, len(body))
    return status, body


async def test_every_answer_has_its_content_length(served: Served) -> None:
    status, body = await asyncio.to_thread(answer, served, "GET", "/api/promotions.json")
    assert status == 200 and len(body) > render.SPOOL_MEMORY
    assert [p["code"] for p in json.loads(body)] == CODES
    status, body = await asyncio.to_thread(answer, served, "GET", "/api/promotions.xml")
    assert status == 200 and len(body) > render.SPOOL_MEMORY
    assert [p["code"] for p in xml_array(body)] == CODES
    short = [
        ("GET", "/api/promotions.json?limit=1001&offset=3", 200),  # more than one page, in memory
        ("GET", "/api/promotions.xml?limit=5", 200),
        ("GET", "/api/promotions.json?id=P0000007", 200),
        ("GET", "/api/promotions.xml?promotion_code=P0000007", 200),
        ("GET", "/api/promotions.json?id=NOSUCH", 404),
        ("POST", "/api/promotions.json?id=NEW1&template_code=P0000007", 201),
        ("PUT", "/api/promotions.json", 405),
    ]
    for method, target, expected in short:
        status, body = await asyncio.to_thread(answer, served, method, target)
        assert status == expected, (target, body)
    status, _ = await asyncio.to_thread(answer, served, "GET", "/api/promotions.json", "Basic Og==")
    assert status == 401


NODE_LIST = """
const { Client } = require("supersaas-api-client");
const client = new Client({ accountName: "acme", api_key: process.env.KEY, host: process.env.HOST });
client.promotions.list().then(
  (list) => console.log(JSON.stringify(list.map((p) => p.code))),
  (err) => { console.error(String(err)); process.exit(1); },
);
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
async def test_the_vendors_node_client_lists_every_promotion(served: Served) -> None:
    # The vendor's client from npm (supersaas-api-client), installed by hand: the suite needs no network.
    node_path = os.environ.get("PROMOPOOL_TEST_NODE_PATH")
    if not node_path or not (Path(node_path) / "supersaas-api-client").is_dir():
        pytest.skip("set PROMOPOOL_TEST_NODE_PATH to a node_modules holding supersaas-api-client")
    env = os.environ | {"NODE_PATH": node_path, "KEY": served.tenant.api_key, "HOST": served.server.url}
    done = await asyncio.to_thread(
        subprocess.run, ["node", "-e", NODE_LIST], env=env, capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout) == CODES
