"""The web player in Debian's Chromium against a fake displayd that the test drives (`fake.py`).

The real player page, script and fonts; a hand-driven `/events` stream and `/current` poll, so
a test decides when content arrives and can check the screen before and at a slot's start.
Times are read in the page (`Date.now()` when the screen changed) and compared with the slot's
`starts_at`, with a tolerance for the timer and the screen update.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from tests.web.conftest import ARTIFACTS, WAIT_MS, open_page
from tests.web.fake import FakeDisplayd, blank, current, iso, show, slot

EARLY_MS = 30    # a change this much before starts_at is the clocks' rounding, more is too early
LATE_MS = 1000   # the timer, the fitting and the screen update, on a busy test machine


@pytest.fixture
async def fake() -> AsyncIterator[FakeDisplayd]:
    async with FakeDisplayd() as fake:
        yield fake


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    async with open_page(browser, height=720) as page:
        yield page


# Each change of the screen, with the page's clock: [[ms since the epoch, "line line"], …].
WATCH = """() => {
  window.__changes = [];
  const node = document.getElementById("page");
  const text = () => Array.from(node.children, (line) => line.textContent).join(" ");
  new MutationObserver(() => {
    const now = text();
    const last = window.__changes[window.__changes.length - 1];
    if (!last || last[1] !== now) window.__changes.push([Date.now(), now]);
  }).observe(node, {childList: true, subtree: true, characterData: true});
}"""
TEXT = "Array.from(document.getElementById('page').children, (line) => line.textContent).join(' ')"


async def text(page: Page) -> str:
    return str(await page.evaluate(TEXT))


async def wait_text(page: Page, expected: str) -> None:
    await page.wait_for_function(f"(expected) => {TEXT} === expected", arg=expected, timeout=WAIT_MS)


async def changed_at(page: Page, expected: str) -> datetime:
    """When the screen first showed `expected` (by the page's clock)."""
    changes: list[list[Any]] = await page.evaluate("window.__changes")
    times = [at for at, shown in changes if shown == expected]
    assert times, (expected, changes)
    return datetime.fromtimestamp(times[0] / 1000, UTC)


async def sleep_until(t: datetime) -> None:
    await asyncio.sleep(max(0.0, (t - datetime.now(UTC)).total_seconds()))


def assert_on_time(seen: datetime, starts_at: datetime) -> None:
    early = (starts_at - seen).total_seconds() * 1000
    assert early <= EARLY_MS, f"shown {early:.0f} ms before its slot began"
    assert -early <= LATE_MS, f"shown {-early:.0f} ms after its slot began"


async def dataset(page: Page) -> dict[str, str]:
    return dict(await page.evaluate("({...document.getElementById('screen').dataset})"))


async def open_player(page: Page, fake: FakeDisplayd) -> None:
    await page.goto(fake.play_url)
    await page.evaluate(WATCH)


async def test_stream_content_sent_ahead_shows_at_its_start_and_revisions_rule(page: Page,
                                                                             fake: FakeDisplayd) -> None:
    await open_player(page, fake)
    await fake.wait_for_streams(1)
    await page.wait_for_function("() => document.getElementById('screen').dataset.mode === 'stream'")
    assert fake.stream_requests == [None]

    now = datetime.now(UTC)
    boundary = now + timedelta(seconds=2)
    first = slot(1, 100, now - timedelta(seconds=10), boundary)
    second = slot(1, 101, boundary, boundary + timedelta(seconds=30))
    fake.send(show(first, ["Khẩu hiệu", "đang chạy"]))
    fake.send(show(second, ["Nội dung", "gửi trước 2 giây"]))  # content arrives ahead of its slot
    await wait_text(page, "Khẩu hiệu đang chạy")
    assert (await dataset(page))["slot"] == "1:100:0"
    await sleep_until(boundary - timedelta(milliseconds=300))
    assert await text(page) == "Khẩu hiệu đang chạy", "held, not shown before its slot begins"
    await wait_text(page, "Nội dung gửi trước 2 giây")
    assert_on_time(await changed_at(page, "Nội dung gửi trước 2 giây"), boundary)
    assert (await dataset(page))["slot"] == "1:101:0"
    size = await page.evaluate("parseFloat(getComputedStyle(document.getElementById('page')).fontSize)")
    assert size > 30  # fitted to the screen
    await page.screenshot(path=ARTIFACTS / "player-stream.png")

    # A blank revision of the slot on screen takes it back at once.
    fake.send(blank(second, revision=1))
    await wait_text(page, "")
    # A higher revision of the same slot shows again; a lower one that arrives late is stale.
    fake.send(show(second, ["Nội dung", "sửa lần ba"], revision=3))
    await wait_text(page, "Nội dung sửa lần ba")
    fake.send(show(second, ["Nội dung", "cũ hơn"], revision=2))
    fake.send(blank(second, revision=3))  # the same revision twice: a duplicate
    await asyncio.sleep(0.7)
    assert await text(page) == "Nội dung sửa lần ba"
    assert (await dataset(page))["slot"] == "1:101:3"

    # The board going idle ends what has begun; a slot that has not begun stays held.
    start = datetime.now(UTC) + timedelta(seconds=1.5)
    later = slot(2, 7, start, start + timedelta(seconds=30))
    fake.send(show(later, ["Đợt cao điểm"]))
    fake.send(blank(None, until=iso(start)))
    await wait_text(page, "")
    blanked = datetime.now(UTC)
    assert blanked < start, "the idle blank came at once, not at the held slot's start"
    await wait_text(page, "Đợt cao điểm")
    assert_on_time(await changed_at(page, "Đợt cao điểm"), start)
    assert await page.is_hidden("#offline")


async def test_a_stream_silent_on_opening_is_filled_in_by_one_poll(page: Page, fake: FakeDisplayd) -> None:
    now = datetime.now(UTC)
    running = show(slot(3, 40, now - timedelta(seconds=5), now + timedelta(seconds=6)), ["Đã chạy từ trước"])
    fake.document = current(running)
    await open_player(page, fake)
    await fake.wait_for_streams(1)
    await wait_text(page, "Đã chạy từ trước")
    assert (await dataset(page))["mode"] == "stream"
    assert [p.status for p in fake.polls] == [200]
    boundary = now + timedelta(seconds=6)
    fake.send(show(slot(3, 41, boundary, boundary + timedelta(seconds=6)), ["Rồi theo luồng sự kiện"]))
    await wait_text(page, "Rồi theo luồng sự kiện")
    assert_on_time(await changed_at(page, "Rồi theo luồng sự kiện"), boundary)
    assert len(fake.polls) == 1


async def test_a_slot_that_began_later_wins_and_its_end_uncovers_the_other(page: Page,
                                                                         fake: FakeDisplayd) -> None:
    """A higher-priority campaign starting mid-slot wins by starting later; when its slot is
    taken back, the slot that is still running shows again."""
    await open_player(page, fake)
    await fake.wait_for_streams(1)
    now = datetime.now(UTC)
    long = slot(1, 3, now - timedelta(seconds=5), now + timedelta(seconds=60))
    peak = slot(9, 0, now + timedelta(seconds=1), now + timedelta(seconds=60))
    fake.send(show(peak, ["Cao điểm 07/5"]))
    fake.send(show(long, ["Thường ngày"]))
    await wait_text(page, "Thường ngày")
    await wait_text(page, "Cao điểm 07/5")
    fake.send(blank(peak, revision=1))
    await wait_text(page, "Thường ngày")


async def test_pages_turn_on_the_slots_clock(page: Page, fake: FakeDisplayd) -> None:
    await open_player(page, fake)
    await fake.wait_for_streams(1)
    now = datetime.now(UTC)
    three = slot(1, 1, now - timedelta(milliseconds=100), now + timedelta(seconds=6))
    document = show(three, ["Trang một"])
    document["content"]["pages"] = [["Trang một"], ["Trang hai"], ["Trang ba"]]
    fake.send(document)
    await wait_text(page, "Trang một")
    await wait_text(page, "Trang hai")
    assert_on_time(await changed_at(page, "Trang hai"), now - timedelta(milliseconds=100) + timedelta(seconds=2))
    await wait_text(page, "Trang ba")


async def test_unreachable_keeps_the_content_until_valid_until_then_recovers(page: Page,
                                                                            fake: FakeDisplayd) -> None:
    await open_player(page, fake)
    await fake.wait_for_streams(1)
    now = datetime.now(UTC)
    valid_until = now + timedelta(seconds=9)
    fake.send(show(slot(1, 5, now - timedelta(seconds=1), valid_until), ["Giữ khi mất kết nối"]))
    await wait_text(page, "Giữ khi mất kết nối")

    fake.go_down()  # the stream ends; reconnecting and polling get 503
    await page.wait_for_selector("#offline", state="visible", timeout=WAIT_MS)
    assert datetime.now(UTC) < valid_until, "the test's margin is too small for this machine"
    assert await text(page) == "Giữ khi mất kết nối"
    await page.screenshot(path=ARTIFACTS / "player-unreachable.png")
    await wait_text(page, "")  # stale content is blanked by the board itself
    gone = await changed_at(page, "")
    assert gone >= valid_until - timedelta(milliseconds=EARLY_MS)
    assert await page.is_visible("#offline")

    fake.document = current(None)
    fake.down = False
    await page.wait_for_selector("#offline", state="hidden", timeout=WAIT_MS)
    await page.wait_for_function("() => document.getElementById('screen').dataset.mode === 'stream'")
    assert len(fake.stream_requests) >= 2


async def test_poll_next_switches_at_its_start_without_another_poll(page: Page, fake: FakeDisplayd) -> None:
    fake.stream_status = 404
    now = datetime.now(UTC)
    boundary = now + timedelta(seconds=2.5)
    first = show(slot(4, 20, now - timedelta(seconds=3), boundary), ["Đang chiếu"])
    second = show(slot(4, 21, boundary, boundary + timedelta(seconds=30)), ["Chiếu tiếp", "theo đồng hồ"])
    fake.document = current(first, second)
    fake.max_age = 30  # the player polls again within 5 s all the same
    await open_player(page, fake)
    await wait_text(page, "Đang chiếu")
    assert (await dataset(page))["mode"] == "poll"
    assert fake.stream_requests == [None] and fake.open_streams == 0
    assert [p.status for p in fake.polls] == [200] and fake.polls[0].if_none_match is None

    await wait_text(page, "Chiếu tiếp theo đồng hồ")
    switched = await changed_at(page, "Chiếu tiếp theo đồng hồ")
    assert_on_time(switched, boundary)
    assert all(p.at < boundary for p in fake.polls), "switched by its own clock, not by a poll"

    await fake.wait_for_polls(2)
    assert fake.polls[1].if_none_match == fake.etag and fake.polls[1].status == 304
    assert fake.polls[1].at - fake.polls[0].at < timedelta(seconds=10), "within 5 s (plus a busy machine), not 30"
    assert await text(page) == "Chiếu tiếp theo đồng hồ"


async def test_poll_without_next_asks_at_the_boundary_and_does_not_flash_blank(page: Page,
                                                                             fake: FakeDisplayd) -> None:
    """A board without lead_seconds learns the next slot by a poll at the boundary; the ended
    slot stays on screen until that answer comes (here 0.6 s late), rather than a blank."""
    fake.stream_status = 404
    now = datetime.now(UTC)
    boundary = now + timedelta(seconds=2.5)
    first = show(slot(4, 30, now - timedelta(seconds=3), boundary), ["Hết giờ thì hỏi"])
    second = show(slot(4, 31, boundary, boundary + timedelta(seconds=30)), ["Câu trả lời", "đến muộn"])
    fake.document = current(first)
    fake.later = (boundary, current(second))
    fake.max_age = 5  # longer than the slot's rest: the player asks at the boundary by its own clock
    fake.answer_delay = 0.6
    await open_player(page, fake)
    await wait_text(page, "Hết giờ thì hỏi")
    await wait_text(page, "Câu trả lời đến muộn")
    changes = [shown for _, shown in await page.evaluate("window.__changes")]
    assert changes[-2:] == ["Hết giờ thì hỏi", "Câu trả lời đến muộn"], changes
    asked = [p.at for p in fake.polls if p.at >= boundary]
    assert asked and asked[0] - boundary < timedelta(seconds=1.5), "polled at the slot's end, not at max-age"


async def test_a_wrong_clock_still_switches_on_displayds_time(page: Page, fake: FakeDisplayd) -> None:
    """A screen whose clock is an hour behind goes by the Date of displayd's answers."""
    fake.stream_status = 404
    now = datetime.now(UTC)
    boundary = now + timedelta(seconds=3)
    first = show(slot(4, 20, now - timedelta(seconds=3), boundary), ["Giờ máy sai"])
    second = show(slot(4, 21, boundary, boundary + timedelta(seconds=30)), ["Vẫn đúng giờ"])
    fake.document = current(first, second)
    await page.clock.install(time=now - timedelta(hours=1))
    await page.goto(fake.play_url)
    await wait_text(page, "Giờ máy sai")
    # The HTTP Date counts whole seconds: the switch may come up to half a second early.
    await sleep_until(boundary - timedelta(seconds=0.7))
    assert await text(page) == "Giờ máy sai"
    await wait_text(page, "Vẫn đúng giờ")
    assert datetime.now(UTC) <= boundary + timedelta(seconds=1.5)


async def test_a_missing_stream_falls_back_to_polling_and_is_tried_again(page: Page, fake: FakeDisplayd) -> None:
    fake.stream_status = 404
    running = show(slot(1, 1, datetime.now(UTC) - timedelta(seconds=1), datetime.now(UTC) + timedelta(minutes=10)),
                   ["Chỉ hỏi định kỳ"])
    fake.document = current(running)
    await page.clock.install()
    await page.goto(fake.play_url)
    await wait_text(page, "Chỉ hỏi định kỳ")
    assert (await dataset(page))["mode"] == "poll"
    assert await page.is_hidden("#offline")
    assert len(fake.stream_requests) == 1

    fake.stream_status = 200
    await page.clock.run_for(80_000)  # the stream is tried again within 75 s
    await page.wait_for_function("() => document.getElementById('screen').dataset.mode === 'stream'")
    assert len(fake.stream_requests) == 2 and fake.open_streams == 1
    fake.send(running)  # the stream speaks: no poll to fill in
    await asyncio.sleep(1.5)  # a poll already under way lands
    polls = len(fake.polls)
    await page.clock.run_for(10_000)
    await asyncio.sleep(0.5)
    assert len(fake.polls) == polls, "no polling while the stream is open"
