"""The admin pages of a pool's daily work (issue 20), through an in-process client on both engines:
generate (the key-space refusal, the job's progress), export by state and format, the redemptions list
(filters, paging, CSV), delete after a confirmation naming the counts, and a read-only key's session."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re

import httpx

from promopool import service
from promopool.domain.generation import CodeSpec
from promopool.storage import Store
from tests.conftest import Tenant
from tests.helpers import HTML, sign_in

Client = httpx.AsyncClient


def job_path(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert re.fullmatch(r"/admin/jobs/\d+", location)
    return location


async def finished(client: Client, job: str) -> dict[str, object]:
    """The job's progress as the page's script reads it, once it is no longer running."""
    for _ in range(500):
        progress = (await client.get(f"{job}/progress.json")).json()
        if progress["state"] != "running":
            return dict(progress)
        await asyncio.sleep(0.02)
    raise AssertionError("the job did not finish")


async def test_generate_starts_a_job_the_page_follows(client: Client, store: Store, tenant: Tenant) -> None:
    csrf = await sign_in(client, tenant.api_key)
    pool_url = f"/admin/pools/{tenant.pool.id}"
    assert f'href="{pool_url}/generate"' in (await client.get(pool_url, headers=HTML)).text
    form = await client.get(f"{pool_url}/generate", headers=HTML)
    assert form.status_code == 200 and 'name="pattern"' in form.text and "unambiguous" in form.text

    started = await client.post(
        f"{pool_url}/generate",
        data={"csrf_token": csrf, "pattern": "GEN-############", "charset": "digits", "count": "40"},
    )
    job = job_path(started)
    page = await client.get(job, headers=HTML)
    assert page.status_code == 200 and "<progress" in page.text and "/admin/static/job.js" in page.text
    assert await finished(client, job) == {
        "id": int(job.rsplit("/", 1)[1]),
        "state": "succeeded",
        "done": 40,
        "total": 40,
        "error": None,
        "pool_id": tenant.pool.id,
    }
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    assert pool.counts.available == 50
    codes = await service.list_codes(store, account=tenant.account, pool_id=tenant.pool.id, limit=100)
    assert sum(bool(re.fullmatch(r"GEN-\d{12}", c.value)) for c in codes) == 40
    assert "succeeded" in (await client.get(job, headers=HTML)).text


async def test_generate_refused_says_why_and_keeps_the_form(
    client: Client, store: Store, tenant: Tenant, other: Tenant
) -> None:
    csrf = await sign_in(client, tenant.api_key)
    url = f"/admin/pools/{tenant.pool.id}/generate"
    typed = {"csrf_token": csrf, "pattern": "X-##", "charset": "digits", "count": "5", "prefix": "SPR"}
    refused = await client.post(url, data=typed, headers=HTML)
    assert refused.status_code == 400
    assert "key space of 100" in refused.text and "at most 0 more fit" in refused.text  # the check's message
    assert 'value="X-##"' in refused.text and 'value="SPR"' in refused.text and 'value="5"' in refused.text
    assert re.search(r'<option value="digits" selected', refused.text)
    no_hash = await client.post(url, data={**typed, "pattern": "PLAIN"}, headers=HTML)
    assert no_hash.status_code == 400 and "needs at least one" in no_hash.text
    forged = await client.post(url, data={**typed, "csrf_token": "x", "pattern": "#" * 12}, headers=HTML)
    assert forged.status_code == 403
    theirs = await client.post(
        f"/admin/pools/{other.pool.id}/generate", data={**typed, "pattern": "#" * 12}, headers=HTML
    )
    assert theirs.status_code == 404
    for account, pool in ((tenant.account, tenant.pool), (other.account, other.pool)):
        assert (await service.get_pool(store, account=account, pool_id=pool.id)).counts.total in (10, 3)
    missing_job = await client.get("/admin/jobs/999999", headers=HTML)
    assert missing_job.status_code == 404 and "job 999999 not found" in missing_job.text


async def test_export_page_downloads_by_state_and_format(
    client: Client, store: Store, tenant: Tenant, other: Tenant
) -> None:
    for _ in range(2):
        await service.claim(store, account=tenant.account, pool_id=tenant.pool.id)
    await sign_in(client, tenant.api_key)
    pool_url = f"/admin/pools/{tenant.pool.id}"
    page = await client.get(f"{pool_url}/export", headers=HTML)
    assert page.status_code == 200 and 'name="state"' in page.text and 'value="jsonl"' in page.text

    issued = await client.get(f"{pool_url}/export/download", params={"state": "issued", "format": "csv"})
    assert issued.status_code == 200 and issued.headers["content-type"].startswith("text/csv")
    assert f'filename="pool-{tenant.pool.id}-issued.csv"' in issued.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(issued.text)))
    assert len(rows) == 2 and {row["state"] for row in rows} == {"issued"}
    available = await client.get(
        f"{pool_url}/export/download", params={"state": "available", "format": "jsonl"}
    )
    lines = [json.loads(line) for line in available.text.splitlines()]
    assert len(lines) == 8 and {line["state"] for line in lines} == {"available"}
    everything = await client.get(f"{pool_url}/export/download")
    assert len(everything.text.splitlines()) == 11  # the header and the 10 codes

    bad = await client.get(f"{pool_url}/export/download", params={"state": "lost"}, headers=HTML)
    assert bad.status_code == 400 and "<html" in bad.text
    theirs = await client.get(f"/admin/pools/{other.pool.id}/export/download")
    assert theirs.status_code == 404 and "RIVAL" not in theirs.text


async def _redeem(store: Store, tenant: Tenant, code: str, profile: str | None, order: str | None) -> int:
    done = await service.redeem(
        store, account=tenant.account, code=code, pool_id=tenant.pool.id, profile=profile, order_ref=order
    )
    return done.redemption.id


async def test_redemptions_list_filters_pages_and_downloads(
    client: Client, store: Store, tenant: Tenant, other: Tenant
) -> None:
    await service.update_pool(store, account=tenant.account, pool_id=tenant.pool.id, max_uses=100)
    ids = [await _redeem(store, tenant, "CODE000", f"p{i % 3}", f"order-{i}") for i in range(55)]
    gone = await _redeem(store, tenant, "CODE001", "alice", "A-1")
    await service.rollback_redemption(store, account=tenant.account, redemption_id=gone)
    await service.redeem(store, account=other.account, code="RIVAL000", profile="alice", order_ref="A-1")
    await sign_in(client, tenant.api_key)
    url = f"/admin/pools/{tenant.pool.id}/redemptions"

    def shown(page: httpx.Response) -> list[int]:
        assert page.status_code == 200, page.text
        return [int(i) for i in re.findall(r'data-redemption="(\d+)"', page.text)]

    first = await client.get(url, headers=HTML)
    assert shown(first) == [gone, *reversed(ids)][:50]  # newest first, a page of 50
    older = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert older
    second = await client.get(older.group(1).replace("&amp;", "&"), headers=HTML)
    assert shown(second) == list(reversed(ids))[49:] and 'rel="next"' not in second.text
    assert "RIVAL000" not in first.text + second.text

    assert shown(await client.get(url, params={"profile": "alice"}, headers=HTML)) == [gone]
    assert shown(await client.get(url, params={"order_ref": "order-7"}, headers=HTML)) == [ids[7]]
    assert shown(await client.get(url, params={"rolled_back": "yes"}, headers=HTML)) == [gone]
    assert gone not in shown(await client.get(url, params={"rolled_back": "no"}, headers=HTML))
    today = store.clock().strftime("%Y-%m-%d")
    dated = await client.get(url, params={"since": today, "until": today, "profile": "p1"}, headers=HTML)
    assert shown(dated) == [i for i in reversed(ids) if ids.index(i) % 3 == 1]
    assert shown(await client.get(url, params={"until": "2020-01-01"}, headers=HTML)) == []
    assert shown(await client.get(url, params={"since": "2099-01-01 00:00 UTC"}, headers=HTML)) == []

    bad = await client.get(url, params={"since": "yesterday", "profile": "p2"}, headers=HTML)
    assert bad.status_code == 400 and "UTC date and time" in bad.text
    assert 'value="yesterday"' in bad.text and 'value="p2"' in bad.text  # the filter as typed
    backwards = await client.get(url, params={"since": "2026-02-02", "until": "2026-01-01"}, headers=HTML)
    assert backwards.status_code == 400 and "after its start" in backwards.text

    download = await client.get(f"{url}.csv", params={"profile": "p0"})
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert [int(r["id"]) for r in rows] == [i for i in reversed(ids) if ids.index(i) % 3 == 0]
    assert {r["profile"] for r in rows} == {"p0"} and rows[0]["code"] == "CODE000"
    rolled = list(
        csv.DictReader(io.StringIO((await client.get(f"{url}.csv", params={"rolled_back": "yes"})).text))
    )
    assert [r["order_ref"] for r in rolled] == ["A-1"] and rolled[0]["rolled_back_at"]
    assert (await client.get(f"/admin/pools/{other.pool.id}/redemptions", headers=HTML)).status_code == 404
    assert (await client.get(f"/admin/pools/{other.pool.id}/redemptions.csv")).status_code == 404


async def test_another_accounts_pool_and_job_are_not_found(
    client: Client, store: Store, tenant: Tenant, other: Tenant
) -> None:
    theirs = await service.start_generation(
        store,
        account=other.account,
        pool_id=other.pool.id,
        spec=CodeSpec.of(length=12),
        count=5,
    )
    csrf = await sign_in(client, tenant.api_key)
    pool_url = f"/admin/pools/{other.pool.id}"
    for path in (
        f"{pool_url}/delete",
        f"{pool_url}/generate",
        f"{pool_url}/export",
        f"/admin/jobs/{theirs.id}",
    ):
        page = await client.get(path, headers=HTML)
        assert page.status_code == 404 and other.pool.name not in page.text, path
    assert (await client.get(f"/admin/jobs/{theirs.id}/progress.json")).status_code == 404
    removed = await client.post(f"{pool_url}/delete", data={"csrf_token": csrf}, headers=HTML)
    assert removed.status_code == 404
    assert (await service.get_pool(store, account=other.account, pool_id=other.pool.id)).counts.total == 3


async def test_delete_confirms_with_the_counts(client: Client, store: Store, tenant: Tenant) -> None:
    for _ in range(3):
        await service.claim(store, account=tenant.account, pool_id=tenant.pool.id)
    issued = (await service.list_codes(store, account=tenant.account, pool_id=tenant.pool.id, limit=20))[0]
    await service.redeem(store, account=tenant.account, code=issued.value, pool_id=tenant.pool.id)
    csrf = await sign_in(client, tenant.api_key)
    url = f"/admin/pools/{tenant.pool.id}/delete"
    confirm = await client.get(url, headers=HTML)
    assert confirm.status_code == 200 and tenant.pool.name in confirm.text
    counts = dict(re.findall(r'data-count="(\w+)">([^<]+)<', confirm.text))
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    assert counts == {
        "available": str(pool.counts.available),
        "issued": str(pool.counts.issued),
        "redeemed": str(pool.counts.redeemed),
    }
    assert (pool.counts.issued, pool.counts.redeemed) in (
        (2, 1),
        (3, 1),
    )  # the redeemed code was issued or not

    unconfirmed = await client.post(url, data={}, headers=HTML)
    assert unconfirmed.status_code == 403
    assert await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    deleted = await client.post(url, data={"csrf_token": csrf}, headers=HTML)
    assert deleted.status_code == 200 and "is deleted" in deleted.text
    assert not await service.list_pools(store, account=tenant.account)
    again = await client.post(url, data={"csrf_token": csrf}, headers=HTML)
    assert again.status_code == 404


async def test_a_read_only_session_sees_no_actions_and_is_refused(
    client: Client, store: Store, tenant: Tenant
) -> None:
    viewer = await service.create_key(store, account=tenant.account, name="viewer", read_only=True)
    csrf = await sign_in(client, viewer.api_key)
    pool_url = f"/admin/pools/{tenant.pool.id}"
    page = await client.get(pool_url, headers=HTML)
    assert f"{pool_url}/export" in page.text and f"{pool_url}/redemptions" in page.text
    assert f"{pool_url}/generate" not in page.text and f"{pool_url}/delete" not in page.text
    assert re.search(r"<fieldset[^>]*disabled", page.text)  # the settings, shown but not editable
    for path in ("generate", "delete"):
        shown = await client.get(f"{pool_url}/{path}", headers=HTML)
        assert shown.status_code == 403 and "read-only" in shown.text
    started = await client.post(
        f"{pool_url}/generate", data={"csrf_token": csrf, "pattern": "#" * 12, "count": "5"}, headers=HTML
    )
    assert started.status_code == 403
    removed = await client.post(f"{pool_url}/delete", data={"csrf_token": csrf}, headers=HTML)
    assert removed.status_code == 403
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    assert pool.counts.total == 10
    # Reading is allowed.
    assert (await client.get(f"{pool_url}/export/download")).status_code == 200
    assert (await client.get(f"{pool_url}/redemptions", headers=HTML)).status_code == 200
    assert (await client.get(f"{pool_url}/redemptions.csv")).status_code == 200
