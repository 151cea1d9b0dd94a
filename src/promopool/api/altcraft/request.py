"""Reading an Altcraft request: parameters from a JSON or XML body, the token and the response format.

XML bodies are untrusted: they are parsed with defusedxml only, which refuses any DTD (so no entity can be
expanded and no external file or URL is read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from litestar import Request

from promopool.domain.errors import InvalidInput
from promopool.formats import json

XML_TYPES = ("application/xml", "text/xml")
FORMAT_STATE = "altcraft_xml"  # request.state key: answer in XML (errors too)


@dataclass(frozen=True, slots=True)
class Params:
    """The request's parameters, by name: strings, or lists of strings for repeated XML elements."""

    values: dict[str, Any]

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.values.get(name)
        if isinstance(value, (bool, dict, list)):
            raise InvalidInput(f"{name} must be a string", field=name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise InvalidInput(f"{name} is required", field=name)
            return None
        return str(value)

    def integer(self, name: str) -> int:
        value = self.values.get(name)
        if value is None or value == "":
            raise InvalidInput(f"{name} is required", field=name)
        if isinstance(value, bool):
            raise InvalidInput(f"{name} must be an integer", field=name)
        if isinstance(value, int):
            number = value
        elif isinstance(value, str) and _decimal(value.strip()):
            number = int(value.strip())
        else:
            raise InvalidInput(f"{name} must be an integer", field=name)
        if not 1 <= number < 2**63:
            raise InvalidInput(f"{name} must be a positive integer", field=name)
        return number

    def boolean(self, name: str) -> bool | None:
        value = self.values.get(name)
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in ("true", "1", "false", "0"):
            return value.strip().lower() in ("true", "1")
        raise InvalidInput(f"{name} must be true or false", field=name)

    def texts(self, name: str) -> list[str]:
        value = self.values.get(name)
        if value is None:
            raise InvalidInput(f"{name} is required", field=name)
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(item, str) for item in items):
            raise InvalidInput(f"{name} must be an array of strings", field=name)
        if not items:
            raise InvalidInput(f"{name} must not be empty", field=name)
        return list(items)


def _decimal(text: str) -> bool:
    """ASCII digits, fewer than 19 (no id comes near that). str.isdigit alone also passes other scripts'
    digits and characters such as "²", which int() refuses."""
    return text.isascii() and text.isdigit() and len(text) < 19


def is_xml_body(request: Request[Any, Any, Any]) -> bool:
    return request.content_type[0] in XML_TYPES


def parse_body(body: bytes, *, xml: bool) -> dict[str, Any]:
    """The body's parameters; InvalidInput when it is not a JSON object or an ``<xml>`` document."""
    if not body.strip():
        return {}
    if xml:
        return _parse_xml(body)
    parsed = json.decode(body, object)
    if not isinstance(parsed, dict):
        raise InvalidInput("the JSON body must be an object")
    return parsed


def _parse_xml(body: bytes) -> dict[str, Any]:
    try:
        root = SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise InvalidInput("malformed XML: DTDs and entities are not accepted") from None
    except (ParseError, ValueError) as exc:
        raise InvalidInput(f"malformed XML: {exc}") from None
    except LookupError as exc:  # the declaration names an encoding Python has no text codec for
        raise InvalidInput(f"malformed XML: {exc}") from None
    if root.tag != "xml":
        raise InvalidInput("the XML body's root element must be <xml>")
    values: dict[str, Any] = {}
    for child in root:
        if len(child):
            raise InvalidInput(f"<{child.tag}> must hold text only")
        text = child.text or ""
        if child.tag in values:
            previous = values[child.tag]
            values[child.tag] = [*previous, text] if isinstance(previous, list) else [previous, text]
        elif child.tag == "codes":
            values[child.tag] = [text]
        else:
            values[child.tag] = text
    return values


def wants_xml(value: Any) -> bool:
    if value is None or value == "":
        return False
    if not isinstance(value, str) or value.strip().lower() not in ("json", "xml"):
        raise InvalidInput("format must be json or xml", field="format")
    return value.strip().lower() == "xml"
