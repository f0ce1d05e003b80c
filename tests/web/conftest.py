"""Chromium for the browser tests: Debian's, driven by Playwright, never downloaded.

    async def test_x(browser: Browser) -> None: ...     # one Chromium per module
    async with open_page(browser) as page: ...           # a page in a context of its own

Screenshots and PDFs go to `test-artifacts/` at the repository root (ARTIFACTS).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.cli import ROOT

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
WAIT_MS = 15_000  # how long a page waits for what a test expects of it


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the browser tests drive Debian's Chromium (`make browser` "
                    "installs it; never `playwright install`)", pytrace=False)
    ARTIFACTS.mkdir(exist_ok=True)
    return CHROMIUM


@pytest.fixture(scope="module")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(chromium), args=FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


@contextlib.asynccontextmanager
async def open_page(browser: Browser, *, height: int = 900, **options: Any) -> AsyncIterator[Page]:
    """A page in a context of its own (1280 wide, Vietnamese locale; `options` for
    `new_context`), waiting WAIT_MS by default; the context is closed after."""
    context = await browser.new_context(viewport={"width": 1280, "height": height}, locale="vi-VN", **options)
    try:
        page = await context.new_page()
        page.set_default_timeout(WAIT_MS)
        yield page
    finally:
        await context.close()
