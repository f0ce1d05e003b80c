"""`GET /api/v1/boards/{id}/schedule`: the plan, exactly as the board will get it."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import httpx

from tests.conftest import FakeClock, Keys
from tests.factories import Factory


def parse(t: str) -> datetime:
    return datetime.fromisoformat(t.replace("Z", "+00:00"))


async def schedule(client: httpx.AsyncClient, keys: Keys, board_id: str, start: str, end: str) -> httpx.Response:
    return await client.get(f"/api/v1/boards/{board_id}/schedule", params={"from": start, "to": end},
                            headers=keys.auth("operator"))


async def test_schedule_matches_what_the_board_gets(client: httpx.AsyncClient, keys: Keys, factory: Factory,
                                                    clock: FakeClock) -> None:
    ids = await factory.approved_ids()
    await factory.campaign("Cả năm", playlist_ids=ids, order="shuffle",
                           daily_hours=[{"start": "07:00", "end": "07:03"}])
    await factory.campaign("Cao điểm", playlist_ids=ids[:2], priority=500, dwell_seconds=45,
                           starts_at="2024-05-07T00:01:10Z", ends_at="2024-05-07T00:02:00Z")
    board = await factory.board("bang-a", offset=1, charset="ascii", max_chars=16, lines=2)
    start, end = clock.now - timedelta(minutes=1), clock.now + timedelta(minutes=5)
    response = await schedule(client, keys, "bang-a", start.isoformat(), end.isoformat())
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert items, "the board has a plan"
    # 07:00 in Hà Nội is 00:00 UTC: the daily hours run 00:00-00:03 UTC.
    assert parse(items[0]["starts_at"]) == clock.now and parse(items[-1]["ends_at"]) == clock.now + timedelta(minutes=3)
    assert items[0]["local_starts_at"] == "2024-05-07T07:00:00+07:00"
    for a, b in itertools.pairwise(items):
        assert a["ends_at"] <= b["starts_at"]
    assert {i["campaign_name"] for i in items} == {"Cả năm", "Cao điểm"}
    for item in items:
        for instant in (parse(item["starts_at"]), parse(item["ends_at"]) - timedelta(seconds=1)):
            clock.now = instant
            current = (await factory.current(board)).json()
            assert current["state"] == "showing", instant
            assert current["slot"] == {"campaign_id": item["campaign_id"], "index": item["slot_index"],
                                       "starts_at": item["starts_at"], "ends_at": item["ends_at"]}
            assert current["content"]["text"] == item["text"] and current["content"]["pages"] == item["pages"]
            assert current["content_hash"] == item["content_hash"]
    assert all(i["text"].isascii() for i in items)


async def test_schedule_refuses_more_than_10000_slots(client: httpx.AsyncClient, keys: Keys,
                                                      factory: Factory) -> None:
    await factory.campaign(dwell_seconds=5)
    await factory.board("bang-a")
    # 5 s slots: 10,000 of them fill 50,000 s (13 h 53 min 20 s).
    ok = await schedule(client, keys, "bang-a", "2024-05-07T00:00:00Z", "2024-05-07T13:53:20Z")
    assert ok.status_code == 200 and len(ok.json()["items"]) == 10_000
    refused = await schedule(client, keys, "bang-a", "2024-05-07T00:00:00Z", "2024-05-07T13:53:25Z")
    assert refused.status_code == 422 and refused.json()["error"] == "range_too_large"


async def test_schedule_input_errors(client: httpx.AsyncClient, keys: Keys, factory: Factory) -> None:
    await factory.board("bang-a")
    backwards = await schedule(client, keys, "bang-a", "2024-05-07T01:00:00Z", "2024-05-07T00:00:00Z")
    assert backwards.status_code == 422
    naive = await schedule(client, keys, "bang-a", "2024-05-07T00:00:00", "2024-05-07T01:00:00Z")
    assert naive.status_code == 422
    missing = await schedule(client, keys, "khong-co", "2024-05-07T00:00:00Z", "2024-05-07T01:00:00Z")
    assert missing.status_code == 404
    empty = await schedule(client, keys, "bang-a", "2024-05-07T00:00:00Z", "2024-05-07T01:00:00Z")
    assert empty.json() == {"board_id": "bang-a", "items": [], "next_cursor": None}
