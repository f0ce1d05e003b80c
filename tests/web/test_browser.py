"""The dashboard and the web player in Debian's Chromium, against a real `displayd serve`.

One displayd (SQLite, 5-second slots) serves every scenario of this module; the player's
restart test runs last because it stops and starts that process on the same port.
Screenshots go to `test-artifacts/` at the repository root.
"""

from __future__ import annotations

import asyncio
import time
import unicodedata
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, Response, Route

from tests.web.conftest import ARTIFACTS, WAIT_MS, open_page
from tests.web.live import XSS_TEXT, Live, populate, prepare


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    live = prepare(tmp_path_factory.mktemp("web"))
    try:
        populate(live)
        yield live
    finally:
        live.stop()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    async with open_page(browser, accept_downloads=True) as page:
        yield page


async def sign_in(page: Page, live: Live) -> None:
    await page.goto(f"{live.url}/ui")
    assert page.url.endswith("/ui/login")
    await page.fill("#key", live.keys["admin"])
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{live.url}/ui")
    assert live.keys["admin"] not in page.url


def tile(board_id: str) -> str:
    return f'.tile[data-board="{board_id}"]'


async def test_sign_in_and_watch_a_board_change_slogan(page: Page, live: Live) -> None:
    await page.goto(f"{live.url}/ui/login")
    await page.screenshot(path=ARTIFACTS / "web-login.png")
    await sign_in(page, live)
    caption = f"{tile('sanh-chinh')} .caption"
    await page.wait_for_function(
        "([sel, texts]) => texts.includes(document.querySelector(sel)?.textContent)",
        arg=[caption, list(live.slogans.values())], timeout=WAIT_MS)
    first = await page.text_content(caption)
    led = await page.text_content(f"{tile('sanh-chinh')} .led")
    assert led and led.split()[0] in (first or "")
    assert await page.text_content(f"{tile('sanh-chinh')} .badge") in ("Ổn", "Chưa lấy tin")
    assert "Bảng sảnh chính" in (await page.text_content(tile("sanh-chinh")) or "")
    # The next slot comes within 5 s and the grid refreshes every 5 s.
    await page.wait_for_function("([sel, was]) => document.querySelector(sel).textContent !== was",
                                 arg=[caption, first], timeout=WAIT_MS)
    assert await page.text_content(caption) in live.slogans.values()
    await page.screenshot(path=ARTIFACTS / "web-dashboard.png", full_page=True)
    cookies = await page.context.cookies()
    assert all(live.keys["admin"] not in c["value"] for c in cookies)
    assert [c["httpOnly"] for c in cookies if c["name"] == "displayd_session"] == [True]

    await page.click("text=Kế hoạch tuần này")
    await page.wait_for_url(f"{live.url}/ui/plan")
    assert "Kỷ niệm 70 năm Chiến thắng Điện Biên Phủ" in (await page.text_content("main") or "")
    await page.screenshot(path=ARTIFACTS / "web-plan.png", full_page=True)


def wait_for_log_rows(live: Live, boards: list[str]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if all(live.api("GET", f"/api/v1/rotations?board_id={b}&limit=1")["items"] for b in boards):
            return
        time.sleep(0.5)
    raise AssertionError(f"no rotation rows for {boards} after 15 s")


async def test_filter_the_log_and_download_csv(page: Page, live: Live) -> None:
    await asyncio.to_thread(wait_for_log_rows, live, ["sanh-chinh", "cong-truoc"])
    await sign_in(page, live)
    await page.goto(f"{live.url}/ui/log")
    await page.wait_for_selector("#rows tr[data-board]")
    assert {await r.get_attribute("data-board") for r in await page.query_selector_all("#rows tr")} >= {
        "sanh-chinh", "cong-truoc"}

    await page.select_option("#f-board", "sanh-chinh")  # a choice filters at once (the form submits)
    await page.wait_for_url("**/ui/log?board_id=sanh-chinh*")
    await page.wait_for_selector("#rows tr[data-board]")
    boards = {await r.get_attribute("data-board") for r in await page.query_selector_all("#rows tr")}
    assert boards == {"sanh-chinh"}
    assert "Bảng sảnh chính" in (await page.text_content("#rows") or "")
    headings = [(await th.text_content() or "") for th in await page.query_selector_all("#log thead th")]
    assert headings[7:9] == ["Số lần thử", "Bản sửa"]
    revisions = [(await td.text_content() or "") for td in await page.query_selector_all("#rows td:nth-child(9)")]
    assert revisions and all(r.isdigit() for r in revisions), revisions
    await page.screenshot(path=ARTIFACTS / "web-log.png", full_page=True)

    href = await page.get_attribute("#csv", "href")
    assert href is not None and "format=csv" in href and "board_id=sanh-chinh" in href
    async with page.expect_download() as info:
        await page.click("#csv")
    data = await asyncio.to_thread(Path(await (await info.value).path()).read_bytes)
    assert data.startswith(b"\xef\xbb\xbf")
    lines = data.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("id,board_id,campaign_id")
    assert len(lines) > 1 and all(",sanh-chinh," in line for line in lines[1:])

    # The rotation CSV holds ids only; the airtime report carries the slogans' Vietnamese text.
    async with page.expect_download() as info:
        await page.click("#airtime")
    report = await asyncio.to_thread(Path(await (await info.value).path()).read_bytes)
    assert report.startswith(b"\xef\xbb\xbf")
    assert "Điện Biên Phủ" in report.decode("utf-8-sig")


async def test_a_stream_board_shows_its_delivery_and_lead(page: Page, live: Live) -> None:
    live.boards["bang-4g"] = await asyncio.to_thread(live.api, "POST", "/api/v1/boards", body={
        "id": "bang-4g", "name": "Bảng qua 4G", "delivery": "stream", "lead_seconds": 20})
    await sign_in(page, live)
    await page.wait_for_selector(tile("bang-4g"))
    assert await page.text_content(f"{tile('bang-4g')} .delivery") == "luồng · gửi trước 20 giây"
    assert await page.text_content(f"{tile('bang-4g')} .push") == "không đẩy (bảng nhận luồng)"
    assert await page.text_content(f"{tile('sanh-chinh')} .delivery") == "tự lấy", "no lead, nothing added"


async def test_markup_in_a_slogan_shows_as_text(page: Page, live: Live) -> None:
    await sign_in(page, live)
    caption = f"{tile('bang-thu')} .caption"
    await page.wait_for_function("([sel, text]) => document.querySelector(sel)?.textContent === text",
                                 arg=[caption, XSS_TEXT], timeout=WAIT_MS)
    assert "<b>Đậm</b>" in (await page.text_content(f"{tile('bang-thu')} .led") or "")
    assert await page.locator("#grid b, #grid script").count() == 0
    assert await page.evaluate("window.__xss") is None
    await page.locator(tile("bang-thu")).screenshot(path=ARTIFACTS / "web-xss-dashboard.png")

    board = live.boards["bang-thu"]
    await page.goto(f"{live.url}/play/bang-thu?token={board['token']}")
    # A function, not a bare expression: polling an expression needs eval, which the page's CSP forbids.
    await page.wait_for_function("() => document.getElementById('page').textContent.includes('<script>')",
                                 timeout=WAIT_MS)
    assert await page.locator("#page b, #page script").count() == 0
    assert await page.evaluate("window.__xss") is None
    await page.screenshot(path=ARTIFACTS / "web-xss-player.png")


# The player shows one line per element; joined with spaces they give the slogan back.
LINES = "Array.from(document.getElementById('page').children, (line) => line.textContent).join(' ')"


async def player_text(page: Page) -> str:
    return str(await page.evaluate(LINES))


# Draws each character in displayd's font with two very different fallbacks behind it: the
# widths agree only where displayd's font drew the character itself.
FONT_PROBE = """async (chars) => {
  const faces = [["displayd Mono", ""], ["displayd Sans", ""], ["displayd Sans", "bold "]];
  for (const [family, weight] of faces) await document.fonts.load(`${weight}40px "${family}"`, chars.join(""));
  const context = document.createElement("canvas").getContext("2d");
  const width = (font, text) => { context.font = font; return context.measureText(text).width; };
  const report = {};
  for (const [family, weight] of faces) {
    const font = `${weight}40px "${family}"`;
    report[font] = {
      fallback: chars.filter((c) => width(`${font}, monospace`, c) !== width(`${font}, cursive`, c)),
      check: document.fonts.check(font, chars.join("")),
    };
  }
  report.loaded = [...document.fonts].filter((f) => f.family.includes("displayd") && f.status === "loaded").length;
  return report;
}"""


async def test_the_shipped_fonts_draw_every_slogan_character(page: Page, live: Live) -> None:
    """No font on the machine is needed: displayd's own woff2 draws every section IV character,
    so a stacked diacritic ("ế", "ồ") is never assembled from a fallback's loose marks."""
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    await sign_in(page, live)
    texts = [unicodedata.normalize("NFC", text) for text in live.slogans.values() if text != XSS_TEXT]
    chars = sorted(set("".join(texts)) - {" "})
    assert {"ế", "ồ", "Đ", "ă", "ủ"} <= set(chars)
    report = await page.evaluate(FONT_PROBE, chars)
    assert report.pop("loaded") >= 3, "the Latin and Vietnamese faces came from displayd"
    for font, seen in report.items():
        assert seen == {"fallback": [], "check": True}, font
    assert all(url.startswith(live.url) for url in requests), "no font or style from another host"

    caption = f"{tile('sanh-chinh')} .caption"
    await page.wait_for_function("([sel, texts]) => texts.includes(document.querySelector(sel)?.textContent)",
                                 arg=[caption, list(live.slogans.values())], timeout=WAIT_MS)
    shown = await page.eval_on_selector(f"{tile('sanh-chinh')}",
                                        "(tile) => [tile.querySelector('.caption').textContent, "
                                        "[...tile.querySelectorAll('.led-line')].map((l) => l.textContent)]")
    text, lines = shown
    led = " ".join(" ".join(lines).split())
    assert led == unicodedata.normalize("NFC", led), "the LED holds NFC text"
    assert led and led in " ".join(unicodedata.normalize("NFC", text).split()), (led, text)


async def test_the_player_polls_displayd_when_the_stream_is_missing(page: Page, live: Live) -> None:
    """The stream answers 404 (an older displayd, a proxy that refuses it): the player polls the
    real `/current` with the board's token and its ETag, and follows the slots that way."""
    board = live.boards["sanh-chinh"]
    streams: list[str] = []

    async def missing(route: Route) -> None:
        streams.append(route.request.url)
        await route.fulfill(status=404, content_type="application/json",
                            body='{"error": "not_found", "detail": "no stream here"}')

    await page.route("**/api/v1/boards/*/events?*", missing)
    polls: list[tuple[int, str | None, str | None]] = []

    async def seen(response: Response) -> None:
        if response.url.endswith("/api/v1/boards/sanh-chinh/current"):
            headers = await response.request.all_headers()
            polls.append((response.status, headers.get("authorization"), headers.get("if-none-match")))

    page.on("response", seen)
    await page.goto(f"{live.url}/play/sanh-chinh?token={board['token']}")
    await page.wait_for_function("() => document.getElementById('page').textContent.trim() !== ''")
    first = await player_text(page)
    assert first in live.slogans.values()
    assert streams == [f"{live.url}/api/v1/boards/sanh-chinh/events?token={board['token']}"]
    assert await page.evaluate("document.getElementById('screen').dataset.mode") == "poll"
    await page.wait_for_function(f"([was]) => {LINES} !== was", arg=[first], timeout=WAIT_MS)
    assert await player_text(page) in live.slogans.values()  # the next 5-second slot, by polling
    assert polls[0] == (200, f"Bearer {board['token']}", None)
    assert all(status in (200, 304) for status, _, _ in polls) and len(polls) >= 2
    assert all(tag is not None for _, _, tag in polls[1:]), "every later poll names what it shows"
    assert await page.is_hidden("#offline")


async def test_the_player_survives_displayd_stopping_and_starting(page: Page, live: Live) -> None:
    """What is held stays on screen while displayd is away (until its valid_until: here an
    hour-long slot, so the test does not race a 5-second one) and the player picks up again."""
    board = live.boards["man-hinh"]
    texts = list(live.slogans.values())
    hour_slogan = list(live.slogans)[3]  # not in the 5-second campaign's playlist
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    hour = live.api("POST", "/api/v1/campaigns", body={
        "name": "Màn hình lễ tân: khẩu hiệu của giờ", "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=2)).isoformat(), "dwell_seconds": 3600, "priority": 300,
        "playlist": [{"slogan_id": hour_slogan, "weight": 1}], "targets": {"boards": ["man-hinh"]}})
    await page.goto(f"{live.url}/play/man-hinh?token={board['token']}")
    await page.wait_for_function(f"([text]) => {LINES} === text", arg=[live.slogans[hour_slogan]], timeout=WAIT_MS)
    size = await page.evaluate("parseFloat(getComputedStyle(document.getElementById('page')).fontSize)")
    assert size > 30  # fitted to the screen, not left at a default size
    assert await page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    assert await page.is_hidden("#offline")
    await page.screenshot(path=ARTIFACTS / "web-player.png")

    await asyncio.to_thread(live.stop)
    await page.wait_for_selector("#offline", state="visible", timeout=WAIT_MS)
    assert await player_text(page) == live.slogans[hour_slogan]  # the last content stays on screen
    await page.screenshot(path=ARTIFACTS / "web-player-offline.png")
    with pytest.raises(httpx.HTTPError):
        await asyncio.to_thread(httpx.get, f"{live.url}/healthz", timeout=1)
    await asyncio.sleep(2)
    assert await player_text(page) == live.slogans[hour_slogan]

    await asyncio.to_thread(live.start)
    await page.wait_for_selector("#offline", state="hidden", timeout=WAIT_MS)
    # Following displayd again: a pause reaches the screen, the 5-second campaign shows.
    await asyncio.to_thread(live.api, "POST", f"/api/v1/campaigns/{hour['id']}/pause")
    await page.wait_for_function(f"([was]) => {LINES} !== was", arg=[live.slogans[hour_slogan]], timeout=WAIT_MS)
    await page.wait_for_function(f"([texts]) => texts.includes({LINES})", arg=[texts], timeout=WAIT_MS)
    await page.screenshot(path=ARTIFACTS / "web-player-recovered.png")
