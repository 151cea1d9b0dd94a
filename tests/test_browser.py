"""The admin pages in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright,
against a real ``promopool serve`` started here. Sign in, create a pool, upload 10,000 codes, watch the
counts change, look up a code, change the settings (a low-stock webhook), see the delivery, and keep a
screenshot in ``test-artifacts/``."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import CHROMIUM, CHROMIUM_ARGS
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
