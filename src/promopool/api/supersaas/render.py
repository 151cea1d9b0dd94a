"""Promotions on the wire: JSON and Rails-style XML, one object, a small array, or a long one spooled."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from contextlib import aclosing
from typing import Any

import msgspec
from litestar import Request

from promopool.domain import Code
from promopool.formats.xml import RailsXmlWriter

JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "application/xml; charset=utf-8"
SPOOL_MEMORY = 1 << 20  # a list's rendering beyond this many bytes goes to a temporary file
CHUNK = 1 << 16

Spool = tempfile.SpooledTemporaryFile[bytes]


class Promotion(msgspec.Struct):
    code: str
    description: str
    usage: int  # the code's redemption count

    @classmethod
    def of(cls, code: Code) -> Promotion:
        return cls(code=code.value, description=code.description, usage=code.usage_count)


def wants_xml(request: Request[Any, Any, Any]) -> bool:
    return request.url.path.endswith(".xml")


def _fields(code: Code) -> dict[str, str | int]:
    return {"code": code.value, "description": code.description, "usage": code.usage_count}


def one(code: Code, *, xml: bool) -> bytes:
    if not xml:
        return msgspec.json.encode(Promotion.of(code))
    writer = RailsXmlWriter()
    writer.start_document()
    writer.record("promotion", _fields(code), depth=0)
    return writer.take()


def array(codes: Iterable[Code], *, xml: bool) -> bytes:
    encoder = _Encoder(xml=xml)
    return encoder.begin() + encoder.page(list(codes)) + encoder.end()


async def spooled_array(pages: AsyncGenerator[list[Code], None], *, xml: bool) -> tuple[Spool, int]:
    """The whole array rendered into a spool file, rewound, and its length in bytes.

    Some official clients read a body only when the answer carries a ``Content-Length`` (vendor-apis.md
    §3), so a long list is rendered before its first byte is sent: one page in memory at a time, the spool
    in memory up to ``SPOOL_MEMORY`` and in a temporary file beyond. A database failure therefore gets a
    proper error status at any point of the list. The file writes block, briefly: they go to the page cache.
    """
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115 (read_spool closes it)
    try:
        encoder = _Encoder(xml=xml)
        spool.write(encoder.begin())
        async with aclosing(pages):
            async for page in pages:
                spool.write(encoder.page(page))
        spool.write(encoder.end())
        size = spool.tell()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool, size


async def read_spool(spool: Spool) -> AsyncIterator[bytes]:
    """The spool's content in chunks, closing it at the end (or when the client goes away)."""
    with spool:
        while chunk := spool.read(CHUNK):
            yield chunk


class _Encoder:
    """``[`` items ``,`` … ``]``, or ``<promotions type="array">`` records ``</promotions>``."""

    def __init__(self, *, xml: bool) -> None:
        self._xml = RailsXmlWriter() if xml else None
        self._started = False  # an item was written already (JSON needs a comma before the next)

    def begin(self) -> bytes:
        if self._xml is None:
            return b"["
        self._xml.start_document()
        self._xml.start_array("promotions")
        return self._xml.take()

    def page(self, codes: list[Code]) -> bytes:
        if not codes:
            return b""
        if self._xml is None:
            # msgspec encodes the page as one array; its brackets are dropped to splice it into ours.
            items = msgspec.json.encode([Promotion.of(code) for code in codes])[1:-1]
            chunk = (b"," + items) if self._started else items
            self._started = True
            return chunk
        for code in codes:
            self._xml.record("promotion", _fields(code))
        return self._xml.take()

    def end(self) -> bytes:
        if self._xml is None:
            return b"]"
        self._xml.end_array("promotions")
        return self._xml.take()
