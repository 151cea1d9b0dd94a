"""The Altcraft envelope on the wire: ``{"data", "error", "error_text"}`` in JSON, or the same as XML.

XML: the root is ``<xml>``; the envelope's and every object's fields are child elements in alphabetical
order; an array is its element repeated (``<data>…</data><data>…</data>``); an empty value is ``<name/>``;
booleans are ``true``/``false``. No XML declaration, one top-level field per line, as in the vendor's
examples.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any
from xml.sax.saxutils import escape

import msgspec

from promopool.formats.xml import xml_text

JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "application/xml; charset=utf-8"
SUCCESS = "Successful operation"


def media_type(xml: bool) -> str:
    return XML_TYPE if xml else JSON_TYPE


def _scalar(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return escape(xml_text(str(value)))


def _element(name: str, value: Any) -> str:
    """``value`` as XML under ``name``: a list repeats the element, a mapping nests its fields."""
    if isinstance(value, list):
        return "".join(_element(name, item) for item in value) if value else f"<{name}/>"
    if isinstance(value, Mapping):
        inner = "".join(_element(key, value[key]) for key in sorted(value))
        return f"<{name}>{inner}</{name}>" if inner else f"<{name}/>"
    if value is None or value == "":
        return f"<{name}/>"
    return f"<{name}>{_scalar(value)}</{name}>"


def envelope(data: Any, *, error: int = 0, error_text: str = SUCCESS, xml: bool) -> bytes:
    """The whole response body."""
    if not xml:
        return msgspec.json.encode({"data": data, "error": error, "error_text": error_text})
    lines = [_element("data", data), _element("error", error), _element("error_text", error_text)]
    return ("<xml>\n" + "\n".join(lines) + "\n</xml>\n").encode("utf-8")


async def streamed_envelope(
    first: list[dict[str, Any]], rest: AsyncIterator[list[dict[str, Any]]], *, xml: bool
) -> AsyncIterator[bytes]:
    """A successful envelope whose ``data`` array is written a page at a time (constant memory)."""
    started = False
    yield b"<xml>\n" if xml else b'{"data":['
    async with aclosing(rest):  # type: ignore[type-var]
        pages = _chain(first, rest)
        async for page in pages:
            if not page:
                continue
            if xml:
                yield "".join(_element("data", item) for item in page).encode("utf-8")
            else:
                items = msgspec.json.encode(page)[1:-1]
                yield (b"," + items) if started else items
            started = True
    if xml:
        tail = "" if started else "<data/>"
        yield (tail + "\n<error>0</error>\n<error_text>" + SUCCESS + "</error_text>\n</xml>\n").encode()
    else:
        yield b'],"error":0,"error_text":"' + SUCCESS.encode() + b'"}'


async def _chain(
    first: list[dict[str, Any]], rest: AsyncIterator[list[dict[str, Any]]]
) -> AsyncIterator[list[dict[str, Any]]]:
    yield first
    async for page in rest:
        yield page
