"""A poll's `next` (DESIGN "Poll"): offered once the next slot is within the board's
`lead_seconds`, covered by the ETag, and `Cache-Control` asking each board to come back
inside the next lead window at its own phase, so polls need not land at the boundary."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta

from tests.conftest import FakeClock
from tests.factories import Factory

LEAD = 10
SLOT_END = datetime(2024, 5, 7, 0, 0, 30, tzinfo=UTC)  # the slot under way at the clock's start ends here


def phase(board_id: str) -> float:
    return zlib.crc32(board_id.encode()) / 2**32


async def test_next_appears_within_the_lead_and_the_etag_covers_it(factory: Factory, clock: FakeClock) -> None:
    await factory.campaign()
    board = await factory.board("bang-a", lead_seconds=LEAD)
    early = await factory.current(board)
    assert early.json()["next"] is None
    # Outside the lead window: come back inside it, at this board's phase of it.
    window = 30 - LEAD + phase("bang-a") * LEAD * 0.8
    assert early.headers["cache-control"] == f"max-age={max(1, -int(-window // 1))}"
    clock.now = SLOT_END - timedelta(seconds=LEAD - 1)
    within = await factory.current(board, **{"If-None-Match": early.headers["etag"]})
    assert within.status_code == 200  # the same slot, but `next` is new: a new ETag
    body = within.json()
    assert body["slot"] == early.json()["slot"] and body["content"] == early.json()["content"]
    upcoming = body["next"]
    assert upcoming["slot"]["index"] == body["slot"]["index"] + 1
    assert upcoming["slot"]["starts_at"] == "2024-05-07T00:00:30Z"
    assert upcoming["content"]["slogan_id"] != body["content"]["slogan_id"]
    assert upcoming["content_hash"].startswith("sha256:")
    assert within.headers["etag"] != early.headers["etag"]
    assert (await factory.current(board, **{"If-None-Match": within.headers["etag"]})).status_code == 304
    # Next time: inside the next slot's lead window (it ends at 00:01:00), not at its start.
    max_age = int(within.headers["cache-control"].removeprefix("max-age="))
    come_back = clock.now + timedelta(seconds=max_age)
    assert SLOT_END + timedelta(seconds=30 - LEAD) <= come_back <= SLOT_END + timedelta(seconds=30)
    # At the boundary the board switched by itself; what `next` was is now what shows.
    clock.now = SLOT_END
    after = (await factory.current(board)).json()
    assert after["slot"] == upcoming["slot"] and after["content"] == upcoming["content"]


async def test_without_a_lead_there_is_no_next_and_polls_come_at_the_slot_end(
    factory: Factory, clock: FakeClock
) -> None:
    await factory.campaign()
    board = await factory.board("bang-b")
    clock.now = SLOT_END - timedelta(seconds=3)
    response = await factory.current(board)
    assert response.json()["next"] is None and response.headers["cache-control"] == "max-age=3"


async def test_the_text_format_has_no_next(factory: Factory, clock: FakeClock) -> None:
    await factory.campaign()
    board = await factory.board("bang-c", lead_seconds=LEAD)
    clock.now = SLOT_END - timedelta(seconds=2)
    response = await factory.current(board, **{"Accept": "text/plain"})
    text = await factory.client.get(f"/api/v1/boards/{board['id']}/current", params={"format": "text"},
                                    headers={"Authorization": f"Bearer {board['token']}"})
    assert response.json()["next"] is not None
    assert "next" not in text.text and text.headers["cache-control"] == "max-age=2"
    assert ".n" not in text.headers["etag"]


async def test_an_idle_board_is_offered_the_campaign_that_is_about_to_start(
    factory: Factory, clock: FakeClock
) -> None:
    await factory.campaign(starts_at="2024-05-07T00:01:00Z")
    board = await factory.board("bang-d", lead_seconds=LEAD)
    clock.now = datetime(2024, 5, 7, 0, 0, 55, tzinfo=UTC)
    body = (await factory.current(board)).json()
    assert body["state"] == "idle" and body["next"]["slot"]["starts_at"] == "2024-05-07T00:01:00Z"
