"""100 MB bodies to each vendor dialect route that takes a body, on a real server, on both engines.

As for the native API (test_hostile_input.py): announced by Content-Length with nothing sent, or chunked
past the limit and then stalled, the answer must come before the body is read, in the vendor's envelope:
413 (Altcraft: its documented 400); without credentials the same, but for SuperSaaS, which checks them
before it reads a body (401). Nothing changes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.conftest import connected, make_tenant
from tests.reliability.conftest import Tally
from tests.reliability.dialects import (
    ALTCRAFT,
    altcraft_answer,
    credentials,
    personaclick_answer,
    supersaas_answer,
)
from tests.reliability.hostile import MB, RawResponse, chunked, stalled_request
from tests.reliability.integrity import table_dump
from tests.reliability.servers import Server

pytestmark = [pytest.mark.reliability]

HUNDRED_MB = 100 * MB
LIMIT_MIB = 1  # every JSON body; PersonaClick's upload has its own limit, set to twice that
UPLOAD_LIMIT_MIB = 2


def request_head(method: str, path: str, headers: dict[str, str], announced: int | str | None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    lines.append(f"Content-Length: {announced}" if announced is not None else "Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def as_response(raw: RawResponse, method: str, path: str) -> httpx.Response:
    """The raw answer as an httpx response, for the dialects' answer checks."""
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw.headers]
    request = httpx.Request(method, "http://promopool.test" + path)
    return httpx.Response(raw.status, headers=headers, content=raw.body, request=request)


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
async def test_oversized_bodies_are_refused_before_they_are_sent(
    fresh_url: str, tmp_path: Path, tally: Tally
) -> None:
    async with connected(fresh_url) as store:
        tenant = await make_tenant(store, "big", [f"CODE{i:03d}" for i in range(10)])
    before = await table_dump(fresh_url)
    found = credentials(tenant)
    basic, shop, bearer = found["supersaas"], found["personaclick"], found["altcraft"]
    json, form, xml = "application/json", "application/x-www-form-urlencoded", "application/xml"
    # (method, path, credentials, content type, limit in MiB, the answer, the answer without credentials)
    cases = [
        ("POST", "/api/promotions.json", basic, json, LIMIT_MIB, supersaas_answer, 413, 401),
        ("POST", "/api/promotions.xml", basic, form, LIMIT_MIB, supersaas_answer, 413, 401),
        ("POST", "/promo_codes?" + shop, {}, json, UPLOAD_LIMIT_MIB, personaclick_answer, 413, 413),
        ("DELETE", "/promo_codes/purge?" + shop, {}, json, LIMIT_MIB, personaclick_answer, 413, 413),
        ("DELETE", "/promo_codes/delete?" + shop, {}, json, LIMIT_MIB, personaclick_answer, 413, 413),
        ("POST", f"{ALTCRAFT}/import", bearer, json, LIMIT_MIB, altcraft_answer, 400, 400),
        ("POST", f"{ALTCRAFT}/attach", bearer, xml, LIMIT_MIB, altcraft_answer, 400, 400),
    ]
    server = Server(
        fresh_url,
        tmp_path / "server.log",
        max_body_mib=str(LIMIT_MIB),
        personaclick_max_body_mib=str(UPLOAD_LIMIT_MIB),
    )
    sent = 0
    with server:
        await asyncio.to_thread(server.start)
        for method, path, given, content_type, limit, answer, status, anonymous in cases:
            headers = {**given, "Content-Type": content_type}
            bare = path.partition("?")[0]
            attempts = [
                # 100 MB announced, not one byte sent
                (request_head(method, path, headers, HUNDRED_MB), b"", status),
                # no length announced: past the limit (by chunks), then the body stalls
                (request_head(method, path, headers, None), chunked(b"A" * (limit + 1) * MB), status),
                # and without credentials, the refusal (whichever) does not wait for the body either
                (request_head(method, bare, {"Content-Type": content_type}, HUNDRED_MB), b"", anonymous),
            ]
            for head, body, expected in attempts:
                raw = await stalled_request(server.port, head, body)
                response = as_response(raw, method, path)
                assert raw.status == expected and answer(response), (method, path, raw)
                sent += 1
        # a length no integer type holds, or a negative one: the HTTP server refuses the request itself (the
        # app, which gives every answer a request id, never sees it)
        lengths = 0
        for announced in ("9" * 30, "9" * 5000, "-1"):
            raw = await stalled_request(
                server.port, request_head("POST", f"{ALTCRAFT}/import", bearer, announced)
            )
            assert raw.status == 400 and b"x-request-id" not in dict(raw.headers), raw
            lengths += 1
        assert "unhandled error" not in server.log()
    assert await table_dump(fresh_url) == before
    engine = fresh_url.partition(":")[0]
    tally.add(f"hostile dialects ({engine}): 100 MB body to a real server (answered before the body)", sent)
    tally.add(f"hostile dialects ({engine}): huge or negative Content-Length to a real server", lengths)
