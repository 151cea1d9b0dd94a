"""The request limits around the app (api/limits.py), on plain ASGI: the body timeout holds only while the
body is arriving, and requests beyond max_requests are answered 503 at once. (With a real server and real
sockets: tests/test_serve.py, test_slow_clients_do_not_take_the_server_down.)"""

from __future__ import annotations

import asyncio

from promopool.api.limits import limit_requests
from promopool.api.observe import Message, Receive, Scope, Send

SCOPE: Scope = {"type": "http", "method": "POST", "path": "/x", "headers": []}


class Client:
    """One request's side of the connection: body parts to hand out when asked, and what was sent back."""

    def __init__(self, *parts: bytes | None) -> None:
        self.parts = list(parts)  # None: the client stalls here
        self.sent: list[Message] = []
        self.gone = asyncio.Event()

    async def receive(self) -> Message:
        if not self.parts:  # after the body: wait until the client leaves
            await self.gone.wait()
            return {"type": "http.disconnect"}
        part = self.parts.pop(0)
        if part is None:
            await asyncio.Event().wait()  # never
        return {"type": "http.request", "body": part, "more_body": bool(self.parts)}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int | None:
        return next((m["status"] for m in self.sent if m["type"] == "http.response.start"), None)


async def read_body_then_stream(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the body, answers, then waits for the client to leave (as a streaming answer does)."""
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    message = await receive()
    await send({"type": "http.response.body", "body": message["type"].encode()})


async def test_a_stalled_body_is_answered_408_and_the_app_told_the_client_left() -> None:
    app = limit_requests(read_body_then_stream, max_requests=10, body_timeout=0.1)
    client = Client(b"{", None)
    await asyncio.wait_for(app(SCOPE, client.receive, client.send), 2)
    assert client.status == 408
    assert (b"connection", b"close") in client.sent[0]["headers"]


async def test_after_the_body_a_long_wait_is_not_cut() -> None:
    app = limit_requests(read_body_then_stream, max_requests=10, body_timeout=0.1)
    client = Client(b"{", b"}")
    served = asyncio.create_task(app(SCOPE, client.receive, client.send))
    await asyncio.sleep(0.5)  # five body timeouts while the answer streams
    assert not served.done()
    client.gone.set()
    await asyncio.wait_for(served, 2)
    assert client.status == 200 and client.sent[-1]["body"] == b"http.disconnect"


async def test_beyond_max_requests_the_answer_is_503_at_once() -> None:
    app = limit_requests(read_body_then_stream, max_requests=2, body_timeout=60)
    slow = [Client(b"{", None) for _ in range(2)]
    running = [asyncio.create_task(app(SCOPE, c.receive, c.send)) for c in slow]
    await asyncio.sleep(0.05)
    extra = Client(b"{}")
    await asyncio.wait_for(app(SCOPE, extra.receive, extra.send), 1)
    assert extra.status == 503 and (b"retry-after", b"1") in extra.sent[0]["headers"]
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
    after = Client(b"{}")
    after.gone.set()
    await asyncio.wait_for(app(SCOPE, after.receive, after.send), 1)
    assert after.status == 200  # the slots were given back
