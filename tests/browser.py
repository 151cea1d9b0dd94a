"""Driving headless Chromium (Debian's ``chromium``) with Playwright, for the browser tests: the browser's
path and flags, skipping where it is not installed (failing in CI), and what a page asked of the network."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium is not installed: apt-get install chromium")


@contextmanager
def chromium(profile: Path, *, width: int, height: int = 900) -> Iterator[BrowserContext]:
    """A fresh headless Chromium profile with a ``width`` by ``height`` viewport."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": width, "height": height},
            accept_downloads=True,
        )
        try:
            yield browser
        finally:
            browser.close()


def record_requests(page: Page) -> list[str]:
    """Every URL the page requests from now on (documents, scripts, styles, images, fetches)."""
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    return urls


def record_errors(page: Page) -> list[str]:
    """Every script error and console error from now on: a Content-Security-Policy violation (an inline
    script or style, an off-server URL the policy blocked before any request) is reported there."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    return errors


def off_server(urls: list[str], server_url: str) -> list[str]:
    """The URLs that went anywhere but the server (a page's own data: URLs stay on the page)."""
    return [url for url in urls if not url.startswith((f"{server_url}/", "data:", "blob:"))]


def fits_width(page: Page) -> bool:
    """Nothing on the page runs out of the viewport sideways (a wide table scrolls in its own box)."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))
