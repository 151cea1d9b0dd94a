"""The PersonaClick promo-code API (vendor-apis.md §1) through an in-process client, on both engines."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from promopool import service
from promopool.api.app import create_app
from promopool.config import Settings
from promopool.domain import CodeState
from promopool.storage import Store
from tests.conftest import Tenant, make_tenant

Client = httpx.AsyncClient
TEN = [f"CODE{i:03d}" for i in range(10)]


def shop(tenant: Tenant, **extra: Any) -> dict[str, Any]:
    """The credentials of the vendor's examples, for this tenant."""
    return {"shop_id": tenant.account.public_key, "shop_secret": tenant.api_key, **extra}


def assert_error(response: httpx.Response, status: int, *words: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"status", "message"} and body["status"] == "error"
    message = str(body["message"])
    assert message
    for word in words:
        assert word in message, message
    return message


async def available(client: Client, tenant: Tenant) -> int:
    response = await client.get("/promo_codes", params=shop(tenant, include=str(tenant.pool.id)))
    assert response.status_code == 200, response.text
    return int(response.json()[0]["available"])


async def public_fetch_on(store: Store, tenant: Tenant) -> None:
    await service.update_pool(store, account=tenant.account, pool_id=tenant.pool.id, public_fetch=True)


def delete(client: Client, url: str, body: dict[str, Any]) -> Any:
    return client.request("DELETE", url, json=body)


# -- the vendor's request examples ----------------------------------------------------------------------


async def test_example_get_lists(client: Client, tenant: Tenant) -> None:
    # curl https://api.personaclick.com/promo_codes?shop_id=…&shop_secret=…
    response = await client.get(
        f"/promo_codes?shop_id={tenant.account.public_key}&shop_secret={tenant.api_key}"
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == [{"id": tenant.pool.id, "name": "acme-pool", "available": 10}]


async def test_example_upload(client: Client, tenant: Tenant) -> None:
    # curl -X POST -H 'content-type: application/json' -d '{"shop_id":…,"shop_secret":…,"id":100500,
    #   "codes":["code1","code2","codeN"]}'
    body = shop(tenant, id=tenant.pool.id, codes=["code1", "code2", "codeN"])
    response = await client.post("/promo_codes", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "success", "message": "3 promo codes added, 0 non-unique skipped"}
    assert await available(client, tenant) == 13


async def test_example_fetch_without_secret_or_device(client: Client, store: Store, tenant: Tenant) -> None:
    # curl https://api.personaclick.com/promo_codes/fetch?shop_id=…&id=100500 — no secret, no `did`: the
    # front end without a device (vendor-apis.md §1): 403 naming the setting while public fetch is off, then
    # a new code on every call.
    url = f"/promo_codes/fetch?shop_id={tenant.account.public_key}&id={tenant.pool.id}"
    assert_error(await client.get(url), 403, "public_fetch")
    assert await available(client, tenant) == 10
    await public_fetch_on(store, tenant)
    got = []
    for _ in range(3):
        response = await client.get(url)
        assert response.status_code == 200, response.text
        assert set(response.json()) == {"code"}
        got.append(response.json()["code"])
    assert got == TEN[:3]
    assert await available(client, tenant) == 7
    # A device's fetch still keeps its one code; the device-less calls never hand that one out again.
    bound = (await client.get(url + "&did=dev-1")).json()["code"]
    assert bound == "CODE003" and (await client.get(url)).json()["code"] == "CODE004"
    assert (await client.get(url + "&did=dev-1")).json()["code"] == bound


async def test_example_fetch_backend_and_front_end(client: Client, store: Store, tenant: Tenant) -> None:
    response = await client.get("/promo_codes/fetch", params=shop(tenant, id=tenant.pool.id))
    assert response.status_code == 200 and response.json() == {"code": "CODE000"}
    await public_fetch_on(store, tenant)
    response = await client.get(
        "/promo_codes/fetch",
        params={"shop_id": tenant.account.public_key, "id": tenant.pool.id, "did": "dev-1", "sid": "s-1"},
    )
    assert response.status_code == 200 and response.json() == {"code": "CODE001"}


async def test_example_purge(client: Client, tenant: Tenant) -> None:
    response = await delete(client, "/promo_codes/purge", shop(tenant, id=tenant.pool.id))
    assert response.status_code == 200 and response.json() == {"status": "success"}


async def test_example_delete(client: Client, tenant: Tenant) -> None:
    body = shop(tenant, promo_code_list_id=tenant.pool.id, codes=["CODE000", "CODE001", "NOPE"])
    response = await delete(client, "/promo_codes/delete", body)
    assert response.status_code == 200
    assert response.json() == {"status": "success", "payload": {"deleted_count": 2, "not_found_count": 1}}


# -- lists ----------------------------------------------------------------------------------------------


async def test_list_filters(client: Client, store: Store, tenant: Tenant) -> None:
    empty = await service.create_pool(
        store, account=tenant.account, name="empty", settings=tenant.pool.settings
    )
    third = await service.create_pool(
        store, account=tenant.account, name="third", settings=tenant.pool.settings
    )
    await service.import_codes(store, account=tenant.account, pool_id=third.id, values=["X1", "X2"])

    async def ids(**query: Any) -> list[int]:
        response = await client.get("/promo_codes", params=shop(tenant, **query))
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()]

    assert await ids() == [tenant.pool.id, empty.id, third.id]
    assert await ids(active=1) == [tenant.pool.id, third.id]
    assert await ids(active=0) == [tenant.pool.id, empty.id, third.id]
    assert await ids(include=f"{third.id},{empty.id}") == [empty.id, third.id]
    assert await ids(exclude=str(tenant.pool.id)) == [empty.id, third.id]
    assert await ids(include=f"{third.id},{empty.id}", exclude=str(third.id)) == [empty.id]
    assert await ids(offset=1) == [empty.id, third.id]
    assert await ids(offset=1, limit=1) == [empty.id]
    assert await ids(limit=0) == []


HUGE = "9" * 5000  # past the 4,300 digits Python's int() converts


async def test_numbers_of_any_length(client: Client, tenant: Tenant) -> None:
    # More than 4,300 digits in a list id, offset, limit, include or exclude was a 500 (int() refused them).
    pool = tenant.pool.id
    padded = "0" * 5000 + str(pool)  # leading zeros are not significant: this is the list itself
    for value in (HUGE, padded, str(2**64), "1" + "0" * 30):
        skipped = await client.get("/promo_codes", params=shop(tenant, offset=value))  # past the one list
        assert skipped.json() == [], skipped.text
        listed = await client.get("/promo_codes", params=shop(tenant, limit=value))
        assert [item["id"] for item in listed.json()] == [pool], listed.text
        included = await client.get("/promo_codes", params=shop(tenant, include=f"{value},{pool}"))
        assert [item["id"] for item in included.json()] == [pool], included.text
        excluded = await client.get("/promo_codes", params=shop(tenant, exclude=value))
        assert [item["id"] for item in excluded.json()] == ([] if value == padded else [pool]), excluded.text
    before = await available(client, tenant)
    for value in (HUGE, str(2**64), "1" + "0" * 30):
        assert_error(await client.get("/promo_codes/fetch", params=shop(tenant, id=value)), 404, "not found")
        upload = await client.post("/promo_codes", json=shop(tenant, id=value, codes=["NEW"]))
        assert_error(upload, 404, "not found")
        assert_error(await delete(client, "/promo_codes/purge", shop(tenant, id=value)), 404, "not found")
    fetched = await client.get("/promo_codes/fetch", params=shop(tenant, id=padded))
    assert fetched.status_code == 200, fetched.text
    assert await available(client, tenant) == before - 1


async def test_a_shop_sees_only_its_lists(client: Client, tenant: Tenant, other: Tenant) -> None:
    response = await client.get("/promo_codes", params=shop(other))
    assert [item["id"] for item in response.json()] == [other.pool.id]
    response = await client.get("/promo_codes", params=shop(other, include=str(tenant.pool.id)))
    assert response.json() == []


# -- upload ---------------------------------------------------------------------------------------------


async def test_upload_skips_non_unique_and_invalid(client: Client, store: Store, tenant: Tenant) -> None:
    codes = ["NEW1", "NEW2", "NEW1", "CODE003", " NEW3 ", "", "x" * 200]
    response = await client.post("/promo_codes", json=shop(tenant, id=str(tenant.pool.id), codes=codes))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "success",
        "message": "3 promo codes added, 2 non-unique skipped, 2 invalid skipped",
    }
    assert await available(client, tenant) == 13
    found = await service.get_code(store, account=tenant.account, pool_id=tenant.pool.id, value="NEW3")
    assert found.state == CodeState.AVAILABLE


async def test_upload_shop_id_in_query(client: Client, tenant: Tenant) -> None:
    response = await client.post(
        "/promo_codes",
        params={"shop_id": tenant.account.public_key},
        json={"shop_secret": tenant.api_key, "id": tenant.pool.id, "codes": ["Q1"]},
    )
    assert response.status_code == 200, response.text
    assert await available(client, tenant) == 11


async def test_upload_over_the_body_limit_is_413(store: Store, database_url: str, tenant: Tenant) -> None:
    app = create_app(Settings(database_url=database_url, personaclick_max_body_mib=1), store=store)
    async with Client(transport=httpx.ASGITransport(app=app), base_url="http://t") as small:
        codes = [f"C{i:07d}" for i in range(120_000)]  # about 1.4 MB
        response = await small.post("/promo_codes", json=shop(tenant, id=tenant.pool.id, codes=codes))
    assert_error(response, 413)


async def test_upload_larger_than_other_json_bodies(client: Client, tenant: Tenant) -> None:
    # The client fixture limits JSON bodies to 1 MiB; this route has its own limit (64 MiB by default).
    codes = [f"C{i:07d}" for i in range(150_000)]
    response = await client.post("/promo_codes", json=shop(tenant, id=tenant.pool.id, codes=codes))
    assert response.status_code == 200, response.text
    assert response.json()["message"] == "150000 promo codes added, 0 non-unique skipped"


@pytest.mark.slow
async def test_upload_a_million_codes(client: Client, tenant: Tenant) -> None:
    codes = [f"M{i:09d}" for i in range(1_000_000)]
    response = await client.post("/promo_codes", json=shop(tenant, id=tenant.pool.id, codes=codes))
    assert response.status_code == 200, response.text
    assert response.json()["message"] == "1000000 promo codes added, 0 non-unique skipped"
    assert await available(client, tenant) == 1_000_010


# -- fetch ----------------------------------------------------------------------------------------------


async def test_backend_fetch_hands_out_new_codes_then_404(client: Client, tenant: Tenant) -> None:
    got = []
    for _ in range(10):
        response = await client.get("/promo_codes/fetch", params=shop(tenant, id=tenant.pool.id, did="d"))
        assert response.status_code == 200
        got.append(response.json()["code"])
    assert got == TEN
    response = await client.get("/promo_codes/fetch", params=shop(tenant, id=tenant.pool.id))
    assert_error(response, 404, "no available code")
    assert await available(client, tenant) == 0


async def test_500_concurrent_backend_fetches_on_300_codes(client: Client, store: Store) -> None:
    tenant = await make_tenant(store, "busy", [f"B{i:04d}" for i in range(300)])
    query = shop(tenant, id=tenant.pool.id)
    responses = await asyncio.gather(*(client.get("/promo_codes/fetch", params=query) for _ in range(500)))
    codes = [r.json()["code"] for r in responses if r.status_code == 200]
    assert len(codes) == 300 and len(set(codes)) == 300
    assert sorted(r.status_code for r in responses if r.status_code != 200) == [404] * 200
    assert await available(client, tenant) == 0


def front(tenant: Tenant, did: str) -> dict[str, Any]:
    return {"shop_id": tenant.account.public_key, "id": tenant.pool.id, "did": did}


async def test_front_end_fetch_is_off_by_default(client: Client, tenant: Tenant) -> None:
    response = await client.get("/promo_codes/fetch", params=front(tenant, "dev-1"))
    assert_error(response, 403, "public_fetch")
    assert await available(client, tenant) == 10


async def test_front_end_same_device_same_code_until_redeemed(
    client: Client, store: Store, tenant: Tenant
) -> None:
    await public_fetch_on(store, tenant)
    first = (await client.get("/promo_codes/fetch", params=front(tenant, "dev-1"))).json()["code"]
    again = (await client.get("/promo_codes/fetch", params=front(tenant, "dev-1"))).json()["code"]
    assert first == again == "CODE000"
    other_device = (await client.get("/promo_codes/fetch", params=front(tenant, "dev-2"))).json()["code"]
    assert other_device == "CODE001"
    assert await available(client, tenant) == 8

    await service.redeem(store, account=tenant.account, code=first, pool_id=tenant.pool.id)
    after = (await client.get("/promo_codes/fetch", params=front(tenant, "dev-1"))).json()["code"]
    assert after == "CODE002"
    assert (await client.get("/promo_codes/fetch", params=front(tenant, "dev-1"))).json()["code"] == after
    assert (await client.get("/promo_codes/fetch", params=front(tenant, "dev-2"))).json()["code"] == "CODE001"


async def test_front_end_concurrent_first_calls_of_one_device_take_one_code(
    client: Client, store: Store, tenant: Tenant
) -> None:
    await public_fetch_on(store, tenant)
    responses = await asyncio.gather(
        *(client.get("/promo_codes/fetch", params=front(tenant, "dev-x")) for _ in range(20))
    )
    assert {r.json()["code"] for r in responses} == {"CODE000"}
    assert await available(client, tenant) == 9


async def test_front_end_empty_list_is_404(client: Client, store: Store, tenant: Tenant) -> None:
    await public_fetch_on(store, tenant)
    for i in range(10):
        assert (await client.get("/promo_codes/fetch", params=front(tenant, f"d{i}"))).status_code == 200
    assert_error(await client.get("/promo_codes/fetch", params=front(tenant, "late")), 404)
    # A device with its unredeemed code still gets it.
    assert (await client.get("/promo_codes/fetch", params=front(tenant, "d3"))).json() == {"code": "CODE003"}


async def test_front_end_is_rate_limited_per_address(store: Store, database_url: str, tenant: Tenant) -> None:
    await public_fetch_on(store, tenant)
    app = create_app(Settings(database_url=database_url, public_fetch_per_minute=3), store=store)
    async with Client(transport=httpx.ASGITransport(app=app), base_url="http://t") as limited:
        for i in range(3):
            assert (await limited.get("/promo_codes/fetch", params=front(tenant, f"d{i}"))).status_code == 200
        response = await limited.get("/promo_codes/fetch", params=front(tenant, "d9"))
        assert_error(response, 429, "front-end")
        assert int(response.headers["Retry-After"]) >= 1
        # A fetch without a device is the front end too: the same budget.
        anonymous = {"shop_id": tenant.account.public_key, "id": tenant.pool.id}
        assert_error(await limited.get("/promo_codes/fetch", params=anonymous), 429, "front-end")
        # The backend is not limited.
        assert (
            await limited.get("/promo_codes/fetch", params=shop(tenant, id=tenant.pool.id))
        ).status_code == 200


# -- purge and delete -----------------------------------------------------------------------------------


async def test_purge_deletes_only_codes_never_handed_out(
    client: Client, store: Store, tenant: Tenant
) -> None:
    for _ in range(2):
        await client.get("/promo_codes/fetch", params=shop(tenant, id=tenant.pool.id))
    response = await delete(client, "/promo_codes/purge", shop(tenant, id=str(tenant.pool.id)))
    assert response.json() == {"status": "success"}
    assert await available(client, tenant) == 0
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    assert (pool.counts.available, pool.counts.issued) == (0, 2)
    codes = await service.list_codes(store, account=tenant.account, pool_id=tenant.pool.id)
    assert [c.value for c in codes] == ["CODE000", "CODE001"]


async def test_purge_unknown_or_other_shops_list_is_404(
    client: Client, tenant: Tenant, other: Tenant
) -> None:
    assert_error(await delete(client, "/promo_codes/purge", shop(tenant, id=999_999)), 404)
    assert_error(await delete(client, "/promo_codes/purge", shop(tenant, id=other.pool.id)), 404)
    assert (await client.get("/promo_codes", params=shop(other))).json()[0]["available"] == 3


async def test_delete_adjusts_counters(client: Client, store: Store, tenant: Tenant) -> None:
    await client.get("/promo_codes/fetch", params=shop(tenant, id=tenant.pool.id))  # CODE000 issued
    body = shop(tenant, promo_code_list_id=str(tenant.pool.id), codes=["CODE000", "CODE005", "CODE005", ""])
    response = await delete(client, "/promo_codes/delete", body)
    assert response.json()["payload"] == {"deleted_count": 2, "not_found_count": 1}
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    assert (pool.counts.available, pool.counts.issued) == (8, 0)


# -- errors ---------------------------------------------------------------------------------------------

REQUESTS: list[tuple[str, str, list[str]]] = [
    ("GET", "/promo_codes", ["shop_id", "shop_secret"]),
    ("POST", "/promo_codes", ["shop_id", "shop_secret", "id", "codes"]),
    ("GET", "/promo_codes/fetch", ["shop_id", "id", "shop_secret"]),
    ("DELETE", "/promo_codes/purge", ["shop_id", "shop_secret", "id"]),
    ("DELETE", "/promo_codes/delete", ["shop_id", "shop_secret", "promo_code_list_id", "codes"]),
]
MISSING_CASES = [(method, url, name) for method, url, names in REQUESTS for name in names]


def full(tenant: Tenant, url: str) -> dict[str, Any]:
    params = shop(tenant, id=tenant.pool.id)
    if url.endswith("/delete"):
        params = shop(tenant, promo_code_list_id=tenant.pool.id, codes=["CODE009"])
    elif url == "/promo_codes":
        params["codes"] = ["Z1"]
    return params


async def send(client: Client, method: str, url: str, params: dict[str, Any]) -> httpx.Response:
    if method == "GET":
        return await client.get(url, params=params)
    return await client.request(method, url, json=params)


@pytest.mark.parametrize(("method", "url", "name"), MISSING_CASES)
async def test_missing_parameter(client: Client, tenant: Tenant, method: str, url: str, name: str) -> None:
    params = full(tenant, url)
    del params[name]
    response = await send(client, method, url, params)
    if name == "shop_secret" and url != "/promo_codes/fetch":
        assert_error(response, 403, "shop_secret")
    elif name == "shop_secret":  # fetch without a secret is the front end: off for this pool
        assert_error(response, 403, "public_fetch")
    else:
        assert_error(response, 404, "mandatory", name)


@pytest.mark.parametrize(("method", "url"), [(m, u) for m, u, _ in REQUESTS])
async def test_wrong_secret_and_unknown_shop(client: Client, tenant: Tenant, method: str, url: str) -> None:
    for change in ({"shop_secret": "wrong"}, {"shop_id": "nobody"}):
        response = await send(client, method, url, full(tenant, url) | change)
        assert_error(response, 403)


@pytest.mark.parametrize(("method", "url"), [(m, u) for m, u, _ in REQUESTS])
async def test_another_shops_secret_is_refused(
    client: Client, tenant: Tenant, other: Tenant, method: str, url: str
) -> None:
    response = await send(client, method, url, full(tenant, url) | {"shop_secret": other.api_key})
    assert_error(response, 403, "shop_secret")


@pytest.mark.parametrize(
    ("method", "url"), [(m, u) for m, u, _ in REQUESTS if u != "/promo_codes" or m == "POST"]
)
async def test_other_shops_list_and_bad_ids(
    client: Client, tenant: Tenant, other: Tenant, method: str, url: str
) -> None:
    name = "promo_code_list_id" if url.endswith("/delete") else "id"
    assert_error(await send(client, method, url, full(tenant, url) | {name: other.pool.id}), 404)
    assert_error(await send(client, method, url, full(tenant, url) | {name: 2**70}), 404)
    assert_error(await send(client, method, url, full(tenant, url) | {name: "12a"}), 400, name)


@pytest.mark.parametrize("url", ["/promo_codes", "/promo_codes/delete"])
async def test_codes_must_be_an_array_of_strings(client: Client, tenant: Tenant, url: str) -> None:
    method = "POST" if url == "/promo_codes" else "DELETE"
    for codes in ("CODE1", {"a": 1}, ["ok", 5], [None]):
        response = await send(client, method, url, full(tenant, url) | {"codes": codes})
        assert_error(response, 400, "codes")


@pytest.mark.parametrize(("method", "url"), [("POST", "/promo_codes"), ("DELETE", "/promo_codes/purge")])
async def test_malformed_body_is_400(client: Client, method: str, url: str) -> None:
    for body in (b"{not json", b"[1, 2]", b'{"shop_id": 5}'):
        response = await client.request(
            method, url, content=body, headers={"content-type": "application/json"}
        )
        assert_error(response, 400)


async def test_bad_list_parameters_are_400(client: Client, tenant: Tenant) -> None:
    for query in ({"active": "yes"}, {"include": "1,x"}, {"offset": "-1"}, {"limit": "many"}):
        assert_error(await client.get("/promo_codes", params=shop(tenant, **query)), 400)


async def test_fetch_empty_list_is_404(client: Client, store: Store, tenant: Tenant) -> None:
    empty = await service.create_pool(
        store, account=tenant.account, name="empty", settings=tenant.pool.settings
    )
    response = await client.get("/promo_codes/fetch", params=shop(tenant, id=empty.id))
    assert_error(response, 404, "no available code")


async def test_other_methods_are_405_in_the_vendor_shape(client: Client) -> None:
    for method, url, allowed in (
        ("PUT", "/promo_codes", "GET, POST"),
        ("POST", "/promo_codes/fetch", "GET"),
        ("GET", "/promo_codes/purge", "DELETE"),
        ("POST", "/promo_codes/delete", "DELETE"),
    ):
        response = await client.request(method, url)
        assert_error(response, 405)
        assert response.headers["allow"] == allowed
