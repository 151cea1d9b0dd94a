"""Hostile input through the vendor dialects' own formats, class by class, on both engines.

The classes of test_hostile_input.py (the native API), sent as a SuperSaaS, PersonaClick or Altcraft client
would send them: every truncation of every JSON body, malformed JSON, XML with entities, NUL bytes and
10 MB values, bytes that are not UTF-8 (bodies, escapes in forms and query strings, headers), huge and
negative numbers. Each must get a clear 4xx in the vendor's own envelope (dialects.py checks it; Altcraft
answers a body over its limit with its documented 400), or where the vendor answers a list's bad items
with 200 and a report (PersonaClick's upload and delete, Altcraft's import), that report with the items
left out; and every table must be as it was. SQL metacharacters: test_hostile_dialects_sql.py; 100 MB
bodies to a real server: test_hostile_dialects_oversized.py.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from promopool import service
from promopool.storage import Store
from tests.conftest import Tenant
from tests.reliability.conftest import Tally
from tests.reliability.dialects import (
    ALTCRAFT,
    SUPERSAAS,
    altcraft_answer,
    altcraft_envelope,
    credentials,
    personaclick_answer,
    supersaas_answer,
)
from tests.reliability.hostile import BILLION_LAUGHS, HUGE, MB
from tests.reliability.integrity import table_dump

pytestmark = [pytest.mark.reliability]

Answer = Callable[[httpx.Response], bool]
JSON = {"Content-Type": "application/json"}
XML = {"Content-Type": "application/xml"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass
class DialectHostile:
    """Sends requests a dialect must refuse (or answer with its documented report), each with the
    tenant's credentials unless told otherwise; the fixture checks afterwards that nothing changed."""

    client: httpx.AsyncClient
    tenant: Tenant
    sent: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        found = credentials(self.tenant)
        self.basic, self.shop, self.bearer = found["supersaas"], found["personaclick"], found["altcraft"]
        self.pool = self.tenant.pool.id

    async def refused(
        self, kind: str, answer: Answer, status: int | set[int], method: str, url: str, **kwargs: Any
    ) -> httpx.Response:
        response = await self.client.request(method, url, **kwargs)
        sent = f"{method} {url[:200]} {str(kwargs)[:200]}"
        where = f"{kind}: {sent} -> {response.status_code} {response.text[:300]}"
        assert response.status_code in ({status} if isinstance(status, int) else status), where
        assert answer(response), where
        self.sent[kind] += 1
        return response

    async def supersaas(self, kind: str, status: int | set[int], method: str, url: str, **kw: Any) -> None:
        kw["headers"] = {**self.basic, **kw.get("headers", {})}
        await self.refused(kind, supersaas_answer, status, method, url, **kw)

    async def personaclick(self, kind: str, status: int | set[int], method: str, url: str, **kw: Any) -> None:
        await self.refused(kind, personaclick_answer, status, method, url, **kw)

    async def altcraft(self, kind: str, status: int | set[int], method: str, **kw: Any) -> httpx.Response:
        kw["headers"] = {**self.bearer, **kw.get("headers", {})}
        url = method if method.startswith(ALTCRAFT) else f"{ALTCRAFT}/{method}"
        return await self.refused(kind, altcraft_answer, status, "POST", url, **kw)

    async def reported(self, kind: str, method: str, url: str, **kwargs: Any) -> Any:
        """The vendor's 200 for a list whose bad items it leaves out: the body, for the caller to check."""
        response = await self.client.request(method, url, **kwargs)
        assert response.status_code == 200, f"{kind}: {url} -> {response.text[:300]}"
        self.sent[kind] += 1
        return response.json()


@pytest.fixture
async def hostile(
    client: httpx.AsyncClient, store: Store, tenant: Tenant, other: Tenant, database_url: str, tally: Tally
) -> AsyncIterator[DialectHostile]:
    # the profile database (id 1) Altcraft's attach and detach name
    await service.create_profile_database(store, account=tenant.account, name="crm")
    before = await table_dump(database_url)
    attacker = DialectHostile(client, tenant)
    yield attacker
    assert await table_dump(database_url) == before, "a refused request changed the database"
    engine = database_url.partition(":")[0]
    for kind, count in attacker.sent.items():
        tally.add(f"hostile dialects ({engine}): {kind}", count)


@dataclass(frozen=True)
class JsonRoute:
    """A dialect route taking a JSON body, with a valid body for it (credentials outside the body)."""

    method: str
    url: str
    headers: dict[str, str]
    body: dict[str, Any]
    answer: Answer
    empty_status: int  # the answer to an empty body: a missing parameter

    def raw(self, **replaced: bytes) -> bytes:
        """The body as JSON text, the named fields' values replaced by raw JSON text."""
        marked = {name: f"@{name}@" if name in replaced else value for name, value in self.body.items()}
        text = json.dumps(marked).encode()
        for name, literal in replaced.items():
            text = text.replace(f'"@{name}@"'.encode(), literal)
        return text

    async def send(self, h: DialectHostile, kind: str, body: bytes, status: int = 400) -> httpx.Response:
        headers = {**JSON, **self.headers}
        return await h.refused(
            kind, self.answer, status, self.method, self.url, content=body, headers=headers
        )


def json_routes(h: DialectHostile) -> list[JsonRoute]:
    item = {"loyalty_id": h.pool, "code": "CODE001"}
    altcraft = {
        "import": {"loyalty_id": h.pool, "codes": ["NEW-1", "NEW-2"]},
        "get": item,
        "activate": item,
        "update": {**item, "expire_date": "2031-01-01T00:00:00Z"},
        "attach": {"db_id": 1, "loyalty_id": h.pool, "email": "ann@example.com"},
        "detach": {"db_id": 1, **item},
        "export_all": {"loyalty_id": h.pool},
    }
    duplicate = {"id": "NEW-1", "template_code": "CODE001"}
    pc = personaclick_answer
    return [
        JsonRoute("POST", SUPERSAAS, h.basic, duplicate, supersaas_answer, 400),
        JsonRoute("POST", "/api/promotions.xml", h.basic, duplicate, supersaas_answer, 400),
        JsonRoute("POST", f"/promo_codes?{h.shop}", {}, {"id": h.pool, "codes": ["NEW-1"]}, pc, 404),
        JsonRoute("DELETE", f"/promo_codes/purge?{h.shop}", {}, {"id": h.pool}, pc, 404),
        JsonRoute(
            "DELETE",
            f"/promo_codes/delete?{h.shop}",
            {},
            {"promo_code_list_id": h.pool, "codes": ["X"]},
            pc,
            404,
        ),
        *[
            JsonRoute("POST", f"{ALTCRAFT}/{m}", h.bearer, body, altcraft_answer, 400)
            for m, body in altcraft.items()
        ],
    ]


async def test_every_truncation_of_every_json_body(hostile: DialectHostile) -> None:
    for route in json_routes(hostile):
        raw = route.raw()
        for cut in range(len(raw)):  # every proper prefix; the empty one lacks every parameter
            await route.send(hostile, "truncated JSON", raw[:cut], route.empty_status if cut == 0 else 400)


DEEP = b"[" * 100_000 + b"]" * 100_000


def malformed(route: JsonRoute) -> list[bytes]:
    """Ways to spoil the route's valid body; its id field carries the bad numbers and strings."""
    raw = route.raw()
    name = next(n for n in ("id", "loyalty_id", "promo_code_list_id") if n in route.body)
    return [
        raw + b" trailing",
        raw[:-1] + b",}",  # a trailing comma
        raw.replace(b'"', b"'"),  # single quotes
        b"\xef\xbb\xbf" + raw,  # a byte-order mark
        *[route.raw(**{name: literal}) for literal in (b"NaN", b"Infinity", b"1e400", b'"\\ud800"')],
        route.raw(**{name: HUGE.encode()}),  # 5,000 digits
        route.raw(**{name: b"-" + HUGE.encode()}),
        b'{"unread": ' + DEEP + b", " + raw[1:],  # nested past any parser's depth, in a field not read
        DEEP,
        *[b"null", b"true", b'"just a string"', b"5"],
    ]


async def test_malformed_json(hostile: DialectHostile) -> None:
    for route in json_routes(hostile):
        for body in malformed(route):
            await route.send(hostile, "malformed JSON", body)


def xml_attacks(secret: Path) -> list[bytes]:
    inner = (
        "<loyalty_id>1</loyalty_id><db_id>1</db_id><email>&x;@b.c</email><code>&x;</code><codes>&x;</codes>"
    )
    big = b"x" * 50_000
    return [
        f'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file://{secret}">]><xml>{inner}</xml>'.encode(),
        f'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY % p SYSTEM "file://{secret}"> %p;]><xml/>'.encode(),
        f'<?xml version="1.0"?><!DOCTYPE xml SYSTEM "file://{secret}"><xml><code>C</code></xml>'.encode(),
        BILLION_LAUGHS.replace(b"<l>&g;</l>", b"<xml><code>&g;</code></xml>"),
        # quadratic blow-up: one 50 kB entity, referred to 1,000 times
        b'<!DOCTYPE xml [<!ENTITY a "' + big + b'">]><xml><code>' + b"&a;" * 1000 + b"</code></xml>",
    ]


async def test_xml_with_entities(hostile: DialectHostile, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    h, kind = hostile, "XML with external entities or entity expansion"
    for document in xml_attacks(secret):
        responses = [
            await h.altcraft(kind, 400, method, content=document, headers={"Content-Type": content_type})
            for content_type in ("application/xml", "text/xml")
            for method in ("import", "get", "attach")
        ]
        # the JSON-only routes refuse it as what it is not
        responses += [
            await h.refused(
                kind, supersaas_answer, 415, "POST", SUPERSAAS, content=document, headers={**XML, **h.basic}
            ),
            await h.refused(
                kind,
                personaclick_answer,
                400,
                "POST",
                f"/promo_codes?{h.shop}",
                content=document,
                headers=XML,
            ),
            await h.altcraft(kind, 400, "get", content=document, headers=JSON),
        ]
        for response in responses:  # nothing read, nothing expanded
            assert b"TOP-SECRET" not in response.content and b"lollol" not in response.content
            assert b"xxxxxxxxxx" not in response.content


TEN_MB = "L" * (10 * MB)
NUL_UPLOADS = [
    b"code\nGOOD-1\nBAD\x00X\n",
    b'code\n"QUOTED\x00NUL"\n',
    b"code\n\x00\n",
    b"\x00code\nGOOD-2\n",
    b"GOOD-3,\x00second column\x00\n\x00,x\n",
]


async def test_nul_bytes_and_ten_megabyte_values(hostile: DialectHostile) -> None:
    h, nul, long = hostile, "NUL bytes", "10 MB values"
    # PersonaClick's upload takes JSON only: a CSV or text file is malformed JSON, NUL or 10 MB line or not
    for body in [*NUL_UPLOADS, b"code\nGOOD-1\n" + TEN_MB.encode() + b"\n", TEN_MB.encode()]:
        for content_type in ("text/csv", "text/plain"):
            url = f"/promo_codes?{h.shop}&id={h.pool}"
            kind = nul if b"\x00" in body else long
            await h.personaclick(kind, 400, "POST", url, content=body, headers={"Content-Type": content_type})
    # in its JSON codes, the vendor's documented answer: 200, invalid codes counted and left out
    for codes, kind in ((["A\x00B", "\x00", "\x00C", " \x00 "], nul), ([TEN_MB], long)):
        done = await h.reported(kind, "POST", f"/promo_codes?{h.shop}", json={"id": h.pool, "codes": codes})
        message = f"0 promo codes added, 0 non-unique skipped, {len(codes)} invalid skipped"
        assert done == {"status": "success", "message": message}
    named = {"promo_code_list_id": h.pool, "codes": ["CODE001\x00", "\x00"]}
    gone = await h.reported(nul, "DELETE", f"/promo_codes/delete?{h.shop}", json=named)
    assert gone["payload"] == {"deleted_count": 0, "not_found_count": 2}
    front_end = f"/promo_codes/fetch?shop_id={h.tenant.account.public_key}&id={h.pool}"
    await h.personaclick(nul, 400, "GET", front_end + "&did=A%00")
    # Altcraft's import reports each code; one of 10 MB makes the body larger than the limit (its 400)
    response = await h.client.post(
        f"{ALTCRAFT}/import", json={"loyalty_id": h.pool, "codes": ["A\x00B", "\x00"]}, headers=h.bearer
    )
    data = altcraft_envelope(response).data
    assert (data["inserted"], [r["error"] for r in data["results"]]) == (0, [400, 400]), data
    h.sent[nul] += 1
    await h.altcraft(long, 400, "import", json={"loyalty_id": h.pool, "codes": [TEN_MB]})
    for value in ("A\x00B", "\x00"):
        await h.altcraft(nul, 400, "get", json={"loyalty_id": h.pool, "code": value})
        await h.altcraft(
            nul, 400, "attach", json={"loyalty_id": h.pool, "db_id": 1, "email": "a@b.c", "code": value}
        )
        await h.altcraft(
            nul, 400, "attach", json={"loyalty_id": h.pool, "db_id": 1, "email": f"a{value}@b.c"}
        )
    xml = b"<xml><loyalty_id>1</loyalty_id><code>A&#0;B</code></xml>"  # not even a character XML can carry
    await h.altcraft(nul, 400, "get", content=xml, headers=XML)
    # SuperSaaS: a new code with a NUL is no code (400), a template with one none of the account's (404)
    for new, template, status in (("A\x00B", "CODE001", 400), ("NEW", "CODE\x00", 404)):
        await h.supersaas(nul, status, "POST", SUPERSAAS, json={"id": new, "template_code": template})
        query = f"?id={quote(new)}&template_code={quote(template)}"
        await h.supersaas(nul, status, "POST", SUPERSAAS + query)
    await h.supersaas(long, 413, "POST", SUPERSAAS, json={"id": TEN_MB, "template_code": "CODE001"})


BAD_UTF8 = [b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80"]  # a bad byte, a bad pair, an encoded surrogate


async def test_not_utf8(hostile: DialectHostile) -> None:
    h, kind = hostile, "not UTF-8"
    item = {"loyalty_id": h.pool, "code": "CODE001"}
    for bad in BAD_UTF8:
        for route in json_routes(h):  # in a JSON string
            names = ("template_code", "codes", "code", "email", "id", "loyalty_id")  # a string field if any
            name = next(n for n in names if n in route.body)
            text = b'"X' + bad + b'"'
            await route.send(h, kind, route.raw(**{name: b"[" + text + b"]" if name == "codes" else text}))
        await h.altcraft(kind, 400, "get", content=b"<xml><code>X" + bad + b"</code></xml>", headers=XML)
        form = b"id=X" + bad + b"&template_code=CODE001"
        await h.supersaas(kind, 400, "POST", SUPERSAAS, content=form, headers=FORM)
        # the same as escapes, in a form or a query string: refused, not read as U+FFFD
        esc = "".join(f"%{byte:02X}" for byte in bad)
        await h.supersaas(
            kind, 400, "POST", SUPERSAAS, content=f"id=X{esc}&template_code=C".encode(), headers=FORM
        )
        for query in (
            f"id=X{esc}&template_code=CODE001",
            f"id={esc}",
            f"promotion_code={esc}",
            f"limit={esc}",
        ):
            await h.supersaas(kind, 400, "POST" if "template" in query else "GET", f"{SUPERSAAS}?{query}")
        await h.refused(
            kind, supersaas_answer, 400, "GET", f"{SUPERSAAS}?account={esc}&api_key={h.tenant.api_key}"
        )
        front_end = f"/promo_codes/fetch?shop_id={h.tenant.account.public_key}&id={h.pool}&did=X{esc}"
        for url in (f"/promo_codes?shop_id={esc}", f"/promo_codes?{h.shop}&include={esc}", front_end):
            await h.personaclick(kind, 400, "GET", url)
        await h.personaclick(kind, 400, "POST", f"/promo_codes?{h.shop}&id={esc}", json={"codes": ["NEW-1"]})
        await h.altcraft(kind, 400, f"{ALTCRAFT}/get?token={esc}", json=item, headers={"Authorization": ""})
        await h.altcraft(kind, 400, f"{ALTCRAFT}/get?format={esc}", json=item)
        await h.altcraft(kind, 404, f"get{esc}", json=item)  # a method name: not one of the vendor's
        # credentials in headers (latin-1 on the wire)
        basic = b"Basic " + base64.b64encode(h.tenant.account.name.encode() + b":" + bad)
        for header in (basic, b"Basic " + bad, b"Bearer " + bad):
            await h.supersaas(kind, 401, "GET", SUPERSAAS, headers={"Authorization": header})
        await h.altcraft(kind, 403, "get", json=item, headers={"Authorization": b"Bearer " + bad})


NOT_WHOLE = ["-1", "-" + "9" * 30, "1.5", "1e3", "0x10", " 5x", "\u0661", "²"]


async def test_huge_and_negative_numbers(hostile: DialectHostile) -> None:
    h, kind = hostile, "huge or negative number"
    # SuperSaaS: limit and offset are whole numbers below 2^63 (the framework reads "1e3" as 1000: lax, but
    # a whole number)
    for value in [*(v for v in NOT_WHOLE if v != "1e3"), str(2**63), str(10**30), HUGE]:
        for name in ("limit", "offset"):
            await h.supersaas(kind, 400, "GET", f"{SUPERSAAS}?{name}={quote(value)}")
    # (a number is taken as its decimal text, 10^30 too; but not one past what the JSON decoder reads)
    for literal in (HUGE.encode(), b"-" + HUGE.encode(), b"-1e400", b"1.5"):
        body = b'{"id": ' + literal + b', "template_code": "CODE001"}'
        await h.supersaas(kind, 400, "POST", SUPERSAAS, content=body, headers=JSON)
    # PersonaClick: offset, limit, include, exclude and list ids are whole numbers; past any list, 404
    for value in NOT_WHOLE:
        for name in ("offset", "limit", "include", "exclude"):
            await h.personaclick(kind, 400, "GET", f"/promo_codes?{h.shop}&{name}={quote(value)}")
        await h.personaclick(kind, 400, "GET", f"/promo_codes/fetch?{h.shop}&id={quote(value)}")
    for value in ("0", str(2**53), str(2**64), HUGE):
        await h.personaclick(kind, 404, "GET", f"/promo_codes/fetch?{h.shop}&id={value}")
        await h.personaclick(
            kind, 404, "POST", f"/promo_codes?{h.shop}", json={"id": value, "codes": ["NEW-1"]}
        )
        await h.personaclick(kind, 404, "DELETE", f"/promo_codes/purge?{h.shop}", json={"id": value})
    await h.personaclick(kind, 404, "POST", f"/promo_codes?{h.shop}", json={"id": -1, "codes": ["NEW-1"]})
    for literal in (b"1.5", b"1e400", HUGE.encode()):
        body = b'{"id": ' + literal + b', "codes": ["NEW-1"]}'
        await h.personaclick(kind, 400, "POST", f"/promo_codes?{h.shop}", content=body, headers=JSON)
    # ... while huge positive offsets and limits are whole numbers: past every list, or all of them
    assert await h.reported(kind, "GET", f"/promo_codes?{h.shop}&offset={HUGE}") == []
    listed = await h.reported(kind, "GET", f"/promo_codes?{h.shop}&limit={HUGE}")
    assert [item["id"] for item in listed] == [h.pool]
    # Altcraft: loyalty_id and db_id are integers from 1 to 2^63 - 1, as numbers or decimal strings
    for value in [-1, 0, 2**63, -(2**63), 10**30, 1.5, True, "1e3", "0x10", "9" * 19, HUGE, *NOT_WHOLE]:
        await h.altcraft(kind, 400, "detach", json={"loyalty_id": value, "db_id": 1, "code": "CODE001"})
        await h.altcraft(kind, 400, "detach", json={"loyalty_id": h.pool, "db_id": value, "code": "CODE001"})
    for literal in (HUGE.encode(), b"1e400", b"-" + HUGE.encode()):
        body = b'{"code": "CODE001", "loyalty_id": ' + literal + b"}"
        await h.altcraft(kind, 400, "get", content=body, headers=JSON)
        xml = b"<xml><code>CODE001</code><loyalty_id>" + literal + b"</loyalty_id></xml>"
        await h.altcraft(kind, 400, "get", content=xml, headers=XML)
