"""The admin pages in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright,
against a real ``promopool serve`` started here. Sign in, create a pool, upload 10,000 codes, watch the
counts change, look up a code, change the settings (a low-stock webhook), see the delivery, and keep a
screenshot in ``test-artifacts/``; then the pools list, search and the pool chart at 1280 and 390 px (the
screenshots kept in ``docs/screenshots/`` are copies of these)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.reliability.servers import FirstServe, first_serve
from tests.webhook_receiver import Receiver, webhook_receiver

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).parent.parent / "test-artifacts"
CODES = 10_000
NNBSP = "\u202f"  # the pages group thousands with a narrow no-break space


def number(n: int) -> str:
    return f"{n:,}".replace(",", NNBSP)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FirstServe]:
    with first_serve(tmp_path) as served:
        yield served


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as the_receiver:
        yield the_receiver


def test_admin_in_a_browser(server: FirstServe, receiver: Receiver, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium is not installed: apt-get install chromium")
    from playwright.sync_api import expect, sync_playwright

    codes_file = tmp_path / "spring.txt"
    codes_file.write_text("".join(f"SPRING-{i:05d}\n" for i in range(CODES)))
    api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.api_key}"})
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(20_000)
            page.goto(f"{server.url}/admin/")
            expect(page).to_have_url(f"{server.url}/admin/login")  # not signed in yet

            page.fill("input[name=api_key]", "pp_wrong")
            page.click("button[type=submit]")
            expect(page.locator(".banner.error")).to_contain_text("not known")
            page.fill("input[name=api_key]", server.api_key)
            page.click("button[type=submit]")
            expect(page.locator("h1")).to_have_text("Pools")
            expect(page.locator(".who")).to_contain_text("default")

            page.fill("input[name=name]", "spring-sale")
            page.click("button:has-text('Create pool')")
            expect(page.locator("h1")).to_contain_text("spring-sale")
            pool_id = int(page.url.rsplit("/", 1)[1])
            available = page.locator('.counts [data-count="available"]')
            expect(available).to_have_text("0")

            page.set_input_files("#upload input[type=file]", str(codes_file))
            page.click("#upload button[type=submit]")
            expect(page.locator("#upload .result")).to_contain_text(f"Imported {number(CODES)} new codes")
            expect(available).to_have_text(number(CODES))  # the counts change as soon as the upload is in

            claimed = [api.post(f"/v1/pools/{pool_id}/claim").json()["code"] for _ in range(3)]
            # Claims from elsewhere show up by themselves (the page refreshes its counts every 5 s).
            expect(available).to_have_text(number(CODES - 3))
            expect(page.locator('.counts [data-count="issued"]')).to_have_text("3")

            page.fill("input[name=code]", claimed[0])
            page.click("button:has-text('Look up')")
            result = page.locator("#lookup-result")
            expect(result).to_contain_text(claimed[0])
            expect(result.locator(".badge")).to_have_text("issued")
            expect(result.locator("ol.timeline")).to_contain_text("imported")

            page.fill("input[name=threshold]", str(CODES - 10))
            page.fill("input[name=webhook_url]", receiver.url)
            page.fill("input[name=max_uses]", "2")
            page.click("button:has-text('Save settings')")
            expect(page.locator(".banner.ok")).to_have_text("Settings saved.")
            expect(page.locator("input[name=max_uses]")).to_have_value("2")

            for _ in range(7):  # down to the threshold: one low-stock event
                assert api.post(f"/v1/pools/{pool_id}/claim").status_code == 200
            deadline = time.monotonic() + 20
            while not receiver.received:
                assert time.monotonic() < deadline, "the webhook did not arrive"
                time.sleep(0.1)
            page.reload()
            expect(page.locator("table.grid .badge")).to_have_text("delivered")
            expect(page.locator("h1 .badge")).to_have_text("low stock")
            page.click("details.secret summary")
            secret = page.locator("details.secret code").first.inner_text()
            assert receiver.received[0].signed_by(secret)

            page.fill("input[name=code]", claimed[0])
            page.click("button:has-text('Look up')")
            expect(page.locator("#lookup-result .badge")).to_have_text("issued")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "admin-pool.png"), full_page=True)
            page.goto(f"{server.url}/admin/")
            expect(page.locator(f'tr[data-pool="{pool_id}"] [data-count="available"]')).to_have_text(
                number(CODES - 10)
            )
            page.screenshot(path=str(ARTIFACTS / "admin-pools.png"), full_page=True)
        finally:
            browser.close()
            api.close()


def test_api_key_created_shown_once_and_revoked_in_a_browser(server: FirstServe, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium is not installed: apt-get install chromium")
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(20_000)
            page.goto(f"{server.url}/admin/login")
            page.fill("input[name=api_key]", server.api_key)
            page.click("button[type=submit]")
            page.click("nav a:has-text('API keys')")
            expect(page.locator("h1")).to_have_text("API keys")

            page.fill("#new-key input[name=name]", "browser-ci")
            page.check("#new-key input[name=read_only]")
            page.click("#new-key button[type=submit]")
            expect(page.locator("h1")).to_have_text("Key created")
            secret = page.locator("#secret").inner_text()
            assert secret.startswith("pp_")

            page.click("a:has-text('Back to the keys')")
            row = page.locator("#keys tr", has_text="browser-ci")
            expect(row).to_contain_text("read-only")
            assert secret not in page.content()  # shown once: never again
            row.locator("a:has-text('Revoke')").click()
            expect(page.locator("h1")).to_contain_text("browser-ci")
            page.click("#confirm-revoke")
            expect(page.locator(".banner.ok")).to_have_text("The key is revoked.")
            expect(page.locator("#keys")).not_to_contain_text("browser-ci")
        finally:
            browser.close()
    refused = httpx.get(f"{server.url}/v1/pools", headers={"Authorization": f"Bearer {secret}"})
    assert refused.status_code == 401


SCREEN_SIZES = {"wide": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


def _populate(api: httpx.Client) -> dict[str, int]:
    """Pools as a shop has them: one running low, one with an expiry, enough others for two pages."""

    def pool(name: str, **settings: object) -> int:
        response = api.post("/v1/pools", json={"name": name, **settings})
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def codes(pool_id: int, values: list[str]) -> None:
        body = "".join(f"{v}\n" for v in values).encode()
        response = api.post(
            f"/v1/pools/{pool_id}/codes", content=body, headers={"content-type": "text/plain"}
        )
        assert response.status_code == 200, response.text

    spring = pool("spring-sale")
    codes(spring, [f"SPRING-{i:05d}" for i in range(400)])
    summer = pool("summer-vip", expires_at="2031-08-31T23:59:00Z")
    codes(summer, [f"SUMMER-{i:04d}" for i in range(150)])
    for i in range(26):
        pool(f"promo-{i:02d}")
    assert api.patch(f"/v1/pools/{spring}", json={"low_stock_threshold": 390}).status_code == 200
    claimed = [api.post(f"/v1/pools/{spring}/claim").json()["code"] for _ in range(12)]
    for i, code in enumerate(claimed[:3]):
        body = {"code": code, "profile": "cust-42", "order_ref": f"ORD-100{i}"}
        assert api.post("/v1/codes/redeem", json=body).status_code == 201
    return {"spring": spring, "summer": summer}


def _no_horizontal_overflow(page: Any) -> None:
    """Nothing wider than the viewport, and no table wider than its card."""
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (
        "the page scrolls sideways"
    )
    overflowing = page.evaluate(
        "[...document.querySelectorAll('.card')].filter(c => c.scrollWidth > c.clientWidth + 1).length"
    )
    assert overflowing == 0, "a card's content runs out of it"


def test_search_pools_list_and_chart_at_both_widths(server: FirstServe, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium is not installed: apt-get install chromium")
    from playwright.sync_api import expect, sync_playwright

    api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.api_key}"})
    ids = _populate(api)
    ARTIFACTS.mkdir(exist_ok=True)
    off_server: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )

        def only_the_server(route: Any) -> None:  # anything else is recorded and refused
            if route.request.url.startswith(server.url):
                route.continue_()
            else:
                off_server.append(route.request.url)
                route.abort()

        browser.route("**/*", only_the_server)
        try:
            page = browser.new_page()
            page.set_default_timeout(20_000)
            page.goto(f"{server.url}/admin/login")
            page.fill("input[name=api_key]", server.api_key)
            page.click("button[type=submit]")
            expect(page.locator("h1")).to_have_text("Pools")
            for size, viewport in SCREEN_SIZES.items():
                page.set_viewport_size(viewport)
                page.goto(f"{server.url}/admin/")
                spring = page.locator(f'tr[data-pool="{ids["spring"]}"]')
                expect(spring.locator(".badge.warn")).to_have_text("low stock")  # 388 left, threshold 390
                expect(page.locator(f'tr[data-pool="{ids["summer"]}"]')).to_contain_text(
                    "2031-08-31 23:59 UTC"
                )
                expect(page.locator(".pager")).to_contain_text("28 pools · page 1 of 2")
                _no_horizontal_overflow(page)
                page.screenshot(path=str(ARTIFACTS / f"pools-{viewport['width']}.png"))

                page.fill("#pool-filters input[name=contains]", "promo-0")
                page.select_option("#pool-filters select[name=sort]", "name")
                page.check("#pool-filters input[name=desc]")
                page.click("#pool-filters button[type=submit]")
                expect(page.locator("#pools tbody tr")).to_have_count(10)
                expect(page.locator("#pools tbody tr").first).to_contain_text("promo-09")
                page.click("#pool-filters input[name=desc]")  # unchecked
                page.fill("#pool-filters input[name=contains]", "")
                page.check("#pool-filters input[name=low]")
                page.click("#pool-filters button[type=submit]")
                expect(page.locator("#pools tbody tr")).to_have_count(1)
                page.goto(f"{server.url}/admin/?page=2")
                expect(page.locator("#pools tbody tr")).to_have_count(3)
                page.click("a[rel=prev]")
                expect(page.locator("#pools tbody tr")).to_have_count(25)

                page.fill(".search-box input[name=q]", "spring-000")  # a prefix of 100 codes, typed loosely
                page.click(".search-box button[type=submit]")
                group = page.locator(f'.result-group[data-pool="{ids["spring"]}"]')
                expect(group.locator("table.codes tbody tr")).to_have_count(10)
                expect(group.locator(".more")).to_be_visible()
                _no_horizontal_overflow(page)
                page.fill(".search-box input[name=q]", "cust-42")
                page.click(".search-box button[type=submit]")
                expect(group.locator("table.redemptions tbody tr")).to_have_count(3)
                _no_horizontal_overflow(page)
                page.screenshot(path=str(ARTIFACTS / f"search-{viewport['width']}.png"))
                page.fill(".search-box input[name=q]", "ORD-1001")
                page.click(".search-box button[type=submit]")
                expect(group.locator("table.redemptions tbody tr")).to_have_count(1)
                group.locator("table.redemptions a").first.click()
                expect(page.locator("#lookup-result .badge").first).to_have_text("redeemed")

                page.goto(f"{server.url}/admin/pools/{ids['spring']}?days=7")
                chart = page.locator(f"svg.chart.{'wide' if size == 'wide' else 'narrow'}")
                expect(chart).to_be_visible()
                expect(chart.locator("text.today-label")).to_have_text("today")
                expect(chart.locator("polyline.forecast-line")).to_have_count(1)
                box = chart.bounding_box()
                assert box is not None and box["width"] <= viewport["width"]
                # Tick labels keep a readable size on screen at this width (11 px in the SVG).
                font = chart.locator("text.today-label").evaluate("t => t.getBoundingClientRect().height")
                assert font >= 10, font
                _no_horizontal_overflow(page)
                page.locator("#activity").screenshot(
                    path=str(ARTIFACTS / f"pool-chart-{viewport['width']}.png")
                )
                page.click("nav.range a:has-text('30 days')")
                expect(page.locator("#activity h2")).to_have_text("Activity, last 30 days")
                _no_horizontal_overflow(page)
        finally:
            browser.close()
            api.close()
    assert off_server == []
