"""Chromium for the browser tests: Debian's, driven by Playwright, never downloaded.

    async def test_x(browser: Browser) -> None: ...     # one Chromium per module

Screenshots and PDFs go to `test-artifacts/` at the repository root (ARTIFACTS).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.cli import ROOT

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


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
