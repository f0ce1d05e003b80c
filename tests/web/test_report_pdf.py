"""The campaign report printed to PDF by Debian's Chromium, against a real `displayd serve`.

The campaign of `tests.web.live` (5-second slots on three polling boards) also runs on two
push boards here: one that fails its first pushes and then accepts, one that claims to show
content displayd never gave it (an integrity incident every slot). Once the log holds all
of that, the page is printed and every figure on it is checked against the API's answer
read just before and just after (the log grows every 5 s: the two reads must agree).
The PDF goes to `test-artifacts/report.pdf`.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page

from tests.delivery.boards import FakeBoards, Flaky, Ok
from tests.web.conftest import ARTIFACTS, open_page
from tests.web.live import Live, populate, prepare

# What fits between A4's side margins of the print stylesheet (210 mm - 15 - 12) at 96 px per inch.
PRINT_WIDTH = round((210 - 27) / 25.4 * 96)
# A4 is 595.28 × 841.89 pt; Chromium rounds the page to its pixel grid (595.92 × 842.88 here).
# Letter (612 × 792) is far outside the tolerance.
A4_POINTS, TOLERANCE = (595.0, 842.0), 1.5

# Every figure the page writes, by row: [data-slogan], [data-board] and [data-total] rows' cells.
FIGURES = """() => {
  const cells = (row) => Object.fromEntries([...row.querySelectorAll("td")].flatMap(
    (td) => [...td.classList].filter((c) => c !== "n").map((c) => [c, td.textContent])));
  const rows = (attr) => Object.fromEntries([...document.querySelectorAll(`tr[data-${attr}]`)].map(
    (row) => [row.getAttribute(`data-${attr}`), cells(row)]));
  return {slogans: rows("slogan"), boards: rows("board"),
          totals: Object.fromEntries([...document.querySelectorAll("tr[data-total]")].map(
            (row) => [row.dataset.total, row.querySelector("td").textContent]))};
}"""


def number(text: str) -> float:
    """`1.234,5` → 1234.5 (Vietnamese: dot for thousands, comma for decimals)."""
    assert re.fullmatch(r"\d{1,3}(\.\d{3})*(,\d+)?", text), text
    return float(text.replace(".", "").replace(",", "."))


def ratio(text: str) -> float | None:
    """`86,25 %` → 0.8625; `—` → None."""
    if text == "—":
        return None
    value, percent = text.split("\u00a0")
    assert percent == "%", text
    return round(number(value) / 100, 4)


@pytest.fixture(scope="module")
async def boards() -> AsyncIterator[FakeBoards]:
    async with FakeBoards() as fake:
        yield fake


@pytest.fixture(scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory, boards: FakeBoards) -> AsyncIterator[Live]:
    # Blocking set-up in threads: the fake boards answer on this event loop meanwhile.
    live = await asyncio.to_thread(prepare, tmp_path_factory.mktemp("report"))
    try:
        await asyncio.to_thread(populate, live)
        for board_id, name, behaviour in [
            ("bang-day", "Bảng đẩy (lỗi lúc đầu)", Flaky(3)),
            ("bang-la", "Bảng hiện nội dung lạ", Ok(content_hash="sha256:" + "0" * 64)),
        ]:
            await asyncio.to_thread(live.api, "POST", "/api/v1/boards", body={
                "id": board_id, "name": name, "location": "Nhà văn hoá", "delivery": "push",
                "endpoint_url": boards.url(behaviour, board_id)})
        await asyncio.to_thread(live.api, "PATCH", f"/api/v1/campaigns/{live.campaign_id}", body={
            "targets": {"boards": ["sanh-chinh", "cong-truoc", "man-hinh", "bang-day", "bang-la"]}})
        yield live
    finally:
        await asyncio.to_thread(live.stop)


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    async with open_page(browser) as page:
        yield page


def wait_for_figures(live: Live, token: str) -> dict[str, Any]:
    """Poll one board now and then until the report has deliveries, failures, polls and incidents."""
    deadline = time.monotonic() + 45
    url = f"/api/v1/reports/campaigns/{live.campaign_id}"
    while time.monotonic() < deadline:
        httpx.get(f"{live.url}/api/v1/boards/sanh-chinh/current", headers={"Authorization": f"Bearer {token}"},
                  timeout=5)
        body: dict[str, Any] = live.api("GET", url)
        boards = {b["board_id"]: b for b in body["boards"]}
        pushed = boards.get("bang-day", {})
        if (pushed.get("slots", 0) >= 3 and 0 < (pushed.get("delivered_ratio") or 0) < 1
                and boards.get("bang-la", {}).get("incidents", 0) >= 1
                and (boards.get("sanh-chinh", {}).get("polled_ratio") or 0) > 0):
            return body
        time.sleep(1)
    raise AssertionError(f"the log never held deliveries, failures, polls and incidents: {body}")


def comparable(body: dict[str, Any]) -> dict[str, Any]:
    """The figures of an API answer, without the instants that move with the clock."""
    return {key: body[key] for key in ("totals", "slogans", "boards", "days")}


async def sign_in(page: Page, live: Live) -> None:
    await page.goto(f"{live.url}/ui")
    await page.fill("#key", live.keys["admin"])
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{live.url}/ui")


async def test_the_printed_report_shows_the_api_figures(page: Page, live: Live) -> None:
    await asyncio.to_thread(wait_for_figures, live, live.boards["sanh-chinh"]["token"])
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    await sign_in(page, live)
    await page.emulate_media(media="print")
    url = f"/api/v1/reports/campaigns/{live.campaign_id}"
    for _ in range(10):  # a page read between two equal API answers shows exactly those figures
        before = await asyncio.to_thread(live.api, "GET", url)
        await page.goto(f"{live.url}/ui/reports/{live.campaign_id}")
        shown = await page.evaluate(FIGURES)
        pdf = await page.pdf(format="A4")
        after = await asyncio.to_thread(live.api, "GET", url)
        if comparable(before) == comparable(after):
            break
    else:
        raise AssertionError("the log changed during every one of 10 reads")
    api = after

    assert set(shown["slogans"]) == {str(s["slogan_id"]) for s in api["slogans"]}
    for slogan in api["slogans"]:
        cells = shown["slogans"][str(slogan["slogan_id"])]
        assert number(cells["seconds"]) == slogan["seconds"], slogan
        assert number(cells["slots"]) == slogan["slots"] and ratio(cells["share"]) == slogan["share"], slogan
        assert cells["slogan"] == slogan["text"]
    assert set(shown["boards"]) == {b["board_id"] for b in api["boards"]} >= {"bang-day", "bang-la", "sanh-chinh"}
    for board in api["boards"]:
        cells = shown["boards"][board["board_id"]]
        assert ratio(cells["delivered"]) == board["delivered_ratio"], board
        assert ratio(cells["polled"]) == board["polled_ratio"], board
        assert (number(cells["slots"]), number(cells["seconds"]), number(cells["incidents"])) == (
            board["slots"], board["seconds"], board["incidents"]), board
    totals = api["totals"]
    assert number(shown["totals"]["seconds"]) == totals["seconds"]
    assert number(shown["totals"]["slots"]) == totals["slots"]
    assert ratio(shown["totals"]["delivered"]) == totals["delivered_ratio"]
    assert number(shown["totals"]["incidents"]) == totals["incidents"] >= 1

    # Printed: no dashboard header, no form or button; three charts; the sheet fits A4's width.
    assert await page.is_hidden("header.top") and await page.is_hidden("nav.tools")
    assert await page.locator("button:visible, form:visible, a.button:visible").count() == 0
    assert await page.locator("svg.chart").count() == 3
    assert await page.locator("svg.chart rect[data-value]").count() >= len(api["slogans"])
    await page.set_viewport_size({"width": PRINT_WIDTH, "height": 1000})
    assert await page.evaluate("document.documentElement.scrollWidth") <= PRINT_WIDTH
    await page.screenshot(path=ARTIFACTS / "web-report-print.png", full_page=True)
    await asyncio.to_thread((ARTIFACTS / "report.pdf").write_bytes, pdf)

    assert pdf.startswith(b"%PDF-")
    pages = re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf)
    boxes = [(float(w), float(h)) for w, h in re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf)]
    assert len(pages) >= 1 and len(boxes) >= len(pages), (len(pages), boxes)
    assert all(abs(w - A4_POINTS[0]) <= TOLERANCE and abs(h - A4_POINTS[1]) <= TOLERANCE for w, h in boxes), boxes

    assert requests and all(u.startswith(live.url + "/") for u in requests), [
        u for u in requests if not u.startswith(live.url + "/")]
    assert not errors, errors  # a style or script the CSP refused would show here
