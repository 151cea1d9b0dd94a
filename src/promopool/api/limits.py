"""What a slow or stalled client may hold: the limits on requests that the HTTP server leaves to the app.

The server (granian, set up by ``promopool.serving``) cuts a connection whose headers do not arrive within
``header_timeout_seconds``, which is also how long an idle keep-alive connection stays open. Once a
request's headers are in, it is the app's; this middleware, around every request the fast claim path
(``api/native/fast_claim.py``, which reads no body) passes on:

- a request body that stalls — no part of it arrives for ``body_timeout_seconds`` — is treated as a client
  that went away (the app is told ``http.disconnect``, as it would be), and answered 408 with
  ``Connection: close``; the wait starts anew with each part, so a slow but steady upload is not cut;
- with ``max_requests`` requests in progress in this worker, another is answered 503 with ``Retry-After: 1``
  at once, rather than queue behind them.
"""

from __future__ import annotations

import asyncio

import msgspec

from promopool.api.errors import error_body
from promopool.api.observe import ASGIApp, Message, Receive, Scope, Send

_encode = msgspec.json.Encoder().encode

BUSY = error_body("server_busy", "too many requests in progress; try again in a moment")
STALLED = error_body("request_timeout", "the request body stopped arriving")


async def _answer(
    send: Send, status: int, body: dict[str, object], headers: list[tuple[bytes, bytes]]
) -> None:
    content = _encode(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})


def limit_requests(app: ASGIApp, *, max_requests: int, body_timeout: float) -> ASGIApp:
    in_progress = 0

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal in_progress
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        if in_progress >= max_requests:
            await _answer(send, 503, BUSY, [(b"retry-after", b"1")])
            return
        body_done = stalled = started = False

        async def receive_in_time() -> Message:
            nonlocal body_done, stalled
            if body_done:  # after the body, a receive waits for the client to leave: no limit
                return await receive()
            try:
                async with asyncio.timeout(body_timeout):
                    message = await receive()
            except TimeoutError:
                stalled = True
                return {"type": "http.disconnect"}
            body_done = not message.get("more_body", False)
            return message

        async def send_unless_stalled(message: Message) -> None:
            nonlocal started
            if stalled:  # the app's answer to a client it believes gone: the 408 goes instead
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        in_progress += 1
        try:
            await app(scope, receive_in_time, send_unless_stalled)
        finally:
            in_progress -= 1
        if stalled and not started:
            await _answer(send, 408, STALLED, [(b"connection", b"close")])

    return middleware
