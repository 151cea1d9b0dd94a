"""Idempotency-Key on every mutating native request (issue 17), on both engines: the same request again gets
the first answer (status, body, `Idempotent-Replayed: true`) and does nothing; the same key with another
request is refused with 422 `idempotency_key_reused` and changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from promopool import service
from promopool.domain.errors import StorageUnavailable
from promopool.storage import Store
from tests.conftest import Tenant
from tests.helpers import assert_error

Client = httpx.AsyncClient


@dataclass(frozen=True)
class Keyed:
    """One keyed route: how to send the request and another one, and what its effect is to count."""

    method: str
    url: str
    body: Any = None
    other_url: str | None = None  # the other request: another target ...
    other_body: Any = None  # ... or another body
    content_type: str = "application/json"
    withheld: str | None = None  # a field of the first answer a replay sends as null (a key's secret)


async def send(client: Client, tenant: Tenant, method: str, url: str, body: Any, key: str, ctype: str) -> Any:
    headers = {**tenant.headers, "Idempotency-Key": key}
    if body is None:
        return await client.request(method, url, headers=headers)
    if isinstance(body, str):
        return await client.request(
            method, url, content=body.encode(), headers={**headers, "Content-Type": ctype}
        )
    return await client.request(method, url, json=body, headers=headers)


async def state(client: Client, tenant: Tenant) -> Any:
    """What the account holds, as a client sees it: its pools (with counts and alerts) and keys."""
    pools = (await client.get("/v1/pools", headers=tenant.headers)).json()["pools"]
    keys = (await client.get("/v1/keys", headers=tenant.headers)).json()["keys"]
    return pools, [(k["id"], k["name"]) for k in keys]


async def second_pool(client: Client, tenant: Tenant, name: str = "second") -> int:
    created = await client.post("/v1/pools", json={"name": name}, headers=tenant.headers)
    return int(created.json()["id"])


async def extra_key(client: Client, tenant: Tenant, name: str) -> int:
    return int((await client.post("/v1/keys", json={"name": name}, headers=tenant.headers)).json()["id"])


# Each case builds its request against the tenant (an id made first where it needs one).
Case = Callable[[Client, Tenant], Awaitable[Keyed]]


async def patch_pool(client: Client, tenant: Tenant) -> Keyed:
    url = f"/v1/pools/{tenant.pool.id}"
    return Keyed("PATCH", url, {"name": "renamed", "low_stock_threshold": 3}, other_body={"name": "other"})


async def delete_pool(client: Client, tenant: Tenant) -> Keyed:
    other = await second_pool(client, tenant)
    return Keyed("DELETE", f"/v1/pools/{tenant.pool.id}", other_url=f"/v1/pools/{other}")


async def delete_code(client: Client, tenant: Tenant) -> Keyed:
    base = f"/v1/pools/{tenant.pool.id}/codes"
    return Keyed("DELETE", f"{base}/CODE001", other_url=f"{base}/CODE002")


async def describe_code(client: Client, tenant: Tenant) -> Keyed:
    url = f"/v1/pools/{tenant.pool.id}/codes/CODE001"
    return Keyed("PATCH", url, {"description": "Spring"}, other_body={"description": "Autumn"})


async def generate(client: Client, tenant: Tenant) -> Keyed:
    url = f"/v1/pools/{tenant.pool.id}/generate"
    return Keyed("POST", url, {"count": 1000}, other_body={"count": 1000, "prefix": "X"})


async def import_json(client: Client, tenant: Tenant) -> Keyed:
    url = f"/v1/pools/{tenant.pool.id}/codes"
    return Keyed("POST", url, ["NEW-1", "NEW-2", "CODE001"], other_body=["NEW-1", "NEW-3"])


async def import_text(client: Client, tenant: Tenant) -> Keyed:
    url = f"/v1/pools/{tenant.pool.id}/codes"
    return Keyed("POST", url, "T-1\nT-2\n", other_body="T-1\nT-9\n", content_type="text/plain")


async def create_key(client: Client, tenant: Tenant) -> Keyed:
    body, other = {"name": "ci"}, {"name": "ci", "read_only": True}
    return Keyed("POST", "/v1/keys", body, other_body=other, withheld="api_key")


async def revoke_key(client: Client, tenant: Tenant) -> Keyed:
    first, second = await extra_key(client, tenant, "one"), await extra_key(client, tenant, "two")
    return Keyed("DELETE", f"/v1/keys/{first}", other_url=f"/v1/keys/{second}")


async def lease(client: Client, tenant: Tenant) -> int:
    url = f"/v1/pools/{tenant.pool.id}/claim?lease_seconds=600"
    claimed = await client.post(url, headers=tenant.headers)
    return int(claimed.json()["lease"]["id"])


async def confirm_lease(client: Client, tenant: Tenant) -> Keyed:
    first, second = await lease(client, tenant), await lease(client, tenant)
    return Keyed("POST", f"/v1/leases/{first}/confirm", other_url=f"/v1/leases/{second}/confirm")


async def release_lease(client: Client, tenant: Tenant) -> Keyed:
    first, second = await lease(client, tenant), await lease(client, tenant)
    return Keyed("POST", f"/v1/leases/{first}/release", other_url=f"/v1/leases/{second}/release")


async def webhook_test(client: Client, tenant: Tenant) -> Keyed:
    alert = {"low_stock_threshold": 2, "webhook_url": "https://shop.example/hook"}
    urls = []
    for pool in (tenant.pool.id, await second_pool(client, tenant)):
        assert (
            await client.patch(f"/v1/pools/{pool}", json=alert, headers=tenant.headers)
        ).status_code == 200
        urls.append(f"/v1/pools/{pool}/webhook/test")
    return Keyed("POST", urls[0], other_url=urls[1])


async def create_pool(client: Client, tenant: Tenant) -> Keyed:
    return Keyed("POST", "/v1/pools", {"name": "spring"}, other_body={"name": "autumn"})


CASES = [
    patch_pool,
    delete_pool,
    delete_code,
    describe_code,
    generate,
    import_json,
    import_text,
    create_key,
    revoke_key,
    confirm_lease,
    release_lease,
    webhook_test,
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__)
async def test_the_same_request_again_gets_the_first_answer_and_does_nothing(
    client: Client, tenant: Tenant, case: Case
) -> None:
    route = await case(client, tenant)
    first = await send(client, tenant, route.method, route.url, route.body, "K-1", route.content_type)
    assert first.status_code < 300, first.text
    after_first = await state(client, tenant)
    again = await send(client, tenant, route.method, route.url, route.body, "K-1", route.content_type)
    expected = first.json() if first.content else None
    if route.withheld is not None:
        expected = {**expected, route.withheld: None}
    assert again.status_code == first.status_code
    assert (again.json() if again.content else None) == expected
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert await state(client, tenant) == after_first  # no second pool, job, code, key or change


@pytest.mark.parametrize("case", [*CASES, create_pool], ids=lambda case: case.__name__)
async def test_the_same_key_with_another_request_is_refused_and_changes_nothing(
    client: Client, tenant: Tenant, case: Case
) -> None:
    route = await case(client, tenant)
    first = await send(client, tenant, route.method, route.url, route.body, "K-2", route.content_type)
    assert first.status_code < 300, first.text
    before = await state(client, tenant)
    other_url = route.other_url or route.url
    other_body = route.body if route.other_body is None else route.other_body
    refused = await send(client, tenant, route.method, other_url, other_body, "K-2", route.content_type)
    assert_error(refused, 422, "idempotency_key_reused")
    assert await state(client, tenant) == before


async def test_a_key_used_on_one_route_is_refused_on_another(client: Client, tenant: Tenant) -> None:
    headers = {**tenant.headers, "Idempotency-Key": "shared"}
    pool = tenant.pool.id
    assert (await client.patch(f"/v1/pools/{pool}", json={"name": "x"}, headers=headers)).status_code == 200
    refused = await client.post(f"/v1/pools/{pool}/generate", json={"count": 1}, headers=headers)
    assert_error(refused, 422, "idempotency_key_reused")
    assert_error(await client.delete(f"/v1/pools/{pool}", headers=headers), 422, "idempotency_key_reused")
    assert (await client.get(f"/v1/pools/{pool}", headers=tenant.headers)).json()["counts"]["total"] == 10


async def test_a_replayed_patch_answers_what_it_first_set(client: Client, tenant: Tenant) -> None:
    url = f"/v1/pools/{tenant.pool.id}"
    keyed = {**tenant.headers, "Idempotency-Key": "rename"}
    first = await client.patch(url, json={"name": "renamed"}, headers=keyed)
    await client.patch(url, json={"name": "changed-since"}, headers=tenant.headers)
    again = await client.patch(url, json={"name": "renamed"}, headers=keyed)
    assert again.json() == first.json() and again.json()["name"] == "renamed"
    # The replay changed nothing: the later name stands.
    assert (await client.get(url, headers=tenant.headers)).json()["name"] == "changed-since"


async def test_a_replayed_key_creation_withholds_the_secret(client: Client, tenant: Tenant) -> None:
    keyed = {**tenant.headers, "Idempotency-Key": "new-key"}
    first = await client.post("/v1/keys", json={"name": "ci"}, headers=keyed)
    again = await client.post("/v1/keys", json={"name": "ci"}, headers=keyed)
    secret = first.json()["api_key"]
    assert secret and again.json() == {**first.json(), "api_key": None}
    assert (await client.get("/v1/pools", headers={"Authorization": f"Bearer {secret}"})).status_code == 200


async def test_a_generation_with_a_key_makes_one_job(client: Client, tenant: Tenant) -> None:
    url = f"/v1/pools/{tenant.pool.id}/generate"
    keyed = {**tenant.headers, "Idempotency-Key": "gen"}
    first, again = [await client.post(url, json={"count": 1000}, headers=keyed) for _ in range(2)]
    assert first.json()["id"] == again.json()["id"]
    pool = (await client.get(f"/v1/pools/{tenant.pool.id}", headers=tenant.headers)).json()
    assert pool["counts"]["total"] == 10 + 1000


@pytest.mark.parametrize("twins", [2, 4])
async def test_concurrent_generations_with_one_key_make_one_job(
    client: Client, tenant: Tenant, twins: int
) -> None:
    url = f"/v1/pools/{tenant.pool.id}/generate"
    keyed = {**tenant.headers, "Idempotency-Key": "gen-twins"}
    answers = await asyncio.gather(
        *[client.post(url, json={"count": 1000}, headers=keyed) for _ in range(twins)]
    )
    assert all(a.status_code in (201, 202) for a in answers), [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert sum("Idempotent-Replayed" not in a.headers for a in answers) == 1
    for _ in range(500):  # a twin answered with the running job: wait for it, then count
        pool = (await client.get(f"/v1/pools/{tenant.pool.id}", headers=tenant.headers)).json()
        job = (await client.get(f"/v1/jobs/{answers[0].json()['id']}", headers=tenant.headers)).json()
        if job["state"] != "running":
            break
        await asyncio.sleep(0.02)
    assert pool["counts"]["total"] == 10 + 1000


async def test_concurrent_imports_with_one_key_store_each_code_once(client: Client, tenant: Tenant) -> None:
    url = f"/v1/pools/{tenant.pool.id}/codes"
    keyed = {**tenant.headers, "Idempotency-Key": "import-twins", "Content-Type": "text/plain"}
    upload = "".join(f"TWIN-{i:05d}\n" for i in range(25_000)).encode()  # three batches
    answers = await asyncio.gather(*[client.post(url, content=upload, headers=keyed) for _ in range(3)])
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert {a.content for a in answers} == {answers[0].content}
    assert answers[0].json()["inserted"] == 25_000
    assert sum("Idempotent-Replayed" not in a.headers for a in answers) == 1
    pool = (await client.get(f"/v1/pools/{tenant.pool.id}", headers=tenant.headers)).json()
    assert pool["counts"]["total"] == 10 + 25_000


async def test_a_keyed_import_that_broke_off_is_finished_by_its_retry(store: Store, tenant: Tenant) -> None:
    values = ["R-1", "R-2", "R-3"]
    real_insert = store.insert_codes

    async def crash(**kwargs: Any) -> int:
        raise StorageUnavailable("the database went away")

    store.insert_codes = crash  # type: ignore[method-assign]
    with pytest.raises(StorageUnavailable):  # the first batch (with the key) committed, then it broke off
        await service.import_codes_once(
            store,
            account=tenant.account,
            pool_id=tenant.pool.id,
            values=values,
            batch_size=1,
            idempotency_key="R",
        )
    store.insert_codes = real_insert  # type: ignore[method-assign]
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    assert pool.counts.total == 10 + 1
    retried = await service.import_codes_once(
        store,
        account=tenant.account,
        pool_id=tenant.pool.id,
        values=values,
        batch_size=1,
        idempotency_key="R",
    )
    assert not retried.replayed
    assert (retried.value.inserted, retried.value.duplicates) == (2, 1)  # R-1 stored by the first attempt
    again = await service.import_codes_once(
        store,
        account=tenant.account,
        pool_id=tenant.pool.id,
        values=values,
        batch_size=1,
        idempotency_key="R",
    )
    assert again.replayed and again.value == retried.value
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    assert pool.counts.total == 10 + 3


async def test_a_keyed_test_event_is_queued_once(client: Client, store: Store, tenant: Tenant) -> None:
    route = await webhook_test(client, tenant)
    for _ in range(3):
        sent = await send(client, tenant, route.method, route.url, None, "ping", route.content_type)
        assert sent.status_code == 202, sent.text
    deliveries = await store.list_deliveries(pool_id=tenant.pool.id, limit=10)
    assert [d.event for d in deliveries] == ["test"]


async def test_a_keyed_release_gives_the_code_back_once(client: Client, tenant: Tenant) -> None:
    lease_id = await lease(client, tenant)
    url = f"/v1/leases/{lease_id}/release"
    first, again = [await send(client, tenant, "POST", url, None, "rel", "") for _ in range(2)]
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    pool = (await client.get(f"/v1/pools/{tenant.pool.id}", headers=tenant.headers)).json()
    assert (pool["counts"]["available"], pool["counts"]["issued"]) == (10, 0)


async def test_a_refused_request_keeps_no_key(client: Client, tenant: Tenant) -> None:
    """An error is not an answer to replay: nothing was done, so the key may be used again."""
    keyed = {**tenant.headers, "Idempotency-Key": "after-404"}
    missing = await client.delete(f"/v1/pools/{tenant.pool.id}/codes/NO-SUCH", headers=keyed)
    assert_error(missing, 404, "code_not_found")
    deleted = await client.delete(f"/v1/pools/{tenant.pool.id}/codes/CODE003", headers=keyed)
    assert deleted.status_code == 204 and "Idempotent-Replayed" not in deleted.headers


async def test_keys_are_per_account(client: Client, tenant: Tenant, other: Tenant) -> None:
    for who in (tenant, other):
        headers = {**who.headers, "Idempotency-Key": "same"}
        renamed = await client.patch(f"/v1/pools/{who.pool.id}", json={"name": "mine"}, headers=headers)
        assert renamed.status_code == 200 and "Idempotent-Replayed" not in renamed.headers
