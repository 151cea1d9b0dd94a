"""Hostile input shared by the hostile-input suites (HTTP and dialects): payloads, and a raw HTTP request
that can stall mid-body."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

MB = 1024 * 1024


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">'
    b'<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">'
    b'<!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">]><l>&g;</l>'
)


HUGE = "9" * 5000  # past Python's 4300-digit limit for int()


SQL = [
    "' OR '1'='1",
    "'; DROP TABLE codes; --",
    '" OR ""="',
    "') OR 1=1 --",
    "1; SELECT pg_sleep(10) --",
    "%",
    "_",
    "%_%",
    "\\",
    "\\'",
    "$1",
    "?",
    "$$",
    "$tag$ x $tag$",
    "/* comment */",
    "::text",
    "E'\\x41'",
    "`backtick`",
    "[bracket]",
    "a' || (SELECT api_key FROM api_keys) || '",
]


@dataclass
class RawResponse:
    status: int
    body: bytes
    seconds: float
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


async def stalled_request(port: int, head: bytes, body: bytes = b"", within: float = 30.0) -> RawResponse:
    """Send the request head and ``body`` (maybe only part of what the head announces), then send nothing
    more: the answer must come anyway. Reads the response status and body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = asyncio.get_running_loop().time()
    try:
        writer.write(head)
        if body:
            writer.write(body)
        with contextlib.suppress(ConnectionError):  # the server may close on us once it has answered
            await writer.drain()
        async with asyncio.timeout(within):
            status_line, _, rest = (await reader.readuntil(b"\r\n\r\n")).partition(b"\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in rest.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            payload = await reader.readexactly(length)
        headers = [tuple(line.split(b":", 1)) for line in rest.split(b"\r\n") if b":" in line]
        seconds = asyncio.get_running_loop().time() - started
        return RawResponse(
            int(status_line.split()[1]), payload, seconds, [(k, v.strip()) for k, v in headers]
        )
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def chunked(data: bytes, size: int = MB) -> bytes:
    """``data`` as HTTP chunks, without the final empty chunk: the body never ends."""
    return b"".join(
        b"%x\r\n%s\r\n" % (len(part), part)
        for part in (data[i : i + size] for i in range(0, len(data), size))
    )
