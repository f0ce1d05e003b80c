"""Delivery v2 through the leader's slot work, on SQLite and PostgreSQL, with a clock the test
moves: content pushed `lead_seconds` ahead and logged as delivered before its start; revisions
of slots already sent (a pause and its resumption, a retirement of content sent ahead, the
emergency stop and its lifting), each on the slot's one row; a take-over that resends."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from displayd.config import Settings
from displayd.db.models import Rotation
from displayd.db.session import create_engine, create_sessionmaker
from displayd.delivery.dispatch import Dispatcher
from tests.conftest import FakeClock, Keys
from tests.delivery.boards import FakeBoards
from tests.factories import Factory

LEAD = 2


async def row(settings: Settings, board_id: str, slot_index: int) -> Rotation:
    engine = create_engine(settings)
    async with create_sessionmaker(engine)() as session:
        found = await session.scalar(select(Rotation).filter_by(board_id=board_id, slot_index=slot_index))
    await engine.dispose()
    assert found is not None, f"no row for slot {slot_index}"
    return found


def documents(boards: FakeBoards, board_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(webhook-id, document) of every push the board received, in order."""
    return [(r.headers["webhook-id"], json.loads(r.body)) for r in boards.received(board_id)]


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def step(dispatcher: Dispatcher, clock: FakeClock, to: datetime | None = None) -> datetime | None:
    """Move the clock to `to` (if given), run the leader's work there, wait for its pushes."""
    if to is not None:
        clock.now = to
    next_at = await dispatcher.sync(clock.now)
    await dispatcher.stop()
    return next_at


async def test_slots_are_pushed_lead_seconds_ahead_and_logged_on_time(
    factory: Factory, dispatcher: Dispatcher, boards: FakeBoards, settings: Settings, clock: FakeClock
) -> None:
    campaign = await factory.campaign()
    await factory.board("bang-som", delivery="push", endpoint_url=boards.url("ok", "bang-som"), lead_seconds=LEAD)
    next_at = await step(dispatcher, clock)
    assert next_at == clock.now + timedelta(seconds=30 - LEAD)  # the lead before the next slot
    next_at = await step(dispatcher, clock, next_at)
    [(_, first), (ident, ahead)] = documents(boards, "bang-som")
    assert ahead["slot"]["index"] == first["slot"]["index"] + 1
    assert instant(ahead["slot"]["starts_at"]) == clock.now + timedelta(seconds=LEAD)  # due in 2 s
    assert ident == f"bang-som:{campaign['id']}:{ahead['slot']['index']}:0" and ahead["revision"] == 0
    logged = await row(settings, "bang-som", ahead["slot"]["index"])
    assert logged.push_status == "delivered" and logged.revisions == 0
    assert logged.delivered_at is not None and logged.delivered_at <= logged.starts_at
    assert next_at == clock.now + timedelta(seconds=LEAD)  # its start: the slot under way ends
    await step(dispatcher, clock, next_at)
    assert len(boards.received("bang-som")) == 2  # the boundary itself sends nothing: it was sent ahead


async def test_a_pause_and_a_resumption_within_a_slot_are_its_revisions_on_one_row(
    client: httpx.AsyncClient, keys: Keys, factory: Factory, dispatcher: Dispatcher, boards: FakeBoards,
    settings: Settings, clock: FakeClock
) -> None:
    campaign = await factory.campaign()
    await factory.board("bang-day", delivery="push", endpoint_url=boards.url("ok", "bang-day"))
    await step(dispatcher, clock)
    await client.post(f"/api/v1/campaigns/{campaign['id']}/pause", headers=keys.auth("editor"))
    await step(dispatcher, clock, clock.now + timedelta(seconds=5))
    await client.post(f"/api/v1/campaigns/{campaign['id']}/resume", headers=keys.auth("editor"))
    await step(dispatcher, clock, clock.now + timedelta(seconds=5))
    (id0, shown), (id1, paused), (id2, resumed) = documents(boards, "bang-day")
    index = shown["slot"]["index"]
    assert [id0, id1, id2] == [f"bang-day:{campaign['id']}:{index}:{n}" for n in range(3)]
    assert paused["type"] == "blank" and paused["slot"] == shown["slot"] and paused["revision"] == 1
    assert resumed["type"] == "show" and resumed["revision"] == 2
    assert resumed["content"] == shown["content"] and resumed["slot"] == shown["slot"]  # the slot shown again
    logged = await row(settings, "bang-day", index)
    assert (logged.revisions, logged.push_status) == (2, "delivered")
    listed = (await client.get("/api/v1/rotations", params={"board_id": "bang-day"},
                               headers=keys.auth("operator"))).json()["items"]
    assert [item["revisions"] for item in listed] == [2]


async def test_content_sent_ahead_and_then_retired_is_taken_back_before_it_shows(
    client: httpx.AsyncClient, keys: Keys, factory: Factory, dispatcher: Dispatcher, boards: FakeBoards,
    clock: FakeClock
) -> None:
    campaign = await factory.campaign()
    await factory.board("bang-som", delivery="push", endpoint_url=boards.url("ok", "bang-som"), lead_seconds=LEAD)
    await step(dispatcher, clock, await step(dispatcher, clock))
    _, ahead = documents(boards, "bang-som")[-1]
    await client.post(f"/api/v1/slogans/{ahead['content']['slogan_id']}/retire", json={"reason": "sai"},
                      headers=keys.auth("approver"))
    await step(dispatcher, clock, clock.now + timedelta(seconds=1))  # still before its start
    ident, taken = documents(boards, "bang-som")[-1]
    assert taken["type"] == "blank" and taken["slot"] == ahead["slot"] and taken["revision"] == 1
    assert ident == f"bang-som:{campaign['id']}:{ahead['slot']['index']}:1"


async def test_the_emergency_stop_blanks_every_channel_and_lifting_it_brings_the_slot_back(
    client: httpx.AsyncClient, keys: Keys, factory: Factory, dispatcher: Dispatcher, boards: FakeBoards,
    clock: FakeClock
) -> None:
    await factory.campaign()
    await factory.board("bang-day", delivery="push", endpoint_url=boards.url("ok", "bang-day"))
    polled = await factory.board("bang-keo", delivery="poll")
    await step(dispatcher, clock)
    stopped = await client.post("/api/v1/emergency-stop", json={"reason": "Nội dung sai"},
                                headers=keys.auth("approver"))
    assert stopped.status_code == 201, stopped.text
    await step(dispatcher, clock, clock.now + timedelta(seconds=3))
    assert (await factory.current(polled)).json()["state"] == "idle"
    _, blank = documents(boards, "bang-day")[-1]
    assert blank["type"] == "blank" and blank["revision"] == 1
    await step(dispatcher, clock, clock.now + timedelta(seconds=30))  # a whole slot stopped: nothing new
    assert len(boards.received("bang-day")) == 2
    assert (await client.delete("/api/v1/emergency-stop", headers=keys.auth("admin"))).status_code == 200
    await step(dispatcher, clock, clock.now + timedelta(seconds=1))
    _, back = documents(boards, "bang-day")[-1]
    assert back["type"] == "show"  # the slot under way, not the one the stop began in
    assert back["slot"]["index"] == blank["slot"]["index"] + 1 and back["revision"] == 0
    assert (await factory.current(polled)).json()["state"] == "showing"


async def test_a_new_leader_resends_a_revised_slot_as_its_next_revision(
    client: httpx.AsyncClient, keys: Keys, factory: Factory, dispatcher: Dispatcher, boards: FakeBoards,
    settings: Settings, clock: FakeClock
) -> None:
    campaign = await factory.campaign()
    await factory.board("bang-day", delivery="push", endpoint_url=boards.url("ok", "bang-day"))
    await step(dispatcher, clock)
    await client.post(f"/api/v1/campaigns/{campaign['id']}/pause", headers=keys.auth("editor"))
    await step(dispatcher, clock, clock.now + timedelta(seconds=2))
    await client.post(f"/api/v1/campaigns/{campaign['id']}/resume", headers=keys.auth("editor"))
    other = Dispatcher(live=dispatcher.live, metrics=dispatcher.metrics, sessionmaker=dispatcher.sessionmaker,
                       clock=dispatcher.clock, master=dispatcher.master, pusher=dispatcher.pusher, name="other")
    await other.take_over()  # the first leader died before sending the resumption
    await step(other, clock, clock.now + timedelta(seconds=2))
    _, resent = documents(boards, "bang-day")[-1]
    assert resent["type"] == "show" and resent["revision"] == 2
    assert (await row(settings, "bang-day", resent["slot"]["index"])).revisions == 2
