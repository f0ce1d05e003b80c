"""The emergency stop in Debian's Chromium, against a real `displayd serve` (SQLite): an
approver starts it from the dashboard, every tile goes blank under a red banner, boards'
polls answer idle; lifting brings the slogans back. A stop started elsewhere (the API)
reaches an open dashboard without anyone reloading it. Screenshots go to `test-artifacts/`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from playwright.async_api import Browser, Page

from tests.web.conftest import ARTIFACTS, open_page
from tests.web.live import Live, populate, prepare

BANNER = "section.estop"
REASON = "Sự cố nội dung: tạm tắt mọi bảng"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    live = prepare(tmp_path_factory.mktemp("estop"))
    try:
        populate(live)
        yield live
    finally:
        live.stop()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    async with open_page(browser) as page:
        yield page


async def sign_in(page: Page, live: Live, who: str) -> None:
    await page.goto(f"{live.url}/ui/login")
    await page.fill("#key", live.keys[who])
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{live.url}/ui")


def poll_state(live: Live, board_id: str) -> str:
    response = httpx.get(f"{live.url}/api/v1/boards/{board_id}/current", timeout=10,
                         headers={"Authorization": f"Bearer {live.boards[board_id]['token']}"})
    assert response.status_code == 200, response.text
    state: str = response.json()["state"]
    return state


async def captions(page: Page) -> list[str]:
    return [text or "" for text in await page.locator(".tile .caption").all_text_contents()]


async def test_an_approver_stops_and_lifts_from_the_dashboard(page: Page, live: Live) -> None:
    await sign_in(page, live, "approver")
    await page.wait_for_function("() => document.querySelectorAll('.tile').length === 4")
    assert await page.locator(BANNER).count() == 0
    assert await asyncio.to_thread(poll_state, live, "sanh-chinh") == "showing"

    await page.click("details.estop-start > summary")
    await page.fill("#estop-reason", REASON)
    await page.screenshot(path=ARTIFACTS / "web-estop-start.png")
    await page.click("text=Tắt mọi bảng ngay")
    await page.wait_for_url(f"{live.url}/ui")
    banner = page.locator(BANNER)
    await banner.wait_for()
    text = await banner.text_content() or ""
    assert "DỪNG KHẨN CẤP: mọi bảng đang tắt" in text and REASON in text and "Lãnh đạo Sở" in text
    # Chromium sent its own Origin and Sec-Fetch-Site: the form was taken as ours.
    await page.wait_for_function(
        "() => [...document.querySelectorAll('.tile .caption')].every(c => c.textContent.includes('dừng khẩn cấp'))")
    assert not any(text.strip() for text in await page.locator(".tile .led").all_text_contents())
    await page.screenshot(path=ARTIFACTS / "web-estop-banner.png", full_page=True)
    for board_id in ("sanh-chinh", "cong-truoc", "bang-thu"):
        assert await asyncio.to_thread(poll_state, live, board_id) == "idle"
    assert live.api("GET", "/api/v1/emergency-stop")["reason"] == REASON

    await page.click("details.estop-lift > summary")
    await page.click("text=Xác nhận: cho mọi bảng chạy lại")
    await page.wait_for_url(f"{live.url}/ui")
    assert await page.locator(BANNER).count() == 0
    await page.wait_for_function(
        "(texts) => texts.includes(document.querySelector('.tile[data-board=\"sanh-chinh\"] .caption')?.textContent)",
        arg=list(live.slogans.values()))
    assert await asyncio.to_thread(poll_state, live, "sanh-chinh") == "showing"
    assert live.api("GET", "/api/v1/emergency-stop") == {"active": False}


async def test_an_open_dashboard_learns_of_a_stop_by_itself(page: Page, live: Live) -> None:
    await sign_in(page, live, "admin")
    await page.wait_for_function("() => document.querySelectorAll('.tile').length === 4")
    assert await page.locator(BANNER).count() == 0
    stop = live.api("POST", "/api/v1/emergency-stop", who="approver", body={"reason": "Dừng từ API"})
    await page.locator(BANNER).wait_for()  # within one refresh (5 s): the page loads itself again
    assert "Dừng từ API" in (await page.locator(BANNER).text_content() or "")
    assert await page.get_attribute(BANNER, "data-stop") == str(stop["id"])
    live.api("DELETE", "/api/v1/emergency-stop", who="admin")
    await page.locator(BANNER).wait_for(state="detached")
    assert await page.locator("details.estop-start").count() == 1  # an admin may start one again
