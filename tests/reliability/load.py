"""Claim load for the fault tests: concurrent HTTP clients that record every code they were given.

Half the clients send an Idempotency-Key and retry a failed request with the same key (as a careful client
would): a code they get back as a replay belongs to the same claim, not to a second one. The others send no
key and move on after a failure, so a claim committed just before a crash may never reach them: such a code
is issued but unreceived, which is allowed; a code received twice, or received but not recorded, is not.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx


@dataclass
class Ledger:
    owner: dict[str, str] = field(default_factory=dict)  # code -> the claim (key or request) that got it
    by_key: dict[str, str] = field(default_factory=dict)  # Idempotency-Key -> its code
    duplicates: list[tuple[str, str, str]] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)  # "200", "503 storage_unavailable", ...
    transport_errors: int = 0
    requests: int = 0
    exhausted: bool = False

    @property
    def received(self) -> set[str]:
        return set(self.owner)

    def record(self, code: str, claim: str) -> None:
        earlier = self.owner.setdefault(code, claim)
        if earlier != claim:
            self.duplicates.append((code, earlier, claim))


@dataclass
class ClaimLoad:
    base_urls: list[str]
    api_key: str
    pool_id: int
    clients: int
    ledger: Ledger = field(default_factory=Ledger)
    pause_on_error: float = 0.05
    timeout: float = 60.0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    on_status: Callable[[int, str], None] | None = None

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._client(i)) for i in range(self.clients)]

    async def stop(self) -> Ledger:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        return self.ledger

    async def wait_for_codes(self, more_than: int, within: float = 120.0) -> None:
        """Until the clients hold more than ``more_than`` codes (the server is really serving)."""
        deadline = time.monotonic() + within
        while len(self.ledger.owner) <= more_than:
            assert not self.ledger.exhausted, "the pool ran dry: seed more codes"
            assert time.monotonic() < deadline, f"no progress past {more_than} codes: {self.ledger.statuses}"
            await asyncio.sleep(0.02)

    async def _client(self, index: int) -> None:
        keyed = index % 2 == 0
        base = self.base_urls[index % len(self.base_urls)]
        headers = {"Authorization": f"Bearer {self.api_key}"}
        path = f"/v1/pools/{self.pool_id}/claim"
        ledger = self.ledger
        serial = 0
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=self.timeout) as client:
            while not self._stop.is_set():
                claim = f"c{index}-{serial}"
                ledger.requests += 1
                try:
                    response = await client.post(path, headers={"Idempotency-Key": claim} if keyed else None)
                except httpx.TransportError:
                    ledger.transport_errors += 1
                    if not keyed:
                        serial += 1  # this claim's fate is unknown to us; the next one is a new claim
                    await asyncio.sleep(self.pause_on_error)
                    continue
                if response.status_code == 200:
                    body = response.json()
                    ledger.statuses["200 replayed" if body["replayed"] else "200"] += 1
                    if keyed:
                        known = ledger.by_key.setdefault(claim, body["code"])
                        if known != body["code"]:
                            ledger.duplicates.append((body["code"], f"key {claim} first got {known}", claim))
                    ledger.record(body["code"], claim)
                    serial += 1
                    continue
                error = _error_code(response)
                ledger.statuses[f"{response.status_code} {error}"] += 1
                if self.on_status is not None:
                    self.on_status(response.status_code, error)
                if error == "pool_exhausted":
                    ledger.exhausted = True
                    return
                await asyncio.sleep(self.pause_on_error)


def _error_code(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "(not the native error body)"


async def drain_raw(base_url: str, api_key: str, pool_id: int) -> tuple[list[str], int]:
    """One client on one keep-alive connection, claiming until the pool is exhausted; returns the codes it
    got and 1 for ending on "pool exhausted". Plain HTTP/1.1 over a socket: httpx costs more CPU per request
    than the server does, and on a small machine the clients would be what is measured."""
    host, _, port = base_url.removeprefix("http://").partition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    request = (
        f"POST /v1/pools/{pool_id}/claim HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {api_key}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    got: list[str] = []
    try:
        while True:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            body = json.loads(await reader.readexactly(length))
            if status == 200:
                got.append(body["code"])
                continue
            assert status == 409 and body["error"]["code"] == "pool_exhausted", (status, body)
            return got, 1
    finally:
        writer.close()
        await writer.wait_closed()
