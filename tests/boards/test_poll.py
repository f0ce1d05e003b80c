"""`GET /api/v1/boards/{id}/current`: content, ETags, caching, and changes seen at once."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI

from displayd.app import create_app
from displayd.config import Settings
from displayd.live.poll import KnownTokens
from displayd.runtime import runtime_of
from tests.conftest import FakeClock, Keys
from tests.factories import SLOGANS, Factory


def parse(t: str) -> datetime:
    return datetime.fromisoformat(t.replace("Z", "+00:00"))


async def test_showing_document(client: httpx.AsyncClient, factory: Factory, clock: FakeClock) -> None:
    ids = await factory.approved_ids()
    campaign = await factory.campaign()
    board = await factory.board("bang-a", max_chars=20, lines=2)
    clock.advance(seconds=7)
    response = await factory.current(board)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["board_id"] == "bang-a" and body["state"] == "showing"
    # 2024-05-07T00:00:07Z is 6 days + 7 s after the campaign start: slot 17280.
    assert body["slot"] == {"campaign_id": campaign["id"], "index": 17280,
                            "starts_at": "2024-05-07T00:00:00Z", "ends_at": "2024-05-07T00:00:30Z"}
    content = body["content"]
    assert content["slogan_id"] in ids and content["charset"] == "utf-8"
    assert content["text"] == SLOGANS[ids.index(content["slogan_id"])]
    assert all(len(line) <= 20 for page in content["pages"] for line in page)
    assert all(len(page) <= 2 for page in content["pages"])
    assert " ".join(" ".join(page) for page in content["pages"]) == content["text"]
    canonical = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    assert body["content_hash"] == "sha256:" + hashlib.sha256(canonical).hexdigest()
    assert body["valid_until"] == "2024-05-07T00:00:30Z"
    assert response.headers["cache-control"] == "max-age=23"
    assert response.headers["etag"].startswith('"')


async def test_etag_gives_304_until_the_slot_changes(client: httpx.AsyncClient, factory: Factory,
                                                     clock: FakeClock) -> None:
    await factory.campaign()
    board = await factory.board("bang-a")
    first = await factory.current(board)
    etag = first.headers["etag"]
    clock.advance(seconds=29)
    cached = await factory.current(board, **{"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""
    assert cached.headers["etag"] == etag and cached.headers["cache-control"] == "max-age=1"
    assert (await factory.current(board, **{"If-None-Match": f'W/{etag}, "other"'})).status_code == 304
    clock.advance(seconds=1)
    changed = await factory.current(board, **{"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.json()["slot"]["index"] == first.json()["slot"]["index"] + 1
    assert changed.json()["content"]["slogan_id"] != first.json()["content"]["slogan_id"]


async def test_text_format_in_the_boards_charset(client: httpx.AsyncClient, factory: Factory) -> None:
    ids = await factory.approved_ids()
    await factory.campaign(playlist_ids=[ids[1]])
    board = await factory.board("bang-ascii", charset="ascii", max_chars=30, lines=1)
    response = await client.get("/api/v1/boards/bang-ascii/current?format=text",
                                headers={"Authorization": f"Bearer {board['token']}"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text.replace("\n", " ").split() == \
        "Chien thang Dien Bien Phu - Lung lay nam chau, chan dong dia cau!".split()
    assert response.content.isascii()
    json_etag = (await factory.current(board)).headers["etag"]
    assert response.headers["etag"] != json_etag
    again = await client.get("/api/v1/boards/bang-ascii/current?format=text", headers={
        "Authorization": f"Bearer {board['token']}", "If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    bad = await client.get("/api/v1/boards/bang-ascii/current?format=xml",
                           headers={"Authorization": f"Bearer {board['token']}"})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_input"


async def test_idle_board(client: httpx.AsyncClient, factory: Factory) -> None:
    await factory.board("bang-khac", groups=["khac"])
    await factory.campaign(targets={"groups": ["khac"]})
    board = await factory.board("bang-a", groups=["so-tttt"])
    body = (await factory.current(board)).json()
    assert body == {"board_id": "bang-a", "state": "idle", "slot": None, "content": None, "content_hash": None,
                    "valid_until": None, "next": None}
    text = await client.get("/api/v1/boards/bang-a/current?format=text",
                            headers={"Authorization": f"Bearer {board['token']}"})
    assert text.status_code == 200 and text.text == ""


async def test_staff_keys_read_any_board(client: httpx.AsyncClient, keys: Keys, factory: Factory) -> None:
    await factory.board("bang-a")
    for role in ("admin", "editor", "approver", "operator"):
        response = await client.get("/api/v1/boards/bang-a/current", headers=keys.auth(role))
        assert response.status_code == 200, role
    missing = await client.get("/api/v1/boards/khong-co/current", headers=keys.auth("operator"))
    assert missing.status_code == 404 and set(missing.json()) == {"error", "detail"}
    assert (await client.get("/api/v1/boards/bang-a/current")).status_code == 401


async def _showing(factory: Factory, board: dict[str, Any]) -> dict[str, Any]:
    response = await factory.current(board)
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


async def test_retirement_and_pause_take_effect_at_once(client: httpx.AsyncClient, keys: Keys,
                                                        factory: Factory) -> None:
    campaign = await factory.campaign()
    board = await factory.board("bang-a")
    before = await _showing(factory, board)
    shown = before["content"]["slogan_id"]
    retired = await client.post(f"/api/v1/slogans/{shown}/retire", json={"reason": "Sai chính tả"},
                                headers=keys.auth("approver"))
    assert retired.status_code == 200
    after = await _showing(factory, board)
    assert after["content"]["slogan_id"] != shown
    assert after["content_hash"] != before["content_hash"]
    paused = await client.post(f"/api/v1/campaigns/{campaign['id']}/pause", headers=keys.auth("editor"))
    assert paused.status_code == 200
    assert (await _showing(factory, board))["state"] == "idle"
    await client.post(f"/api/v1/campaigns/{campaign['id']}/resume", headers=keys.auth("editor"))
    assert (await _showing(factory, board))["state"] == "showing"
    await client.delete(f"/api/v1/campaigns/{campaign['id']}", headers=keys.auth("editor"))
    assert (await _showing(factory, board))["state"] == "idle"


async def test_retiring_the_only_slogan_blanks_the_board(client: httpx.AsyncClient, keys: Keys,
                                                         factory: Factory) -> None:
    ids = await factory.approved_ids()
    await factory.campaign(playlist_ids=[ids[0]])
    board = await factory.board("bang-a")
    assert (await _showing(factory, board))["content"]["slogan_id"] == ids[0]
    await client.post(f"/api/v1/slogans/{ids[0]}/retire", json={"reason": "x"}, headers=keys.auth("approver"))
    assert (await _showing(factory, board))["state"] == "idle"


async def test_an_edit_takes_effect_from_the_next_slot(client: httpx.AsyncClient, keys: Keys, factory: Factory,
                                                       clock: FakeClock) -> None:
    ids = await factory.approved_ids()
    campaign = await factory.campaign(playlist_ids=[ids[0]])
    board = await factory.board("bang-a")
    clock.advance(seconds=10)
    before = await _showing(factory, board)
    assert before["content"]["slogan_id"] == ids[0]
    edited = await client.patch(f"/api/v1/campaigns/{campaign['id']}",
                                json={"playlist": [{"slogan_id": ids[1], "weight": 1}], "dwell_seconds": 60},
                                headers=keys.auth("editor"))
    assert edited.status_code == 200
    assert await _showing(factory, board) == before  # the running slot is kept
    clock.advance(seconds=5)
    second = await client.patch(f"/api/v1/campaigns/{campaign['id']}",
                                json={"playlist": [{"slogan_id": ids[2], "weight": 1}]}, headers=keys.auth("editor"))
    assert second.status_code == 200
    assert await _showing(factory, board) == before  # a second edit does not move the switch
    clock.advance(seconds=15)  # 00:00:30, the old slot's end
    after = await _showing(factory, board)
    assert after["content"]["slogan_id"] == ids[2]
    # The new dwell (60 s) counts from the campaign start: slot 8640 runs 00:00:00-00:01:00.
    assert after["slot"]["index"] == 8640
    assert after["slot"]["starts_at"] == "2024-05-07T00:00:30Z" and after["slot"]["ends_at"] == "2024-05-07T00:01:00Z"


async def test_boards_of_one_group_plan_alike_unless_a_campaign_names_one(
    factory: Factory, clock: FakeClock
) -> None:
    """Boards share what targets them by their groups (the snapshot computes it once per
    group), except a board a campaign names: it also gets that campaign."""
    ids = await factory.approved_ids()
    a = await factory.board("bang-a", groups=["so-tttt"])
    b = await factory.board("bang-b", groups=["so-tttt"])
    c = await factory.board("bang-c", groups=["khac"])
    d = await factory.board("bang-d", groups=["so-tttt"])
    group = await factory.campaign("Nhóm", playlist_ids=[ids[0]], priority=100, targets={"groups": ["so-tttt"]})
    named = await factory.campaign("Riêng", playlist_ids=[ids[1]], priority=200, targets={"boards": ["bang-b"]})
    for board, campaign in [(a, group), (b, named), (d, group)]:
        shown = await _showing(factory, board)
        assert shown["slot"]["campaign_id"] == campaign["id"], board["id"]
    assert (await _showing(factory, c))["state"] == "idle"


async def test_higher_priority_wins(client: httpx.AsyncClient, factory: Factory, clock: FakeClock) -> None:
    ids = await factory.approved_ids()
    await factory.campaign("Cả năm", playlist_ids=[ids[0]], priority=100)
    peak = await factory.campaign("Cao điểm", playlist_ids=[ids[1]], priority=200,
                                  starts_at="2024-05-07T00:01:00Z", ends_at="2024-05-08T00:00:00Z")
    board = await factory.board("bang-a")
    assert (await _showing(factory, board))["content"]["slogan_id"] == ids[0]
    clock.advance(minutes=1)
    now = await _showing(factory, board)
    assert now["content"]["slogan_id"] == ids[1] and now["slot"]["campaign_id"] == peak["id"]


async def test_polls_need_no_database(app: FastAPI, factory: Factory, clock: FakeClock) -> None:
    await factory.campaign()
    board = await factory.board("bang-a")
    first = await factory.current(board)

    def no_database() -> None:
        raise AssertionError("the poll path opened a database session")

    real = runtime_of(app).sessionmaker
    runtime_of(app).sessionmaker = no_database
    try:
        for _ in range(40):  # across slot boundaries too
            clock.advance(seconds=7)
            assert (await factory.current(board)).status_code == 200
        assert (await factory.current(board, **{"If-None-Match": first.headers["etag"]})).status_code == 200
    finally:
        runtime_of(app).sessionmaker = real
    assert clock.now > datetime(2024, 5, 7, 0, 4, tzinfo=UTC)


async def test_head_gives_the_get_headers_without_a_body(client: httpx.AsyncClient, factory: Factory) -> None:
    await factory.campaign()
    board = await factory.board("bang-a")
    get = await factory.current(board)
    head = await client.head("/api/v1/boards/bang-a/current", headers={"Authorization": f"Bearer {board['token']}"})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == get.headers["etag"]
    assert head.headers["content-length"] == str(len(get.content))


async def test_a_rebuild_keeps_the_views_of_boards_that_did_not_change(
    app: FastAPI, client: httpx.AsyncClient, keys: Keys, factory: Factory
) -> None:
    """A change rebuilds the snapshot, but a board whose row is unchanged keeps its view (10,000
    boards are not made again for a retirement); a board that changed gets a new one."""
    await factory.campaign()
    a, b = await factory.board("bang-a"), await factory.board("bang-b")
    live = runtime_of(app).live
    before = live.snapshot
    edited = await client.patch("/api/v1/boards/bang-b", headers=keys.auth("admin"),
                                json={"name": "Bảng mới", "lead_seconds": 5})
    assert edited.status_code == 200
    after = live.snapshot
    assert after is not before
    assert after.boards["bang-a"] is before.boards["bang-a"]
    assert after.boards["bang-b"] is not before.boards["bang-b"]
    assert (after.boards["bang-b"].name, after.boards["bang-b"].lead_seconds) == ("Bảng mới", 5)
    rotated = await client.post(f"/api/v1/boards/{a['id']}/credentials", headers=keys.auth("admin"))
    assert rotated.status_code == 200  # a new token: the old one stops, the new one polls
    assert (await factory.current(a)).status_code == 401
    assert (await factory.current({**a, "token": rotated.json()["token"]})).status_code == 200
    assert (await factory.current(b)).status_code == 200


async def test_the_snapshot_s_collections_end_with_the_app(settings: Settings, clock: FakeClock) -> None:
    """A rebuild schedules a garbage collection for later (never on a change's way to the
    boards); stopping the app cancels it: the event loop may outlive the app (it does in these
    tests, one loop for the session), and a collection of its whole heap seconds later, in
    whatever runs then, stalled that instead (pushes past their deadline, connections timed out)."""
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        live = runtime_of(app).live
        await live.refresh()  # a change after the start: a collection is scheduled
        scheduled = live._collecting
        assert scheduled is not None and not scheduled.cancelled()
    assert scheduled.cancelled() and live._collecting is None
    await live.refresh()  # (a late rebuild schedules nothing either)
    assert live._collecting is None


async def test_a_token_a_board_polled_with_stops_at_once_when_rotated_or_deleted(
    client: httpx.AsyncClient, keys: Keys, factory: Factory
) -> None:
    """A board's next poll skips checking a token it was accepted with (`KnownTokens`); a new
    token, a deletion or another board's path still answer as the token's check would."""
    await factory.campaign()
    a, b = await factory.board("bang-a"), await factory.board("bang-b")
    first = await factory.current(a)
    assert first.status_code == 200
    assert (await factory.current(a, **{"If-None-Match": first.headers["etag"]})).status_code == 304
    other = await client.get(f"/api/v1/boards/{b['id']}/current", headers={"Authorization": f"Bearer {a['token']}"})
    assert other.status_code == 404  # a's token, accepted a moment ago, is still not b's
    rotated = await client.post(f"/api/v1/boards/{a['id']}/credentials", headers=keys.auth("admin"))
    assert rotated.status_code == 200
    assert (await factory.current(a)).status_code == 401
    assert (await factory.current({**a, "token": rotated.json()["token"]})).status_code == 200
    assert (await factory.current(b)).status_code == 200
    deleted = await client.delete(f"/api/v1/boards/{b['id']}", headers=keys.auth("admin"))
    assert deleted.status_code == 204
    assert (await factory.current(b)).status_code == 401


def test_known_tokens_keep_one_value_per_board_and_forget_all_when_the_tokens_change() -> None:
    tokens = {"hash-a": "bang-a"}
    known = KnownTokens()
    assert known.board(tokens, "Bearer dbt_a") is None  # the first look binds the book to these tokens
    known.remember(tokens, "Bearer dbt_a", "bang-a")
    assert known.board(tokens, "Bearer dbt_a") == "bang-a"
    known.remember(tokens, "bearer  dbt_a", "bang-a")  # the same board, written otherwise: replaces the first
    assert known.board(tokens, "Bearer dbt_a") is None and known.board(tokens, "bearer  dbt_a") == "bang-a"
    known.remember({"hash-a": "bang-a"}, "Bearer dbt_b", "bang-b")  # checked against other tokens: not kept
    assert known.board(tokens, "Bearer dbt_b") is None
    assert known.board(dict(tokens), "bearer  dbt_a") is None  # new tokens: nothing is known any more
    known.remember(tokens, "Bearer dbt_a", "bang-a")
    assert known.board(tokens, "Bearer dbt_a") is None
