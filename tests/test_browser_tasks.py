"""The admin pages of a pool's daily work (issue 20) in headless Chromium, at 1280 px and at 390 px, on both
engines, against a real ``promopool serve``: generate (refused, then a job followed to its end), export,
redemptions (filter, CSV), a read-only session, a 404, delete. Every page must fit the width, and no page
may request anything off the server. Screenshots go to ``$SCREENSHOTS_DIR`` (default ``test-artifacts/``)."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.browser import chromium, fits_width, off_server, record_errors, record_requests
from tests.reliability.servers import FirstServe, first_serve

pytestmark = pytest.mark.slow

SHOTS = Path(os.environ.get("SCREENSHOTS_DIR") or Path(__file__).parent.parent / "test-artifacts")
MAX_SHOT_BYTES = 150_000
GENERATED = 250_000  # five batches (50,000 each): running when its page opens, the bar moves
NNBSP = "\u202f"


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[FirstServe]:
    with first_serve(tmp_path, database_url) as served:
        yield served


@pytest.mark.parametrize("width", [1280, 390])
def test_daily_work_in_a_browser(server: FirstServe, database_url: str, tmp_path: Path, width: int) -> None:
    from playwright.sync_api import Page, expect

    api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.api_key}"})
    pool_id = api.post("/v1/pools", json={"name": "spring-sale"}).json()["id"]
    viewer = api.post("/v1/keys", json={"name": "viewer", "read_only": True}).json()["api_key"]
    shoot = database_url.startswith("sqlite")  # one set of pictures is enough

    def look(page: Page, name: str) -> None:
        """The page fits the width; kept as a small picture."""
        assert fits_width(page), f"{name} runs out of {width} px"
        if not shoot:
            return
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"admin-{name}-{width}.png"
        page.screenshot(path=str(path), full_page=True)
        if path.stat().st_size > MAX_SHOT_BYTES:  # a long page: its top is what tells
            page.screenshot(path=str(path), clip={"x": 0, "y": 0, "width": width, "height": 1100})
        assert path.stat().st_size < MAX_SHOT_BYTES, name

    def sign_in(page: Page, key: str) -> None:
        page.goto(f"{server.url}/")
        expect(page).to_have_url(f"{server.url}/admin/login")  # / leads to the admin pages
        page.fill("input[name=api_key]", key)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Pools")

    try:
        with chromium(tmp_path / "profile", width=width) as browser:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            requests = record_requests(page)
            errors = record_errors(page)
            sign_in(page, server.api_key)
            page.goto(f"{server.url}/admin/pools/{pool_id}")
            look(page, "pool")

            # A refused upload names the line, and keeps the file chosen for another try.
            bad = tmp_path / "codes.txt"
            bad.write_text("GOOD-1\nGOOD-2\nBAD\x01\n")
            page.set_input_files("#upload input[type=file]", str(bad))
            page.click("#upload button[type=submit]")
            expect(page.locator("#upload .result")).to_contain_text("the first at line 3")
            assert page.eval_on_selector("#upload input[type=file]", "input => input.files.length") == 1

            # Generate: refused with the key-space check's message, the form as typed; then a job.
            page.click("nav.tasks a:has-text('Generate codes')")
            page.fill("input[name=pattern]", "SPR-##")
            page.select_option("select[name=charset]", "digits")
            page.fill("input[name=count]", "50")
            page.click("#generate button[type=submit]")
            expect(page.locator(".banner.error")).to_contain_text("at most 0 more fit")
            expect(page.locator("input[name=pattern]")).to_have_value("SPR-##")
            expect(page.locator("select[name=charset]")).to_have_value("digits")
            look(page, "generate-refused")
            page.fill("input[name=pattern]", "SPR-############")
            page.fill("input[name=count]", str(GENERATED))
            page.click("#generate button[type=submit]")
            expect(page.locator("#job h1")).to_contain_text("Generating")
            # The page follows the job by itself (job.js); a shared box may take a while to generate.
            expect(page.locator('#job [data-field="state"]')).to_have_text("succeeded", timeout=120_000)
            expect(page.locator('#job [data-field="done"]')).to_have_text(
                f"{GENERATED:,}".replace(",", NNBSP)
            )
            assert page.eval_on_selector("#job progress", "bar => bar.value === bar.max")
            assert any(url.endswith("/progress.json") for url in requests)  # followed by job.js, not reloaded
            look(page, "job")

            # Export the issued codes, as JSON lines.
            claimed = [api.post(f"/v1/pools/{pool_id}/claim").json()["code"] for _ in range(3)]
            page.goto(f"{server.url}/admin/pools/{pool_id}")
            page.click("nav.tasks a:has-text('Export')")
            page.select_option("select[name=state]", "issued")
            page.select_option("select[name=format]", "jsonl")
            look(page, "export")
            with page.expect_download() as download:
                page.click("#export button[type=submit]")
            lines = Path(download.value.path()).read_text().splitlines()
            assert sorted(json.loads(line)["code"] for line in lines) == sorted(claimed)

            # Redemptions: filter by profile, download the filtered list.
            for code, profile in zip(claimed, ("alice", "bob", "alice"), strict=True):
                redeemed = api.post(
                    "/v1/codes/redeem", json={"code": code, "profile": profile, "order_ref": f"o-{code}"}
                )
                assert redeemed.status_code == 201, redeemed.text
            page.goto(f"{server.url}/admin/pools/{pool_id}")
            page.click("nav.tasks a:has-text('Redemptions')")
            expect(page.locator("#redemptions tbody tr")).to_have_count(3)
            page.fill("#filter input[name=profile]", "alice")
            page.click("#filter button[type=submit]")
            expect(page.locator("#redemptions tbody tr")).to_have_count(2)
            expect(page.locator("#filter input[name=profile]")).to_have_value("alice")
            look(page, "redemptions")
            with page.expect_download() as download:
                page.click("#redemptions-csv")
            with Path(download.value.path()).open() as file:
                rows = list(csv.DictReader(file))
            assert {row["profile"] for row in rows} == {"alice"} and len(rows) == 2

            page.goto(f"{server.url}/admin/keys/")
            assert fits_width(page), f"the API keys page runs out of {width} px"

            # An unknown admin path is a page.
            page.goto(f"{server.url}/admin/no/such/page")
            expect(page.locator("h1")).to_have_text("Page not found")
            look(page, "not-found")

            # A read-only session: no action links, the action pages refused.
            page.click("a:has-text('Back to the pools')")
            page.click("button:has-text('Sign out')")
            sign_in(page, viewer)
            page.goto(f"{server.url}/admin/pools/{pool_id}")
            tasks = page.locator("nav.tasks")
            expect(tasks).to_contain_text("Export")
            expect(tasks).not_to_contain_text("Generate")
            expect(tasks).not_to_contain_text("Delete")
            expect(page.locator("#upload")).to_have_count(0)
            expect(page.locator("#settings input[name=name]")).to_be_disabled()
            look(page, "pool-read-only")
            for action in ("generate", "delete"):
                response = page.goto(f"{server.url}/admin/pools/{pool_id}/{action}")
                assert response is not None and response.status == 403
                expect(page.locator("main")).to_contain_text("read-only")
            page.goto(f"{server.url}/admin/")
            page.click("button:has-text('Sign out')")

            # Delete, after a confirmation naming the counts.
            sign_in(page, server.api_key)
            page.goto(f"{server.url}/admin/pools/{pool_id}")
            page.click("nav.tasks a:has-text('Delete pool')")
            doomed = page.locator("#doomed")
            expect(doomed.locator('[data-count="available"]')).to_have_text(
                f"{GENERATED - 3:,}".replace(",", NNBSP)
            )
            expect(doomed.locator('[data-count="redeemed"]')).to_have_text("3")
            look(page, "delete")
            page.click("#confirm-delete")
            expect(page.locator("h1")).to_have_text("Pool deleted")
            assert api.get(f"/v1/pools/{pool_id}").status_code == 404

            assert requests, "no request was recorded"
            assert off_server(requests, server.url) == []
            # The 403s and the 404 asked for on purpose, and the refused upload, are the only errors.
            assert [e for e in errors if "Failed to load resource" not in e] == []
    finally:
        api.close()
