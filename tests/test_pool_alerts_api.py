"""A pool's low-stock alert in the native API and the CLI; Standard Webhooks signatures; the test event."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from promopool import service
from promopool.domain.alerts import standard_secret
from promopool.storage import Store
from tests.conftest import Tenant
from tests.helpers import cli
from tests.webhook_receiver import Received, Receiver, webhook_receiver

NO_WAIT = (timedelta(0), timedelta(0))
HOOK = "https://shop.example/hooks/promopool"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as the_receiver:
        yield the_receiver


async def patch(client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any]) -> httpx.Response:
    return await client.patch(f"/v1/pools/{tenant.pool.id}", json=body, headers=tenant.headers)


async def alert_of(client: httpx.AsyncClient, tenant: Tenant) -> tuple[Any, Any]:
    pool = (await client.get(f"/v1/pools/{tenant.pool.id}", headers=tenant.headers)).json()
    return pool["low_stock_threshold"], pool["webhook_url"]


async def test_patch_sets_and_clears_the_alert(client: httpx.AsyncClient, tenant: Tenant) -> None:
    assert await alert_of(client, tenant) == (None, None)
    answer = await patch(client, tenant, {"low_stock_threshold": 5, "webhook_url": HOOK})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["low_stock_threshold"], answer.json()["webhook_url"]) == (5, HOOK)
    assert await alert_of(client, tenant) == (5, HOOK)
    listed = (await client.get("/v1/pools", headers=tenant.headers)).json()["pools"]
    assert [(p["low_stock_threshold"], p["webhook_url"]) for p in listed] == [(5, HOOK)]
    # Each field alone keeps the other; other settings keep the alert.
    assert (await patch(client, tenant, {"low_stock_threshold": 0})).status_code == 200
    assert await alert_of(client, tenant) == (0, HOOK)
    assert (await patch(client, tenant, {"max_uses": 2})).json()["webhook_url"] == HOOK
    assert (await patch(client, tenant, {"webhook_url": None})).status_code == 200
    assert await alert_of(client, tenant) == (0, None)
    assert (await patch(client, tenant, {"webhook_url": HOOK})).status_code == 200
    # Clearing the threshold removes the alert, its URL with it.
    answer = await patch(client, tenant, {"low_stock_threshold": None})
    assert (answer.json()["low_stock_threshold"], answer.json()["webhook_url"]) == (None, None)
    assert await alert_of(client, tenant) == (None, None)


@pytest.mark.parametrize(
    "body",
    [
        {"low_stock_threshold": -1},
        {"low_stock_threshold": 2**63},
        {"webhook_url": "ftp://files.example/hook"},
        {"webhook_url": "http://"},
        {"webhook_url": "https://a b.example/"},
        {"webhook_url": "https://x.example/" + "x" * 2000},
        {"webhook_url": 7},
        {"low_stock_threshold": None, "webhook_url": HOOK},
        {"name": "renamed", "max_uses": 3, "webhook_url": "javascript:alert(1)"},
    ],
)
async def test_bad_values_are_refused_and_change_nothing(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any]
) -> None:
    assert (await patch(client, tenant, {"low_stock_threshold": 4, "webhook_url": HOOK})).status_code == 200
    answer = await patch(client, tenant, body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_input"
    pool = (await client.get(f"/v1/pools/{tenant.pool.id}", headers=tenant.headers)).json()
    assert (pool["name"], pool["max_uses"]) == (tenant.pool.name, 1)
    assert (pool["low_stock_threshold"], pool["webhook_url"]) == (4, HOOK)


async def test_a_url_needs_a_threshold(client: httpx.AsyncClient, tenant: Tenant) -> None:
    answer = await patch(client, tenant, {"webhook_url": HOOK})
    assert answer.status_code == 400 and "threshold" in answer.json()["error"]["message"]
    assert await alert_of(client, tenant) == (None, None)


async def test_another_accounts_pool_is_not_found(
    client: httpx.AsyncClient, tenant: Tenant, other: Tenant
) -> None:
    answer = await client.patch(
        f"/v1/pools/{other.pool.id}", json={"low_stock_threshold": 1}, headers=tenant.headers
    )
    assert answer.status_code == 404
    test_event = await client.post(f"/v1/pools/{other.pool.id}/webhook/test", headers=tenant.headers)
    assert test_event.status_code == 404


def test_cli_create_and_set(database_url: str) -> None:
    cli(database_url, "migrate")
    pool_id = cli(
        database_url, "pools", "create", "spring", "--low-stock-threshold", "10", "--webhook-url", HOOK
    ).strip()
    assert json.loads(cli(database_url, "pools", "set", pool_id, "--json")) == {
        "pool_id": int(pool_id),
        "low_stock_threshold": 10,
        "webhook_url": HOOK,
    }
    shown = cli(database_url, "pools", "set", pool_id, "--low-stock-threshold", "3")
    assert f"pool {pool_id}: low-stock alert at 3 available, {HOOK}" in shown
    cleared = json.loads(cli(database_url, "pools", "set", pool_id, "--webhook-url", "", "--json"))
    assert (cleared["low_stock_threshold"], cleared["webhook_url"]) == (3, None)
    # Refused values: one line, exit 1, nothing created or changed.
    refused = cli(database_url, "pools", "set", pool_id, "--webhook-url", "ftp://x.example/", exit_code=1)
    assert "webhook_url" in refused
    assert "at 3 available, no webhook URL" in cli(database_url, "pools", "set", pool_id)
    assert "no low-stock alert" in cli(database_url, "pools", "set", pool_id, "--clear-alert")
    cli(
        database_url,
        "pools",
        "create",
        "bad",
        "--low-stock-threshold",
        "1",
        "--webhook-url",
        "no",
        exit_code=1,
    )
    assert [p["name"] for p in json.loads(cli(database_url, "pools", "list", "--json"))] == ["spring"]
    assert "no low-stock alert" in cli(database_url, "pools", "set", pool_id)


def verified(got: Received, secret: str) -> Any:
    return Webhook(secret).verify(got.body, got.headers)


async def test_deliveries_verify_as_standard_webhooks(
    store: Store, tenant: Tenant, receiver: Receiver
) -> None:
    account, pool_id = tenant.account, tenant.pool.id
    await service.set_low_stock_alert(
        store, account=account, pool_id=pool_id, threshold=9, webhook_url=receiver.url
    )
    receiver.statuses = [500]  # the first attempt fails: the retry must carry the same webhook-id
    await service.claim(store, account=account, pool_id=pool_id)
    sender = service.WebhookSender(store, retry_delays=NO_WAIT)
    assert await sender.deliver_due() == 1
    assert await sender.deliver_due() == 1
    first, retry = receiver.received
    secret = await service.webhook_secret(store, account=account)
    for got in (first, retry):
        assert verified(got, secret)["type"] == "pool.low_stock"
        assert got.signed_by(secret)  # the deprecated header, kept for one release
        assert got.headers["webhook-id"] == str(got.json["id"])
    assert first.headers["webhook-id"] == retry.headers["webhook-id"]
    with pytest.raises(WebhookVerificationError):
        verified(Received(first.headers, first.body.replace(b'"available":9', b'"available":1')), secret)
    with pytest.raises(WebhookVerificationError):
        Webhook(await service.rotate_webhook_secret(store, account=account)).verify(first.body, first.headers)


async def test_an_old_timestamp_is_refused(store: Store, tenant: Tenant, receiver: Receiver) -> None:
    account, pool_id = tenant.account, tenant.pool.id
    await service.set_low_stock_alert(
        store, account=account, pool_id=pool_id, threshold=1, webhook_url=receiver.url
    )
    real_clock = store.clock
    store.clock = lambda: real_clock() - timedelta(minutes=10)  # a captured delivery, replayed later
    await service.send_test_event(store, account=account, pool_id=pool_id)
    assert await service.WebhookSender(store).deliver_due() == 1
    [got] = receiver.received
    with pytest.raises(WebhookVerificationError, match="too old"):
        verified(got, await service.webhook_secret(store, account=account))


async def test_a_secret_from_before_standard_webhooks_keeps_working(
    store: Store, tenant: Tenant, receiver: Receiver
) -> None:
    account, pool_id = tenant.account, tenant.pool.id
    legacy = "whsec_" + "-_" + secrets.token_urlsafe(30)  # URL-safe base64, as secrets used to be made
    await store.replace_webhook_secret(account_id=account.id, secret=legacy)
    await service.set_low_stock_alert(
        store, account=account, pool_id=pool_id, threshold=1, webhook_url=receiver.url
    )
    await service.send_test_event(store, account=account, pool_id=pool_id)
    assert await service.WebhookSender(store).deliver_due() == 1
    [got] = receiver.received
    assert standard_secret(legacy) != legacy
    assert verified(got, standard_secret(legacy))["type"] == "test"
    assert got.signed_by(legacy)


async def test_the_test_event_arrives(
    client: httpx.AsyncClient, store: Store, tenant: Tenant, receiver: Receiver
) -> None:
    url = f"/v1/pools/{tenant.pool.id}/webhook/test"
    refused = await client.post(url, headers=tenant.headers)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "conflict"
    await patch(client, tenant, {"low_stock_threshold": 2})
    assert (await client.post(url, headers=tenant.headers)).status_code == 409  # a threshold, no URL
    await patch(client, tenant, {"webhook_url": receiver.url})
    answer = await client.post(url, headers=tenant.headers)
    assert answer.status_code == 202, answer.text
    queued = answer.json()
    assert (queued["event"], queued["url"], queued["state"]) == ("test", receiver.url, "pending")
    assert await service.WebhookSender(store).deliver_due() == 1
    [got] = receiver.received
    event = verified(got, await service.webhook_secret(store, account=tenant.account))
    assert event["type"] == "test" and event["id"] == queued["id"]
    assert event["data"] == {"pool_id": tenant.pool.id, "pool_name": tenant.pool.name, "threshold": 2}
    [delivery] = await service.list_deliveries(store, account=tenant.account, pool_id=tenant.pool.id)
    assert delivery.state == "delivered"


async def test_a_read_only_key_changes_no_alert_and_sends_no_test_event(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    assert (await patch(client, tenant, {"low_stock_threshold": 4, "webhook_url": HOOK})).status_code == 200
    reading = {"name": "dashboard", "read_only": True}
    made = await client.post("/v1/keys", json=reading, headers=tenant.headers)
    reader = {"Authorization": f"Bearer {made.json()['api_key']}"}
    pool = tenant.pool.id
    writes = [
        await client.patch(f"/v1/pools/{pool}", json={"low_stock_threshold": 9}, headers=reader),
        await client.patch(f"/v1/pools/{pool}", json={"webhook_url": None}, headers=reader),
        await client.post(f"/v1/pools/{pool}/webhook/test", headers=reader),
    ]
    assert [(r.status_code, r.json()["error"]["code"]) for r in writes] == [(403, "read_only_key")] * 3
    assert await alert_of(client, tenant) == (4, HOOK)
