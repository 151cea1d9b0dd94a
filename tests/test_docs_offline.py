"""The API docs page (/docs/) in a real browser, offline: Swagger UI comes from the server itself (the
installed package's files), renders every operation of the document, and the page asks nothing of any other
origin. Against a real ``promopool serve`` on each engine."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.reliability.servers import Server

pytestmark = pytest.mark.slow

METHODS = {"get", "put", "post", "delete", "patch"}


def test_docs_page_renders_offline(database_url: str, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium is not installed: apt-get install chromium")
    from playwright.sync_api import expect, sync_playwright

    with Server(database_url, tmp_path / "server.log") as server:
        server.start()
        document = httpx.get(f"{server.url}/openapi.json").json()
        operations = sum(1 for item in document["paths"].values() for method in item if method in METHODS)
        requested: list[str] = []
        failed: list[str] = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.set_default_timeout(20_000)
                page.on("request", lambda request: requested.append(request.url))
                page.on("requestfailed", lambda request: failed.append(f"{request.url}: {request.failure}"))
                page.goto(f"{server.url}/docs/")
                expect(page.locator(".swagger-ui .info .title")).to_contain_text("promopool")
                blocks = page.locator(".opblock")
                expect(blocks).to_have_count(operations)
                generate = page.locator("#operations-generation-V1PoolsPoolIdGenerateGenerate")
                expect(generate).to_contain_text("/v1/pools/{pool_id}/generate")
                generate.locator(".opblock-summary").click()  # opened: its responses, 409 included
                expect(generate.locator(".responses-table")).to_contain_text("409")
                page.wait_for_load_state("networkidle")
            finally:
                browser.close()
    origin = urlsplit(server.url)
    assert requested, "the browser recorded no request"
    elsewhere = [url for url in requested if urlsplit(url)[:2] != origin[:2]]
    assert not elsewhere, f"the docs page asked other origins: {elsewhere}"
    assert not failed, failed
