"""The admin search page, the pools list (sort, filter, page, badges) and the activity chart, through an
in-process client on both engines."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx

from promopool import service
from promopool.domain import PoolSettings
from promopool.domain.listing import PER_PAGE
from promopool.storage import Store, open_store
from promopool.web.chart import activity_chart
from tests.conftest import Tenant
from tests.helpers import HTML, execute_sql, sign_in

Client = httpx.AsyncClient


def pool_names(html: str) -> list[str]:
    """The pool names of the list's rows, in order."""
    return re.findall(
        r'<tr data-pool="\d+">\s*<td data-label="Pool"><a href="/admin/pools/\d+">([^<]+)</a>', html
    )


async def test_search_page_groups_by_pool_and_links(client: Client, store: Store, tenant: Tenant) -> None:
    second = await service.create_pool(store, account=tenant.account, name="second", settings=PoolSettings())
    await service.import_codes(store, account=tenant.account, pool_id=second.id, values=["CODE00X"])
    await service.redeem(store, account=tenant.account, code="CODE004", profile="cust-9", order_ref="A-100")
    await sign_in(client, tenant.api_key)
    page = await client.get("/admin/search", params={"q": "code00"}, headers=HTML)
    assert page.status_code == 200
    groups = re.findall(r'class="card result-group" data-pool="(\d+)"', page.text)
    assert groups == [str(tenant.pool.id), str(second.id)]
    assert f'href="/admin/pools/{tenant.pool.id}?code=CODE004#lookup-result"' in page.text
    assert f'href="/admin/pools/{second.id}?code=CODE00X#lookup-result"' in page.text
    exact = await client.get("/admin/search", params={"q": "CODE004"}, headers=HTML)
    assert "match-code" in exact.text and "CODE005" not in exact.text
    by_order = await client.get("/admin/search", params={"q": "A-100"}, headers=HTML)
    assert "match-order" in by_order.text and "cust-9" in by_order.text and "CODE004" in by_order.text
    by_customer = await client.get("/admin/search", params={"q": "cust-9"}, headers=HTML)
    assert "match-profile" in by_customer.text and "A-100" in by_customer.text
    none = await client.get("/admin/search", params={"q": "zzz"}, headers=HTML)
    assert 'id="no-results"' in none.text
    bad = await client.get("/admin/search", params={"q": "x" * 300}, headers=HTML)
    assert bad.status_code == 400 and "longer than 200" in bad.text


async def test_search_page_shows_only_the_signed_in_account(
    client: Client, tenant: Tenant, other: Tenant
) -> None:
    await sign_in(client, tenant.api_key)
    for query in ("RIVAL", "RIVAL001", other.pool.name):
        page = await client.get("/admin/search", params={"q": query}, headers=HTML)
        assert page.status_code == 200 and 'id="no-results"' in page.text and "result-group" not in page.text
        assert f"/admin/pools/{other.pool.id}" not in page.text
    client.cookies.clear()  # and a session is needed
    assert (await client.get("/admin/search?q=CODE", headers=HTML)).status_code == 303


async def test_pools_list_sorts_filters_and_pages(client: Client, store: Store, tenant: Tenant) -> None:
    account = tenant.account
    for i in range(PER_PAGE + 4):
        expiry = datetime(2031, 1, 1, tzinfo=UTC) + timedelta(days=(i * 7) % 30)
        await service.create_pool(
            store, account=account, name=f"batch-{i:02d}", settings=PoolSettings(expires_at=expiry)
        )
    await sign_in(client, tenant.api_key)
    first = await client.get("/admin/", headers=HTML)
    names = pool_names(first.text)
    assert len(names) == PER_PAGE and names[0] == "acme-pool"  # by creation, oldest first
    assert "page 1 of 2" in first.text and 'rel="next"' in first.text and 'rel="prev"' not in first.text
    second = await client.get("/admin/?page=2", headers=HTML)
    assert pool_names(second.text) == [f"batch-{i:02d}" for i in range(PER_PAGE - 1, PER_PAGE + 4)]
    by_name = pool_names((await client.get("/admin/?sort=name&desc=1", headers=HTML)).text)
    assert by_name[:3] == ["batch-28", "batch-27", "batch-26"]
    by_expiry = pool_names((await client.get("/admin/?sort=expiry", headers=HTML)).text)
    assert by_expiry[:2] == ["batch-00", "batch-13"]  # 2031-01-01, then 13 * 7 % 30 = 1 day later
    last_page = pool_names((await client.get("/admin/?sort=expiry&page=2", headers=HTML)).text)
    assert last_page[-1] == "acme-pool"  # no expiry: last
    by_available = pool_names((await client.get("/admin/?sort=available&desc=1", headers=HTML)).text)
    assert by_available[0] == "acme-pool"  # the only pool with codes
    filtered = await client.get("/admin/?contains=CH-1", headers=HTML)
    assert pool_names(filtered.text) == [f"batch-{i}" for i in range(10, 20)]
    escaped = await client.get("/admin/?contains=%25", headers=HTML)  # LIKE's wildcard is a plain character
    assert pool_names(escaped.text) == [] and 'id="no-pools"' in escaped.text
    assert (await client.get("/admin/?sort=colour", headers=HTML)).status_code == 400
    assert (await client.get("/admin/?page=0", headers=HTML)).status_code == 400


async def test_pools_list_low_stock_badge_and_filter(client: Client, store: Store, tenant: Tenant) -> None:
    account = tenant.account
    calm = await service.create_pool(store, account=account, name="calm", settings=PoolSettings())
    await service.import_codes(store, account=account, pool_id=calm.id, values=[f"C{i}" for i in range(20)])
    await service.set_low_stock_alert(store, account=account, pool_id=calm.id, threshold=15, webhook_url=None)
    await service.set_low_stock_alert(
        store, account=account, pool_id=tenant.pool.id, threshold=10, webhook_url=None
    )  # 10 available: at the threshold is low
    await sign_in(client, tenant.api_key)
    page = await client.get("/admin/", headers=HTML)
    rows = dict(re.findall(r'<tr data-pool="(\d+)">(.*?)</tr>', page.text, re.S))
    assert "low stock" in rows[str(tenant.pool.id)] and "low stock" not in rows[str(calm.id)]
    assert pool_names((await client.get("/admin/?low=1", headers=HTML)).text) == ["acme-pool"]
    for _ in range(5):
        await service.claim(store, account=account, pool_id=calm.id)
    assert pool_names((await client.get("/admin/?low=1", headers=HTML)).text) == ["acme-pool", "calm"]
    created = tenant.pool.created_at.strftime("%Y-%m-%d")
    assert f"<time>{created}</time>" in page.text and "never" in page.text


def svg_of(html: str, kind: str) -> str:
    found = re.search(rf'<svg class="chart {kind}".*?</svg>', html, re.S)
    assert found is not None
    return found.group(0)


async def test_chart_plots_each_series_and_labels_today(client: Client, store: Store, tenant: Tenant) -> None:
    account, pool = tenant.account, tenant.pool.id
    for _ in range(3):
        await service.claim(store, account=account, pool_id=pool)
    await service.redeem(store, account=account, code="CODE000")
    await sign_in(client, tenant.api_key)
    for days in (7, 30, 90):
        page = await client.get(f"/admin/pools/{pool}?days={days}", headers=HTML)
        assert page.status_code == 200 and f"Activity, last {days} days" in page.text
        for kind in ("wide", "narrow"):
            svg = svg_of(page.text, kind)
            assert re.search(r'class="tick today-label"[^>]*>today</text>', svg), (days, kind)
            assert ("Claims and redemptions" if kind == "wide" else "Claims, redemptions") in svg
            assert ("Codes imported" if kind == "wide" else "Imported") in svg
            assert "3 claimed, 1 redeemed" in svg and "10 imported" in svg  # the current bucket's tooltips
            assert 'class="stock-line"' in svg and 'class="forecast-line"' in svg
            labels = re.findall(
                r'<text class="tick[^"]*" x="([\d.]+)"[^>]*text-anchor="(\w+)">([^<]+)</text>', svg
            )
            width = float(re.search(r'viewBox="0 0 (\d+)', svg).group(1))  # type: ignore[union-attr]
            for x, anchor, text in labels:  # every label inside the picture
                extent = len(text) * 6.4
                assert float(x) - (extent if anchor == "end" else 0) >= 0 and (
                    float(x) + (0 if anchor == "end" else extent) <= width + 1
                ), (days, kind, text)
        per = "hour" if days == 7 else "day"
        assert f"per {per}, UTC" in page.text and f'?days={days}#activity" aria-current="page"' in page.text
    assert "runs out" in page.text  # 7 left at 3 a day: within the 90-day chart's forecast zone
    assert (await client.get(f"/admin/pools/{pool}?days=12", headers=HTML)).status_code == 400


async def test_imports_are_counted_in_the_activity(store: Store, tenant: Tenant) -> None:
    await service.import_codes(
        store, account=tenant.account, pool_id=tenant.pool.id, values=["N1", "N2", "CODE001"]
    )
    series = await service.activity_series(store, account=tenant.account, pool_id=tenant.pool.id, days=7)
    assert series.buckets[-1].imports == 12 and len(series.buckets) == 168  # 10 + 2 new, the duplicate not
    assert series.buckets[-1].stock == 12 and series.buckets[-2].stock == 0  # nothing before the imports
    await execute_sql(store, "UPDATE pool_activity SET imports = 0")
    daily = await service.activity_series(store, account=tenant.account, pool_id=tenant.pool.id, days=30)
    assert len(daily.buckets) == 30 and daily.buckets[-1].imports == 0


async def test_activity_series_buckets_days_and_estimates_stock(database_url: str) -> None:
    clock = [datetime(2026, 3, 10, 15, 30, tzinfo=UTC)]
    store = open_store(database_url, clock=lambda: clock[0])
    await store.connect()
    await store.migrate()
    try:
        new = await service.create_account(store, name="shop")
        account = new.account
        pool = await service.create_pool(store, account=account, name="p", settings=PoolSettings())
        clock[0] -= timedelta(days=3)  # 7 March, 15:30
        await service.import_codes(
            store, account=account, pool_id=pool.id, values=[f"C{i}" for i in range(100)]
        )
        for _ in range(10):
            await service.claim(store, account=account, pool_id=pool.id)
        clock[0] += timedelta(days=2, hours=9)  # 10 March, 00:30
        for _ in range(5):
            await service.claim(store, account=account, pool_id=pool.id)
        clock[0] += timedelta(hours=15)  # back to 10 March, 15:30
        daily = await service.activity_series(store, account=account, pool_id=pool.id, days=30)
        assert daily.buckets[-1].start == datetime(2026, 3, 10, tzinfo=UTC) and len(daily.buckets) == 30
        assert [(b.imports, b.claims, b.stock) for b in daily.buckets[-5:]] == [
            (0, 0, 0),
            (100, 10, 90),  # 7 March
            (0, 0, 90),
            (0, 0, 90),
            (0, 5, 85),  # today
        ]
        hourly = await service.activity_series(store, account=account, pool_id=pool.id, days=7)
        assert hourly.buckets[-1].start == datetime(2026, 3, 10, 15, tzinfo=UTC)
        assert hourly.buckets[-16].claims == 5 and hourly.buckets[-16].start.hour == 0
        assert hourly.buckets[-73].imports == 100 and hourly.buckets[-74].stock == 0
        chart = activity_chart(daily)
        assert [t.label for t in chart.ticks if t.today] == ["today"]
        assert chart.runout is None or chart.runout.x <= chart.right
    finally:
        await store.close()


async def test_pools_list_fallback_badges(client: Client, store: Store, tenant: Tenant) -> None:
    account = tenant.account
    spare = await service.create_pool(store, account=account, name="spare", settings=PoolSettings())
    await service.import_codes(store, account=account, pool_id=spare.id, values=["S1", "S2"])
    shared = await service.create_pool(store, account=account, name="shared", settings=PoolSettings())
    await service.update_pool(store, account=account, pool_id=shared.id, fallback_code="WELCOME10")
    await service.update_pool(store, account=account, pool_id=tenant.pool.id, fallback_pool_id=spare.id)
    await sign_in(client, tenant.api_key)

    async def badges() -> dict[str, str]:
        page = await client.get("/admin/", headers=HTML)
        return dict(re.findall(r'<tr data-pool="(\d+)">(.*?)</tr>', page.text, re.S))

    rows = await badges()
    assert ">fallback</span>" in rows[str(shared.id)] and "a shared code" in rows[str(shared.id)]
    assert f"falls back to pool #{spare.id}" in rows[str(tenant.pool.id)]
    assert "fallback" not in rows[str(spare.id)] and "serving fallback" not in rows[str(tenant.pool.id)]
    for _ in range(11):  # 10 codes, then the fallback pool serves
        await service.claim_with_fallback(store, account=account, pool_id=tenant.pool.id)
    assert "serving fallback" in (await badges())[str(tenant.pool.id)]
