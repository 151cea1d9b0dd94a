"""The Rails-style XML writer: escaping, Rails type attributes, characters XML cannot carry."""

from __future__ import annotations

import defusedxml.ElementTree as SafeET

from promopool.formats.xml import RailsXmlWriter, xml_text


def test_an_array_of_records_round_trips_through_a_parser() -> None:
    writer = RailsXmlWriter()
    writer.start_document()
    writer.start_array("promotions")
    first = writer.take()
    writer.record("promotion", {"code": "A<&>\"'", "template_code": None, "usage": 3, "active": True})
    writer.end_array("promotions")
    body = first + writer.take()
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<promotions type="array">')
    root = SafeET.fromstring(body)
    (record,) = list(root)
    assert record.findtext("code") == "A<&>\"'"
    assert record.find("template-code").attrib == {"nil": "true"}  # underscores become dashes, as in Rails
    assert record.find("usage").attrib == {"type": "integer"} and record.findtext("usage") == "3"
    assert record.find("active").attrib == {"type": "boolean"} and record.findtext("active") == "true"


def test_characters_xml_cannot_carry_become_replacement_characters() -> None:
    assert xml_text("ok\tline\nnext\r") == "ok\tline\nnext\r"
    assert xml_text("nul\x00 bell\x07 \ufffe \ud800 é 😀") == "nul\ufffd bell\ufffd \ufffd \ufffd é 😀"
    writer = RailsXmlWriter()
    writer.start_document()
    writer.record("promotion", {"description": "bad\x01char"}, depth=0)
    assert SafeET.fromstring(writer.take()).findtext("description") == "bad\ufffdchar"
