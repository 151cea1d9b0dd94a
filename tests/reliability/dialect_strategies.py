"""Hypothesis strategies for the vendor dialects' requests: every parameter each dialect reads, valid or not.

A route's strategy draws each parameter either from what a well-behaved client sends (the seeded
account's real lists, codes, keys) or from hostile values (control characters, SQL metacharacters, other
scripts' digits, huge and negative numbers, bytes that are not UTF-8, any JSON value), or leaves it out.
Some draws are wholly random; most keep every parameter valid but one (or none), so that the fuzz gets
past authentication and "not found" into the service often enough to matter.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from hypothesis import strategies as st

from tests.reliability.dialects import Call, Value
from tests.reliability.hostile import SQL


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()  # the parameter is not sent at all

HOSTILE_TEXT = [
    *SQL,
    *["", " ", "\x00", "A\x00B", "\t", "\r\n", "\u2028", "\ufeff", "\ufffd", "\x7f", "\x85", "\U0001f600"],
    *["\u0663", "²", "\u0661\u0662", "-1", "0", "+1", " 1 ", "1.5", "1e3", "0x10", "1_000", "0" * 20 + "1"],
    *["9" * 19, "9" * 25, "9" * 5000, "-" + "9" * 5000, str(2**63), str(2**64), "x" * 129, "x" * 10_000],
    *["null", "true", "[]", "{}", "<x/>", "&amp;", "]]>", "%00", "%FF", "../..", "a/b", "a,b", ",,"],
    *[
        "2030-01-01T00:00:00Z",
        "9999-12-31T23:59:59-05:00",
        "0001-01-01T00:00:00+01:00",
        "0203-10-13T14:51:12Z",
    ],
]
hostile_text = st.one_of(
    st.sampled_from(HOSTILE_TEXT),
    st.text(max_size=12),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)
hostile_query: st.SearchStrategy[Value] = st.one_of(hostile_text, st.binary(min_size=1, max_size=6))
json_any = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | hostile_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=4,
)
new_code = st.from_regex(r"NEW-[A-Za-z0-9]{1,10}", fullmatch=True)


@dataclass(frozen=True)
class Seed:
    """What the fuzzed database holds (tests/reliability/test_fuzz_dialects.py seeds it)."""

    name: str  # the owner account's name
    api_key: str
    public_key: str
    pools: list[int]  # the owner's: a large pool with public fetch on, and a spare one
    other_pool: int  # another account's
    other_key: str
    other_public_key: str
    # the large list's codes attached to a profile (the first also activated), and one available; then a
    # spare list's; another account's last (hypothesis draws the first ones of a list more often)
    codes: list[str]
    database: int  # the owner's profile database
    other_database: int


@dataclass(frozen=True)
class Param:
    name: str
    valid: st.SearchStrategy[Any]  # what a well-behaved client sends (ABSENT included for optional ones)
    wild: st.SearchStrategy[Any]


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(ABSENT), strategy)


def choose(draw: st.DrawFn, params: list[Param]) -> dict[str, Any]:
    """Values for ``params``: all random, or all valid but one (the focus), or all valid."""
    # (all valid first: hypothesis leans towards the first choices, and shrinks towards them)
    focus = draw(st.sampled_from(["", "", "", *(p.name for p in params), None]))
    values = {}
    for p in params:
        if focus is None:
            strategy = st.one_of(p.valid, p.wild, st.just(ABSENT))
        elif p.name == focus:
            strategy = st.one_of(p.wild, st.just(ABSENT))
        else:
            strategy = p.valid
        values[p.name] = draw(strategy)
    return values


def present(values: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not ABSENT}


def as_query(values: dict[str, Any]) -> list[tuple[str, Value]]:
    """Query pairs: strings and bytes as they are, anything else (a JSON value) as its JSON text."""
    return [
        (name, value if isinstance(value, str | bytes) else json.dumps(value))
        for name, value in present(values).items()
    ]


@st.composite
def json_bytes(draw: st.DrawFn, fields: dict[str, Any]) -> bytes:
    """``fields`` as a JSON object; now and then cut short, or with a byte that is not UTF-8 in it."""
    text = {k: v.decode("latin-1") if isinstance(v, bytes) else v for k, v in fields.items()}
    raw = json.dumps(text, ensure_ascii=False)  # raw UTF-8, as most clients send it
    raw_bytes = raw.encode("utf-8")
    how = draw(st.sampled_from(["as is"] * 6 + ["cut", "bad byte"]))
    if how == "as is" or not raw_bytes:
        return raw_bytes
    at = draw(st.integers(min_value=0, max_value=len(raw_bytes) - 1))
    return raw_bytes[:at] if how == "cut" else raw_bytes[:at] + b"\xff" + raw_bytes[at:]


def xml_bytes(fields: dict[str, Any]) -> bytes:
    """``fields`` as an Altcraft ``<xml>`` document: a list repeats its element, a mapping nests."""

    def element(name: str, value: Any) -> str:
        if isinstance(value, list):
            return "".join(element(name, item) for item in value)
        if isinstance(value, dict):
            inner = "".join(element(k or "k", v) for k, v in value.items())
            return f"<{name}>{inner}</{name}>"
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        text = "" if value is None else json.dumps(value) if isinstance(value, bool | float) else str(value)
        return f"<{name}>{escape(text)}</{name}>"

    return ("<xml>" + "".join(element(k, v) for k, v in fields.items()) + "</xml>").encode("utf-8")


# -- SuperSaaS ------------------------------------------------------------------------------------------


@st.composite
def supersaas_credentials(draw: st.DrawFn, seed: Seed) -> tuple[dict[str, str], list[tuple[str, Value]]]:
    """(headers, query pairs) in one of the four schemes, mostly right."""
    name, key = seed.name, seed.api_key
    how = draw(st.sampled_from(["basic", "basic", "api_key", "bearer", "checksum", "wild"]))
    if how == "wild":
        name = draw(st.one_of(st.just(seed.name), hostile_text))
        key = draw(st.one_of(st.just(seed.api_key), st.just(seed.other_key), hostile_text))
        how = draw(st.sampled_from(["basic", "api_key", "bearer", "checksum", "header"]))
        if how == "header":  # any latin-1 Authorization header
            value = draw(st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=30))
            return {"Authorization": value}, []
    if how == "basic":
        token = base64.b64encode(f"{name}:{key}".encode()).decode()
        return {"Authorization": f"Basic {token}"}, []
    if how == "bearer":
        return {"Authorization": f"Bearer {key}"}, [("account", name)]
    if how == "checksum":
        return {}, [("account", name), ("checksum", hashlib.md5((name + key).encode()).hexdigest())]
    return {}, [(draw(st.sampled_from(["account", "account_name"])), name), ("api_key", key)]


def _position() -> st.SearchStrategy[Any]:
    return optional(st.integers(min_value=0, max_value=300).map(str))


@st.composite
def supersaas_list(draw: st.DrawFn, seed: Seed) -> Call:
    codes = st.sampled_from(seed.codes)
    values = choose(
        draw,
        [
            Param("id", optional(codes), hostile_query),
            Param("promotion_code", optional(codes), hostile_query),
            Param("limit", _position(), hostile_query),
            Param("offset", _position(), hostile_query),
        ],
    )
    headers, credentials = draw(supersaas_credentials(seed))
    path = draw(st.sampled_from(["/api/promotions.json", "/api/promotions.xml"]))
    return Call("GET", path, query=[*credentials, *as_query(values)], headers=headers)


@st.composite
def supersaas_duplicate(draw: st.DrawFn, seed: Seed) -> Call:
    values = choose(
        draw,
        [
            Param("id", st.one_of(new_code, st.sampled_from(seed.codes)), st.one_of(hostile_query, json_any)),
            Param("template_code", st.sampled_from(seed.codes), st.one_of(hostile_query, json_any)),
        ],
    )
    headers, credentials = draw(supersaas_credentials(seed))
    path = draw(st.sampled_from(["/api/promotions.json", "/api/promotions.xml"]))
    where = draw(st.sampled_from(["query", "json", "form", "other type"]))
    call = Call("POST", path, query=credentials, headers=headers)
    if where == "query":
        call.query += as_query(values)
    elif where == "form":
        call.headers["Content-Type"] = "application/x-www-form-urlencoded"
        call.content = "&".join(f"{k}={quote(v, safe='')}" for k, v in as_query(values)).encode()
    else:
        call.headers["Content-Type"] = (
            "application/json"
            if where == "json"
            else draw(st.sampled_from(["text/plain", "application/xml"]))
        )
        call.content = draw(json_bytes(present(values)))
    return call


# -- PersonaClick ---------------------------------------------------------------------------------------


def _shop(seed: Seed) -> list[Param]:
    return [
        Param("shop_id", st.just(seed.public_key), st.one_of(st.just(seed.other_public_key), hostile_query)),
        Param("shop_secret", st.just(seed.api_key), st.one_of(st.just(seed.other_key), hostile_query)),
    ]


def _list_ids(ids: list[int]) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(ids), st.sampled_from(ids).map(str))


def _ids_text(seed: Seed) -> st.SearchStrategy[Any]:
    ids = [*seed.pools, seed.other_pool]
    return optional(st.lists(st.sampled_from(ids), max_size=3).map(lambda v: ",".join(map(str, v))))


@st.composite
def personaclick_lists(draw: st.DrawFn, seed: Seed) -> Call:
    values = choose(
        draw,
        [
            *_shop(seed),
            Param("active", optional(st.sampled_from(["0", "1", "true", "false"])), hostile_query),
            Param("include", _ids_text(seed), hostile_query),
            Param("exclude", _ids_text(seed), hostile_query),
            Param("offset", _position(), hostile_query),
            Param("limit", _position(), hostile_query),
        ],
    )
    return Call("GET", "/promo_codes", query=as_query(values))


@st.composite
def _body_call(draw: st.DrawFn, method: str, path: str, params: list[Param], body_only: set[str]) -> Call:
    """Each parameter in the query or the JSON body (the body wins), as a client may send them."""
    values = present(choose(draw, params))
    in_query = {
        name: value
        for name, value in values.items()
        if name not in body_only and isinstance(value, str | bytes) and draw(st.booleans())
    }
    in_body = {name: value for name, value in values.items() if name not in in_query}
    content = draw(json_bytes(in_body)) if in_body or draw(st.booleans()) else b""
    headers = {"Content-Type": "application/json"} if content else {}
    return Call(method, path, query=as_query(in_query), headers=headers, content=content)


def _codes(seed: Seed) -> st.SearchStrategy[Any]:
    return st.lists(st.one_of(new_code, st.sampled_from(seed.codes)), max_size=4)


def _wild_codes() -> st.SearchStrategy[Any]:
    return st.one_of(json_any, st.lists(hostile_text, min_size=1, max_size=4))


def personaclick_upload(seed: Seed) -> st.SearchStrategy[Call]:
    params = [
        *_shop(seed),
        Param("id", _list_ids(seed.pools), st.one_of(st.just(seed.other_pool), hostile_text, json_any)),
        Param("codes", _codes(seed), _wild_codes()),
    ]
    return _body_call("POST", "/promo_codes", params, {"codes"})


@st.composite
def personaclick_fetch(draw: st.DrawFn, seed: Seed) -> Call:
    shop_id, shop_secret = _shop(seed)
    values = choose(
        draw,
        [
            shop_id,
            Param("shop_secret", optional(st.just(seed.api_key)), shop_secret.wild),
            Param(
                "id", _list_ids(seed.pools).map(str), st.one_of(st.just(str(seed.other_pool)), hostile_query)
            ),
            Param("did", optional(st.sampled_from(["device-1", "device-2", "d" * 255])), hostile_query),
            Param("sid", optional(st.just("session-1")), hostile_query),
        ],
    )
    return Call("GET", "/promo_codes/fetch", query=as_query(values))


def personaclick_purge(seed: Seed) -> st.SearchStrategy[Call]:
    wild = st.one_of(st.just(seed.other_pool), hostile_text, json_any)
    params = [*_shop(seed), Param("id", _list_ids(seed.pools), wild)]
    return _body_call("DELETE", "/promo_codes/purge", params, set())


def personaclick_delete(seed: Seed) -> st.SearchStrategy[Call]:
    wild = st.one_of(st.just(seed.other_pool), hostile_text, json_any)
    params = [
        *_shop(seed),
        Param("promo_code_list_id", _list_ids(seed.pools), wild),
        Param("codes", _codes(seed), _wild_codes()),
    ]
    return _body_call("DELETE", "/promo_codes/delete", params, {"codes"})


# -- Altcraft -------------------------------------------------------------------------------------------


def _altcraft_params(seed: Seed) -> dict[str, Param]:
    def either(values: list[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(st.sampled_from(values), st.sampled_from([str(v) for v in values]))

    wild = st.one_of(hostile_text, json_any)
    # A profile is named by a matching mode and its identifier, with or without others: drawn together,
    # or "valid" would mostly be a mode without its identifier.
    identities = st.sampled_from(
        [
            {"email": "ann@example.com"},  # matching defaults to email
            {"matching": "phone", "phone": "+7 (900) 000-00-01", "email": "ann@example.com"},
            {"matching": "profile_id", "profile_id": "p-1"},
            {"matching": "custom", "field_name": "card", "field_value": "C-1"},
            {"matching": "EMAIL", "email": " New@Example.com "},
            {"matching": "phone", "phone": "8 900 000 00 02"},
            {},  # none: detach from whoever holds the code (attach refuses it)
        ]
    )
    return {
        p.name: p
        for p in [
            # mostly the large list and its codes, so that most valid pairs name a code of the list
            Param(
                "loyalty_id",
                either(seed.pools[:1] * 3 + seed.pools[1:]),
                st.one_of(st.just(seed.other_pool), wild),
            ),
            Param("db_id", either([seed.database]), st.one_of(st.just(seed.other_database), wild)),
            Param(
                "code",
                st.one_of(*[st.sampled_from(seed.codes[:-2])] * 2, st.sampled_from(seed.codes), new_code),
                wild,
            ),
            Param("codes", _codes(seed), _wild_codes()),
            Param("identity", identities, st.fixed_dictionaries({}, optional=dict.fromkeys(IDENTITY, wild))),
            Param(
                "activated",
                optional(st.sampled_from([True, False, "true", "0"])),
                wild,
            ),
            Param(
                "expire_date",
                # (left out only when the focus is elsewhere: update needs it or activated)
                st.sampled_from(["2031-01-01T00:00:00Z", "2031-06-01T12:00:00+03:00"]),
                wild,
            ),
        ]
    }


ALTCRAFT_METHODS = {
    "import": ["loyalty_id", "codes"],
    "get": ["code", "loyalty_id"],
    "activate": ["code", "loyalty_id"],
    "update": ["code", "loyalty_id", "activated", "expire_date"],
    "attach": ["db_id", "loyalty_id", "code", "identity"],
    "detach": ["db_id", "loyalty_id", "code", "identity"],
    "export_all": ["loyalty_id"],
}
IDENTITY = ["matching", "email", "phone", "profile_id", "field_name", "field_value"]


@st.composite
def altcraft_call(draw: st.DrawFn, seed: Seed, method: str | None) -> Call:
    """A call of ``method`` (None: a method name from the hostile values) with its parameters, the token
    and the format each where the vendor allows them, in a JSON or an XML body."""
    known = _altcraft_params(seed)
    chosen = [known[name] for name in ALTCRAFT_METHODS.get(method or "", ["loyalty_id", "code"])]
    token = Param("token", st.just(seed.api_key), st.one_of(st.just(seed.other_key), hostile_text))
    fmt = Param("format", optional(st.sampled_from(["json", "xml", "XML "])), hostile_text)
    values = present(choose(draw, [*chosen, token, fmt]))
    values |= values.pop("identity", {})  # its fields are parameters of their own
    if method is None:  # any one path segment (an empty one, or a "/", is another route altogether)
        method = draw(hostile_text.filter(lambda m: m not in ("", ".", "..") and "/" not in m))
    call = Call("POST", "/api/v1.1/promocodes/" + quote(method, safe=""))
    for name, where in (("token", ["body", "header", "query"]), ("format", ["body", "query"])):
        if name in values and isinstance(values[name], str):
            place = draw(st.sampled_from(where))
            if place == "header":
                call.headers["Authorization"] = "Bearer " + values.pop(name)
            elif place == "query":
                call.query.append((name, values.pop(name)))
    as_xml = draw(st.booleans())
    call.headers["Content-Type"] = draw(
        st.sampled_from(["application/xml", "text/xml"] if as_xml else ["application/json", "text/plain"])
    )
    call.content = xml_bytes(values) if as_xml else draw(json_bytes(values))
    return call


Route = Callable[[Seed], st.SearchStrategy[Call]]
