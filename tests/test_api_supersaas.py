"""The SuperSaaS Promotion API (vendor-apis.md §3) through an in-process client, on both engines."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import defusedxml.ElementTree as SafeET
import httpx
import pytest

from promopool import service
from promopool.api.supersaas import render
from promopool.domain import PoolSettings
from promopool.storage import Store
from tests.conftest import Tenant
from tests.helpers import snapshot, xml_array, xml_promotion
from tests.promotion_fixtures import set_code_fields
from tests.supersaas_client import OfficialStyleClient, Promotion, SuperSaasError

Client = httpx.AsyncClient
JSON_URL = "/api/promotions.json"
XML_URL = "/api/promotions.xml"
TEN = [f"CODE{i:03d}" for i in range(10)]


def md5_hex(text: str) -> str:
    """The vendor's checksum, computed here independently of promopool's code."""
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def basic(name: str, key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{key}".encode()).decode()}


def assert_vendor_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"errors"} and len(body["errors"]) == 1
    error = body["errors"][0]
    assert set(error) == {"code", "title"} and error["code"] == code
    assert isinstance(error["title"], str) and error["title"]
    return str(error["title"])


# -- the official clients -------------------------------------------------------------------------------


async def test_official_style_client_lists_looks_up_and_duplicates(
    client: Client, store: Store, tenant: Tenant
) -> None:
    await set_code_fields(store, pool_id=tenant.pool.id, value="CODE003", description="Ten off", usage=4)
    sss = OfficialStyleClient(client, "acme", tenant.api_key)

    listed = await sss.list()
    assert [p.code for p in listed] == TEN
    assert listed[3] == Promotion("CODE003", "Ten off", 4)
    assert listed[0] == Promotion("CODE000", "", 0)
    assert [p.code for p in await sss.list(limit=3, offset=2)] == ["CODE002", "CODE003", "CODE004"]
    assert [p.code for p in await sss.list(offset=8)] == ["CODE008", "CODE009"]
    assert await sss.list(offset=10) == []

    assert await sss.promotion("CODE003") == [Promotion("CODE003", "Ten off", 4)]

    location = await sss.duplicate("SPRING24", "CODE003")
    assert location == "http://promopool.test/api/promotions.json?id=SPRING24"
    assert await sss.promotion("SPRING24") == [Promotion("SPRING24", "Ten off", 0)]
    followed = await client.get(location, headers=basic("acme", tenant.api_key))
    assert followed.json() == {"code": "SPRING24", "description": "Ten off", "usage": 0}
    assert len(await sss.list()) == 11

    with pytest.raises(SuperSaasError) as missing:
        await sss.promotion("NOPE1")
    assert missing.value.status == 404 and missing.value.errors[0]["code"] == "code_not_found"
    with pytest.raises(SuperSaasError) as taken:
        await sss.duplicate("SPRING24", "CODE003")
    assert taken.value.status == 422 and taken.value.errors[0]["code"] == "already_exists"
    with pytest.raises(SuperSaasError) as no_template:
        await sss.duplicate("SUMMER24", "NOPE1")
    assert no_template.value.status == 404


async def test_official_style_client_with_a_wrong_key_gets_401(client: Client, tenant: Tenant) -> None:
    with pytest.raises(SuperSaasError) as refused:
        await OfficialStyleClient(client, "acme", tenant.api_key + "x").list()
    assert refused.value.status == 401 and refused.value.errors[0]["code"] == "unauthenticated"


async def test_official_style_client_lists_past_one_page(
    client: Client, store: Store, tenant: Tenant
) -> None:
    # The Node.js client reads a body only with a Content-Length: list(1001) failed on a streamed answer.
    expected = await spread_codes(store, tenant, 1_500)
    sss = OfficialStyleClient(client, "acme", tenant.api_key)
    assert [p.code for p in await sss.list(1000)] == expected[:1000]
    assert [p.code for p in await sss.list(1001)] == expected[:1001]
    assert [p.code for p in await sss.list()] == expected


# -- the documented query-string forms -----------------------------------------------------------------


async def test_documented_query_string_forms(client: Client, store: Store, tenant: Tenant) -> None:
    await set_code_fields(store, pool_id=tenant.pool.id, value="CODE001", description="One & <only>", usage=2)
    key = tenant.api_key
    one = {"code": "CODE001", "description": "One & <only>", "usage": 2}

    r = await client.get(f"{JSON_URL}?account_name=acme&api_key={key}")
    assert r.status_code == 200 and [p["code"] for p in r.json()] == TEN
    r = await client.get(f"{JSON_URL}?account=acme&api_key={key}&limit=2&offset=1")
    assert [p["code"] for p in r.json()] == ["CODE001", "CODE002"]
    r = await client.get(f"{JSON_URL}?id=CODE001&account=acme&api_key={key}")
    assert r.json() == one
    r = await client.get(f"{JSON_URL}?promotion_code=CODE001&account=acme&api_key={key}")
    assert r.json() == [one]

    r = await client.get(f"{XML_URL}?account_name=acme&api_key={key}&limit=2&offset=1")
    assert r.headers["content-type"].startswith("application/xml")
    assert xml_array(r.content) == [one, {"code": "CODE002", "description": "", "usage": 0}]
    r = await client.get(f"{XML_URL}?id=CODE001&account=acme&api_key={key}")
    assert r.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert b"One &amp; &lt;only&gt;" in r.content
    root = SafeET.fromstring(r.content)
    assert root.tag == "promotion" and xml_promotion(root) == one
    r = await client.get(f"{XML_URL}?promotion_code=CODE001&account=acme&api_key={key}")
    assert xml_array(r.content) == [one]

    # duplicate with everything in the query string (the docs, the Node client)
    r = await client.post(f"{JSON_URL}?id=NODE1&template_code=CODE001&account=acme&api_key={key}")
    assert r.status_code == 201, r.text
    assert r.headers["location"] == "http://promopool.test/api/promotions.json?id=NODE1"
    assert r.json() == {**one, "code": "NODE1", "usage": 0}
    r = await client.post(f"{XML_URL}?id=XML1&template_code=CODE001&account=acme&api_key={key}")
    assert r.status_code == 201 and r.headers["location"].endswith("/api/promotions.xml?id=XML1")
    assert xml_promotion(SafeET.fromstring(r.content))["code"] == "XML1"
    # a form body, as curl -d sends it
    r = await client.post(
        f"{JSON_URL}?account=acme&api_key={key}", data={"id": "FORM1", "template_code": "CODE001"}
    )
    assert r.status_code == 201 and r.json()["code"] == "FORM1"
    # the body wins over the query string
    r = await client.post(
        f"{JSON_URL}?id=IGNORED&template_code=CODE001", json={"id": "BODY1"}, headers=basic("acme", key)
    )
    assert r.status_code == 201 and r.json()["code"] == "BODY1"
    # a code the official clients would refuse client-side is still a valid promopool code
    r = await client.post(f"{JSON_URL}?id=with-dash%20x&template_code=CODE001", headers=basic("acme", key))
    assert r.status_code == 201 and r.headers["location"].endswith("?id=with-dash%20x")
    assert (await client.get(r.headers["location"], headers=basic("acme", key))).json()[
        "code"
    ] == "with-dash x"


async def test_lookup_of_a_value_in_two_pools_answers_the_lowest_pool(
    client: Client, store: Store, tenant: Tenant
) -> None:
    later = await service.create_pool(store, account=tenant.account, name="later", settings=PoolSettings())
    await service.import_codes(store, account=tenant.account, pool_id=later.id, values=["CODE005"])
    await set_code_fields(store, pool_id=tenant.pool.id, value="CODE005", description="first pool")
    await set_code_fields(store, pool_id=later.id, value="CODE005", description="later pool")
    h = basic("acme", tenant.api_key)
    assert (await client.get(f"{JSON_URL}?id=CODE005", headers=h)).json()["description"] == "first pool"
    listed = (await client.get(JSON_URL, headers=h)).json()
    assert [p["description"] for p in listed if p["code"] == "CODE005"] == ["first pool", "later pool"]
    # a duplicate of it copies (and lands in) the pool a lookup answers
    r = await client.post(JSON_URL, json={"id": "COPY5", "template_code": "CODE005"}, headers=h)
    assert r.json()["description"] == "first pool"
    assert (
        await service.find_promotion(store, account=tenant.account, value="COPY5")
    ).pool_id == tenant.pool.id


# -- every auth scheme, passing and failing ------------------------------------------------------------


def scheme_request(scheme: str, name: str | None, key: str) -> dict[str, Any]:
    """Request arguments presenting ``name`` and ``key`` in ``scheme``."""
    params: dict[str, str] = {} if name is None else {"account": name}
    if scheme == "basic":
        return {"headers": basic(name or "", key)}
    if scheme == "query":
        return {"params": {**params, "api_key": key}}
    if scheme == "query_account_name":
        return {"params": {"api_key": key} | ({} if name is None else {"account_name": name})}
    if scheme == "bearer":
        return {"params": params, "headers": {"Authorization": f"Bearer {key}"}}
    assert scheme == "checksum"
    return {"params": {**params, "checksum": md5_hex((name or "") + key)}}


SCHEMES = ["basic", "query", "query_account_name", "bearer", "checksum"]


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_each_auth_scheme_passes(client: Client, tenant: Tenant, other: Tenant, scheme: str) -> None:
    r = await client.get(JSON_URL, **scheme_request(scheme, "acme", tenant.api_key))
    assert r.status_code == 200, r.text
    assert [p["code"] for p in r.json()] == TEN
    r = await client.get(XML_URL, **scheme_request(scheme, "rival", other.api_key))
    assert [p["code"] for p in xml_array(r.content)] == ["RIVAL000", "RIVAL001", "RIVAL002"]
    r = await client.post(
        JSON_URL,
        json={"id": f"NEW{scheme}", "template_code": "CODE000"},
        **scheme_request(scheme, "acme", tenant.api_key),
    )
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_each_auth_scheme_fails(
    client: Client, store: Store, tenant: Tenant, other: Tenant, scheme: str
) -> None:
    key = tenant.api_key
    failing = [
        scheme_request(scheme, "acme", key + "x"),  # a wrong key
        scheme_request(scheme, "acme", other.api_key),  # another account's key
        scheme_request(scheme, "rival", key),  # the key of a different account than the one named
        scheme_request(scheme, "nobody", key),  # an unknown account
    ]
    if scheme != "basic":
        failing.append(scheme_request(scheme, None, key))  # no account named
    before = await snapshot(store, tenant)
    for arguments in failing:
        r = await client.get(JSON_URL, **arguments)
        assert_vendor_error(r, 401, "unauthenticated")
        assert r.headers["www-authenticate"] == 'Basic realm="promopool"'
        r = await client.post(JSON_URL, json={"id": "INTRUDER", "template_code": "CODE000"}, **arguments)
        assert_vendor_error(r, 401, "unauthenticated")
    assert await snapshot(store, tenant) == before


@pytest.mark.parametrize(
    "arguments",
    [
        {},
        {"params": {"account": "acme"}},
        {"headers": {"Authorization": "Basic !!not-base64"}},
        {"headers": {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()}},
        {"headers": {"Authorization": "Digest username=acme"}},
        {"headers": {"Authorization": "Bearer "}, "params": {"account": "acme"}},
        {"params": {"account": "acme", "checksum": ""}},
        {"params": {"account": "acme\x00", "checksum": "0" * 32}},
    ],
)
async def test_missing_or_malformed_credentials_get_401(
    client: Client, tenant: Tenant, arguments: dict[str, Any]
) -> None:
    assert_vendor_error(await client.get(JSON_URL, **arguments), 401, "unauthenticated")


async def test_checksum_details(client: Client, store: Store, tenant: Tenant) -> None:
    checksum = md5_hex("acme" + tenant.api_key)
    assert (await client.get(f"{JSON_URL}?account=acme&checksum={checksum.upper()}")).status_code == 200
    # the vendor's formula exactly: no separator, MD5, hex
    for wrong in (md5_hex(f"acme:{tenant.api_key}"), md5_hex(tenant.api_key + "acme"), checksum[:-1]):
        assert_vendor_error(
            await client.get(f"{JSON_URL}?account=acme&checksum={wrong}"), 401, "unauthenticated"
        )
    # a key created later gets its checksum too
    second = await service.create_api_key(store, account=tenant.account)
    r = await client.get(f"{JSON_URL}?account=acme&checksum={md5_hex('acme' + second)}")
    assert r.status_code == 200


async def test_basic_and_a_query_account_must_agree(client: Client, tenant: Tenant) -> None:
    h = basic("acme", tenant.api_key)
    assert (await client.get(f"{JSON_URL}?account=acme", headers=h)).status_code == 200
    assert_vendor_error(await client.get(f"{JSON_URL}?account=rival", headers=h), 401, "unauthenticated")


# -- errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status", "code"),
    [
        ("GET", f"{JSON_URL}?id=NOPE", {}, 404, "code_not_found"),
        ("GET", f"{JSON_URL}?promotion_code=NOPE", {}, 404, "code_not_found"),
        ("GET", f"{JSON_URL}?id=RIVAL000", {}, 404, "code_not_found"),
        ("GET", f"{JSON_URL}?id=", {}, 404, "code_not_found"),
        ("GET", f"{JSON_URL}?id=CODE001&promotion_code=CODE002", {}, 400, "invalid_input"),
        ("GET", f"{JSON_URL}?limit=-1", {}, 400, "invalid_input"),
        ("GET", f"{JSON_URL}?limit=lots", {}, 400, "invalid_input"),
        ("GET", f"{JSON_URL}?offset={10**30}", {}, 400, "invalid_input"),
        ("POST", JSON_URL, {"json": {"template_code": "CODE000"}}, 400, "invalid_input"),
        ("POST", JSON_URL, {"json": {"id": "N1"}}, 400, "invalid_input"),
        (
            "POST",
            JSON_URL,
            {"json": {"id": "bad\u0000code", "template_code": "CODE000"}},
            400,
            "invalid_code",
        ),
        ("POST", JSON_URL, {"json": {"id": "x" * 129, "template_code": "CODE000"}}, 400, "invalid_code"),
        ("POST", JSON_URL, {"json": {"id": "  ", "template_code": "CODE000"}}, 400, "invalid_code"),
        ("POST", JSON_URL, {"json": {"id": "N1", "template_code": "NOPE"}}, 404, "code_not_found"),
        ("POST", JSON_URL, {"json": {"id": "N1", "template_code": "RIVAL000"}}, 404, "code_not_found"),
        ("POST", JSON_URL, {"json": {"id": "CODE001", "template_code": "CODE000"}}, 422, "already_exists"),
        ("POST", JSON_URL, {"json": ["N1", "CODE000"]}, 400, "invalid_input"),
        ("POST", JSON_URL, {"json": {"id": ["N1"], "template_code": "CODE000"}}, 400, "invalid_input"),
        (
            "POST",
            JSON_URL,
            {"content": b'{"id": "N1", ', "headers": {"content-type": "application/json"}},
            400,
            "invalid_input",
        ),
        (
            "POST",
            JSON_URL,
            {"content": b"id=N1", "headers": {"content-type": "text/plain"}},
            415,
            "unsupported_media_type",
        ),
        ("POST", JSON_URL, {"content": b"x" * (2 * 1024 * 1024)}, 413, "payload_too_large"),
        ("DELETE", f"{JSON_URL}?id=CODE001", {}, 405, "method_not_allowed"),
        ("PUT", JSON_URL, {"json": {"id": "CODE001"}}, 405, "method_not_allowed"),
    ],
)
async def test_errors_in_the_vendor_shape_change_nothing(
    client: Client,
    store: Store,
    tenant: Tenant,
    other: Tenant,
    method: str,
    url: str,
    kwargs: dict[str, Any],
    status: int,
    code: str,
) -> None:
    before = await snapshot(store, tenant), await snapshot(store, other)
    extra_headers = kwargs.get("headers", {})
    headers = {**basic("acme", tenant.api_key), **extra_headers}
    rest = {k: v for k, v in kwargs.items() if k != "headers"}
    response = await client.request(method, url, headers=headers, **rest)
    assert_vendor_error(response, status, code)
    if status == 405:
        assert response.headers["allow"] == "GET, POST"
    assert (await snapshot(store, tenant), await snapshot(store, other)) == before


async def test_titles_never_echo_credentials(client: Client, tenant: Tenant) -> None:
    r = await client.get(f"{JSON_URL}?account=acme&api_key={tenant.api_key}&limit=lots")
    title = assert_vendor_error(r, 400, "invalid_input")
    assert "limit" in title and tenant.api_key not in r.text


async def test_xml_requests_get_xml_errors(client: Client, tenant: Tenant) -> None:
    r = await client.get(f"{XML_URL}?id=NOPE", headers=basic("acme", tenant.api_key))
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/xml")
    root = SafeET.fromstring(r.content)
    assert root.tag == "errors" and root.get("type") == "array"
    assert [(e.findtext("code"), bool(e.findtext("title"))) for e in root] == [("code_not_found", True)]
    r = await client.get(XML_URL)
    assert r.status_code == 401 and SafeET.fromstring(r.content).findtext("error/code") == "unauthenticated"


# -- isolation ----------------------------------------------------------------------------------------


async def test_an_account_sees_and_touches_only_its_own_promotions(
    client: Client, store: Store, tenant: Tenant, other: Tenant
) -> None:
    before = await snapshot(store, tenant)
    theirs = basic("rival", other.api_key)
    listed = (await client.get(JSON_URL, headers=theirs)).json()
    assert [p["code"] for p in listed] == ["RIVAL000", "RIVAL001", "RIVAL002"]
    assert (await client.get(f"{JSON_URL}?id=CODE000", headers=theirs)).status_code == 404
    assert (await client.get(f"{XML_URL}?promotion_code=CODE000", headers=theirs)).status_code == 404
    r = await client.post(JSON_URL, json={"id": "STOLEN", "template_code": "CODE000"}, headers=theirs)
    assert_vendor_error(r, 404, "code_not_found")
    # a value the owner holds is free in the other account: codes are per account
    r = await client.post(JSON_URL, json={"id": "CODE000", "template_code": "RIVAL000"}, headers=theirs)
    assert r.status_code == 201
    assert await snapshot(store, tenant) == before
    mine = (await client.get(JSON_URL, headers=basic("acme", tenant.api_key))).json()
    assert [p["code"] for p in mine] == TEN


# -- the whole list, spooled -----------------------------------------------------------------------------


async def spread_codes(store: Store, tenant: Tenant, count: int, pools: int = 3) -> list[str]:
    """``count`` codes over ``pools`` new pools (after the tenant's own ten), in listing order."""
    expected = list(TEN)
    per_pool = count // pools
    for n in range(pools):
        pool = await service.create_pool(
            store, account=tenant.account, name=f"bulk{n}", settings=PoolSettings()
        )
        values = [f"P{n}-{i:07d}" for i in range(per_pool)]
        await service.import_codes(store, account=tenant.account, pool_id=pool.id, values=values)
        expected += values
    return expected


def assert_framed(response: httpx.Response) -> None:
    """A Content-Length equal to the body: the Node.js client reads no body without one."""
    assert response.status_code == 200, response.text
    assert int(response.headers["content-length"]) == len(response.content)


@pytest.mark.parametrize("spool_memory", [render.SPOOL_MEMORY, 4096])
async def test_a_long_list_is_one_array_with_its_length(
    client: Client, store: Store, tenant: Tenant, monkeypatch: pytest.MonkeyPatch, spool_memory: int
) -> None:
    # 4096: the list overflows the spool's memory into its file, and goes out streamed from it.
    monkeypatch.setattr(render, "SPOOL_MEMORY", spool_memory)
    expected = await spread_codes(store, tenant, 2_700)
    h = basic("acme", tenant.api_key)
    r = await client.get(JSON_URL, headers=h)
    assert_framed(r)
    assert [p["code"] for p in r.json()] == expected
    r = await client.get(XML_URL, headers=h)
    assert_framed(r)
    assert [p["code"] for p in xml_array(r.content)] == expected
    r = await client.get(f"{JSON_URL}?limit=1001", headers=h)  # the Node.js client's list(1001)
    assert_framed(r)
    assert [p["code"] for p in r.json()] == expected[:1001]
    # offset and limit across pool boundaries
    r = await client.get(f"{JSON_URL}?offset=5&limit=2500", headers=h)
    assert [p["code"] for p in r.json()] == expected[5:2505]
    r = await client.get(f"{XML_URL}?offset=905&limit=7", headers=h)
    assert [p["code"] for p in xml_array(r.content)] == expected[905:912]
    assert (await client.get(f"{JSON_URL}?limit=0", headers=h)).json() == []
    assert xml_array((await client.get(f"{XML_URL}?offset=99999", headers=h)).content) == []


@pytest.mark.slow
async def test_100000_promotions_parse_as_one_array(client: Client, store: Store, tenant: Tenant) -> None:
    expected = await spread_codes(store, tenant, 100_000, pools=2)
    assert len(expected) == 100_010
    h = basic("acme", tenant.api_key)
    r = await client.get(JSON_URL, headers=h)
    assert_framed(r)
    codes = [p["code"] for p in r.json()]
    assert codes == expected and len(set(codes)) == 100_010
    r = await client.get(XML_URL, headers=h)
    assert_framed(r)
    assert [p["code"] for p in xml_array(r.content)] == expected
