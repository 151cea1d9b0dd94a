"""Errors the vendor dialects share, on both engines: each answers in its own envelope, whatever went wrong.

Found by the dialect fuzz (tests/reliability/test_fuzz_dialects.py); the checks of each envelope are
tests/reliability/dialects.py's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from litestar.exceptions import ValidationException

from promopool import service
from promopool.api.altcraft import errors as altcraft_errors
from promopool.api.personaclick import errors as personaclick_errors
from promopool.api.supersaas import errors as supersaas_errors
from promopool.domain import errors as e
from promopool.storage import Store
from tests.conftest import Tenant
from tests.reliability.dialects import altcraft_answer, personaclick_answer, supersaas_answer
from tests.reliability.integrity import table_dump

JSON = {"Content-Type": "application/json"}


def json_routes(tenant: Tenant) -> list[tuple[str, str, dict[str, Any], Callable[[httpx.Response], Any]]]:
    """(method, url, request arguments, the dialect's error check) for every dialect route with a JSON
    body."""
    shop = {"shop_id": tenant.account.public_key, "shop_secret": tenant.api_key}
    basic = {"auth": (tenant.account.name, tenant.api_key)}
    bearer = {"headers": {**JSON, "Authorization": f"Bearer {tenant.api_key}"}}
    return [
        ("POST", "/api/promotions.json", {**basic, "headers": JSON}, supersaas_answer),
        ("POST", "/api/promotions.xml", {**basic, "headers": JSON}, supersaas_answer),
        ("POST", "/promo_codes", {"params": shop, "headers": JSON}, personaclick_answer),
        ("DELETE", "/promo_codes/purge", {"params": shop, "headers": JSON}, personaclick_answer),
        ("DELETE", "/promo_codes/delete", {"params": shop, "headers": JSON}, personaclick_answer),
        *[("POST", f"/api/v1.1/promocodes/{m}", bearer, altcraft_answer) for m in ("import", "get")],
    ]


# msgspec raises neither of these as a DecodeError: a string that is not UTF-8, and nesting deeper than
# it recurses (inside a field the dialect does not even read, too)
UNDECODABLE_BODIES = [
    b'{"id": "\xff\xfe", "codes": ["\xc3\x28"], "code": "\xff", "template_code": "\xff"}',
    b'{"unread": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b"[" * 100_000 + b"]" * 100_000,
]


async def test_undecodable_json_is_400_in_the_vendors_envelope(
    client: httpx.AsyncClient, store: Store, tenant: Tenant, database_url: str
) -> None:
    before = await table_dump(database_url)
    for method, url, kwargs, check in json_routes(tenant):
        for body in UNDECODABLE_BODIES:
            response = await client.request(method, url, content=body, **kwargs)
            assert response.status_code == 400, (url, body[:40], response.text)
            assert check(response), (url, response.text)
    assert await table_dump(database_url) == before


@pytest.mark.parametrize("error", [RecursionError("deep"), UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad")])
async def test_an_unexpected_error_is_500_in_the_vendors_envelope(
    client: httpx.AsyncClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    # The app handles these two exception types itself (for the native API's bodies); a bug raising one
    # inside a dialect must still answer in that dialect's envelope.
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise error

    for name in ("find_promotion", "select_pools", "code_details"):
        monkeypatch.setattr(service, name, broken)
    supersaas = await client.get("/api/promotions.json?id=X", auth=(tenant.account.name, tenant.api_key))
    assert supersaas.status_code == 500
    assert supersaas.json() == {"errors": [{"code": "internal_error", "title": "internal server error"}]}
    shop = {"shop_id": tenant.account.public_key, "shop_secret": tenant.api_key}
    personaclick = await client.get("/promo_codes", params=shop)
    assert (personaclick.status_code, personaclick.json()) == (
        500,
        {"status": "error", "message": "internal server error"},
    )
    altcraft = await client.post(
        "/api/v1.1/promocodes/get", json={"token": tenant.api_key, "loyalty_id": tenant.pool.id, "code": "X"}
    )
    assert (altcraft.status_code, altcraft.json()) == (
        500,
        {"data": None, "error": 500, "error_text": "Internal server error"},
    )


async def test_a_query_or_form_that_is_not_utf8_is_400(
    client: httpx.AsyncClient, store: Store, tenant: Tenant, database_url: str
) -> None:
    # The framework decodes such escapes as U+FFFD: a duplicate made a promotion "\ufffd" the client never
    # named, a front-end fetch bound a code to a device id it never sent.
    await service.update_pool(store, account=tenant.account, pool_id=tenant.pool.id, public_fetch=True)
    basic = {"auth": (tenant.account.name, tenant.api_key)}
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    shop = f"shop_id={tenant.account.public_key}"
    before = await table_dump(database_url)
    refused = [
        (supersaas_answer, "POST", "/api/promotions.json?id=%FF&template_code=CODE001", basic),
        (supersaas_answer, "POST", "/api/promotions.xml?id=A%C3%28&template_code=CODE001", basic),
        (
            supersaas_answer,
            "POST",
            "/api/promotions.json",
            {**basic, "headers": form, "content": b"id=%FF&template_code=CODE001"},
        ),
        (supersaas_answer, "GET", "/api/promotions.json?id=%ED%A0%80", basic),  # an encoded surrogate
        (personaclick_answer, "GET", f"/promo_codes/fetch?{shop}&id={tenant.pool.id}&did=%FF", {}),
        (personaclick_answer, "GET", f"/promo_codes?{shop}&shop_secret={tenant.api_key}&active=%FF", {}),
        (
            altcraft_answer,
            "POST",
            "/api/v1.1/promocodes/get?token=%FF",
            {"json": {"loyalty_id": 1, "code": "X"}},
        ),
    ]
    for check, method, url, kwargs in refused:
        response = await client.request(method, url, **kwargs)
        assert response.status_code == 400, (url, response.text)
        assert check(response), (url, response.text)
    assert await table_dump(database_url) == before
    # UTF-8 escapes are fine, of course
    created = await client.post("/api/promotions.json?id=%C3%A9t%C3%A9&template_code=CODE001", **basic)
    assert created.status_code == 201 and created.json()["code"] == "été", created.text
    fetched = await client.get(f"/promo_codes/fetch?{shop}&id={tenant.pool.id}&did=%C3%A9")
    assert fetched.status_code == 200, fetched.text


class _Unmapped(e.PromopoolError):
    code = "unmapped"


VENDOR_ERRORS = {
    "altcraft": altcraft_errors.vendor_error,
    "personaclick": personaclick_errors.vendor_error,
    "supersaas": supersaas_errors.vendor_error,
}


@pytest.mark.parametrize("dialect", VENDOR_ERRORS)
def test_every_dialect_maps_the_shared_cases_alike(dialect: str, caplog: pytest.LogCaptureFixture) -> None:
    # What api/errors.py does for all three: a rate limit's Retry-After, and an error no table maps
    # answered 500 without its message, and logged.
    vendor_error = VENDOR_ERRORS[dialect]
    limited = vendor_error(e.RateLimited("slow down", retry_after=7))
    assert limited[0] == 429 and limited[-1] == {"Retry-After": "7"}
    with caplog.at_level(logging.ERROR, logger="promopool"):
        unmapped = vendor_error(_Unmapped("secret internals"))
    assert unmapped[0] == 500 and unmapped[-1] == {}
    assert "secret internals" not in repr(unmapped)
    assert "unmapped promopool error unmapped" in caplog.text


@pytest.mark.parametrize("dialect", ["personaclick", "supersaas"])
def test_a_failed_validation_is_named_by_parameter(dialect: str) -> None:
    exc = ValidationException(
        detail="Validation failed for GET http://host/x?secret=k", extra=[{"key": "limit", "message": "bad"}]
    )
    answer = VENDOR_ERRORS[dialect](exc)
    assert answer[0] == 400
    assert "limit: bad" in answer and not any("secret" in str(part) for part in answer)
