"""Rails ``to_xml``-style documents, written piece by piece so that a long array streams.

Written with the standard library's SAX ``XMLGenerator`` (it escapes text and attributes); nothing here
parses XML. Rails conventions: an array is ``<plural type="array">`` holding one element per record; a
record's fields are child elements, integers marked ``type="integer"``, booleans ``type="boolean"``, None
``nil="true"``; underscores in names become dashes. Characters XML 1.0 cannot carry at all (most C0
controls, lone surrogates, U+FFFE/U+FFFF) are written as U+FFFD rather than producing a document no parser
accepts.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from xml.sax.saxutils import XMLGenerator
from xml.sax.xmlreader import AttributesImpl

Scalar = str | int | bool | None

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
INDENT = "  "


def xml_text(value: str) -> str:
    """``value`` with every character XML 1.0 cannot represent replaced by U+FFFD."""
    return _NOT_XML.sub("\ufffd", value)


def _attrs(**values: str) -> AttributesImpl[str]:
    return AttributesImpl(values)


def _tag(name: str) -> str:
    return name.replace("_", "-")


class RailsXmlWriter:
    """Call the methods in document order; ``take()`` returns what was written since the last call."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._out = XMLGenerator(self._buffer, encoding="utf-8", short_empty_elements=True)

    def take(self) -> bytes:
        data = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return data.encode("utf-8")

    def start_document(self) -> None:
        self._buffer.write('<?xml version="1.0" encoding="UTF-8"?>\n')

    def start_array(self, name: str) -> None:
        self._out.startElement(_tag(name), _attrs(type="array"))
        self._out.ignorableWhitespace("\n")

    def end_array(self, name: str) -> None:
        self._out.endElement(_tag(name))
        self._out.ignorableWhitespace("\n")

    def record(self, name: str, fields: Mapping[str, Scalar], *, depth: int = 1) -> None:
        """One element ``<name>`` with a child element per field, indented at ``depth`` (0 for a root)."""
        pad = INDENT * depth
        self._out.ignorableWhitespace(pad)
        self._out.startElement(_tag(name), _attrs())
        self._out.ignorableWhitespace("\n")
        for key, value in fields.items():
            self._out.ignorableWhitespace(pad + INDENT)
            self._field(_tag(key), value)
            self._out.ignorableWhitespace("\n")
        self._out.ignorableWhitespace(pad)
        self._out.endElement(_tag(name))
        self._out.ignorableWhitespace("\n")

    def _field(self, tag: str, value: Scalar) -> None:
        if value is None:
            self._out.startElement(tag, _attrs(nil="true"))
            self._out.endElement(tag)
            return
        if isinstance(value, bool):
            self._out.startElement(tag, _attrs(type="boolean"))
            text = "true" if value else "false"
        elif isinstance(value, int):
            self._out.startElement(tag, _attrs(type="integer"))
            text = str(value)
        else:
            self._out.startElement(tag, _attrs())
            text = xml_text(value)
        self._out.characters(text)
        self._out.endElement(tag)
