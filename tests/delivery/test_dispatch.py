"""The leader's slot work against real loopback boards, on SQLite and PostgreSQL, with a
clock the test moves: rows, pushes, blanks, the circuit, missed slots, integrity."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from displayd.config import Settings
from displayd.db.models import BoardHealth, IntegrityIncident, Rotation, SchedulerState
from displayd.db.session import create_engine, create_sessionmaker
from displayd.delivery import dispatch
from displayd.delivery.dispatch import Dispatcher
from displayd.logbook import store
from displayd.runtime import runtime_of
from tests.conftest import FakeClock, Keys
from tests.delivery.boards import FakeBoards, Ok
from tests.factories import Factory


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks verification, written from the specification."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(part.split(",", 1) == ["v1", expected] for part in headers["webhook-signature"].split())


async def rows(settings: Settings) -> list[Rotation]:
    engine = create_engine(settings)
    async with create_sessionmaker(engine)() as session:
        result = list(await session.scalars(select(Rotation).order_by(Rotation.starts_at, Rotation.board_id)))
    await engine.dispose()
    return result


async def one(settings: Settings, model: Any, **where: Any) -> Any:
    engine = create_engine(settings)
    async with create_sessionmaker(engine)() as session:
        result = await session.scalar(select(model).filter_by(**where))
    await engine.dispose()
    return result


def another_leader(dispatcher: Dispatcher) -> Dispatcher:
    """A second process's dispatcher on the same database and boards, as after a take-over."""
    return Dispatcher(live=dispatcher.live, metrics=dispatcher.metrics, sessionmaker=dispatcher.sessionmaker,
                      clock=dispatcher.clock,
                      master=dispatcher.master, pusher=dispatcher.pusher, name="other")


async def test_a_slot_is_logged_then_pushed_signed_once(
    factory: Factory, dispatcher: Dispatcher, boards: FakeBoards, settings: Settings, clock: FakeClock
) -> None:
    campaign = await factory.campaign()
    pushed = await factory.board("bang-day", delivery="push", endpoint_url=boards.url("ok", "bang-day"))
    polled = await factory.board("bang-keo", delivery="poll")
    next_at = await dispatcher.sync(clock.now)
    assert next_at == clock.now + timedelta(seconds=30)
    await dispatcher.stop()
    [received] = boards.received("bang-day")
    assert verify(pushed["secret"], received.headers, received.body)
    assert received.headers["webhook-id"] == f"bang-day:{campaign['id']}:17280:0"
    body = json.loads(received.body)
    current = (await factory.current(pushed)).json()
    assert body == {"type": "show", "board_id": "bang-day", "slot": current["slot"], "revision": 0,
                    "content": current["content"], "content_hash": current["content_hash"],
                    "valid_until": current["valid_until"]}
    logged = {r.board_id: r for r in await rows(settings)}
    assert logged["bang-day"].push_status == "delivered" and logged["bang-day"].attempts == 1
    assert logged["bang-day"].http_status == 200 and logged["bang-day"].delivered_at is not None
    assert logged["bang-day"].content_hash == current["content_hash"]
    assert logged["bang-keo"].push_status == "not_pushed"
    assert polled["id"] == "bang-keo"
    # The same instant again, or a few seconds later in the slot: nothing new.
    await dispatcher.sync(clock.now)
    clock.advance(seconds=5)
    await dispatcher.sync(clock.now)
    await dispatcher.stop()
    assert len(boards.received("bang-day")) == 1 and len(await rows(settings)) == 2
    health = await one(settings, BoardHealth, board_id="bang-day")
    assert health.last_push_status == "delivered" and health.consecutive_failures == 0


async def test_a_second_leader_does_not_push_a_slot_again(
    factory: Factory, dispatcher: Dispatcher, boards: FakeBoards, clock: FakeClock
) -> None:
    await factory.campaign()
    await factory.board("bang-day", delivery="push", endpoint_url=boards.url("ok", "bang-day"))
    await dispatcher.sync(clock.now)
    await dispatcher.stop()
    other = another_leader(dispatcher)
    await other.take_over()
    await other.sync(clock.now)
    await other.stop()
    assert len(boards.received("bang-day")) == 1
    clock.advance(seconds=30)
    await other.sync(clock.now)
    await other.stop()
    assert len(boards.received("bang-day")) == 2


async def test_retirement_blanks_push_boards_and_pause_idles_them(
    client: httpx.AsyncClient, keys: Keys, factory: Factory, dispatcher: Dispatcher, boards: FakeBoards,
    clock: FakeClock
) -> None:
    campaign = await factory.campaign()
    await factory.board("bang-day", delivery="push", endpoint_url=boards.url("ok", "bang-day"))
    await dispatcher.sync(clock.now)
    await dispatcher.stop()
    first = boards.received("bang-day")[0]
    shown = json.loads(first.body)["content"]["slogan_id"]
    slot = json.loads(first.body)["slot"]
    assert json.loads(first.body)["revision"] == 0 and first.headers["webhook-id"].endswith(f":{slot['index']}:0")
    clock.advance(seconds=3)
    await client.post(f"/api/v1/slogans/{shown}/retire", json={"reason": "x"}, headers=keys.auth("approver"))
    await dispatcher.sync(clock.now)
    await dispatcher.stop()
    # The slot's next revision takes it back at once: a blank carrying the slot, revision 1.
    revised = boards.received("bang-day")[1]
    assert json.loads(revised.body) == {"type": "blank", "board_id": "bang-day", "slot": slot, "revision": 1,
                                        "until": "2024-05-07T00:00:30Z"}
    assert revised.headers["webhook-id"] == f"bang-day:{campaign['id']}:{slot['index']}:1"
    # The next slot brings content again, never the retired slogan.
    clock.advance(seconds=27)
    await dispatcher.sync(clock.now)
    await dispatcher.stop()
    assert json.loads(boards.received("bang-day")[2].body)["content"]["slogan_id"] != shown
    await client.post(f"/api/v1/campaigns/{campaign['id']}/pause", headers=keys.auth("editor"))
    await dispatcher.sync(clock.now)
    await dispatcher.stop()
    paused = json.loads(boards.received("bang-day")[3].body)  # its slot taken back: the next revision
    assert paused["type"] == "blank" and paused["revision"] == 1 and "slot" in paused


async def test_five_failed_slots_open_the_circuit(
    factory: Factory, dispatcher: Dispatcher, boards: FakeBoards, settings: Settings, clock: FakeClock
) -> None:
    await factory.campaign()
    await factory.board("bang-hong", delivery="push", endpoint_url=boards.url("error500", "bang-hong"))
    for _ in range(7):
        await dispatcher.sync(clock.now)
        await dispatcher.stop()
        clock.advance(seconds=30)
    statuses = [r.push_status for r in await rows(settings)]
    assert statuses == ["failed"] * 5 + ["skipped"] * 2
    assert boards.hits("bang-hong") == 5 * 3  # three attempts a slot, none once unreachable
    health = await one(settings, BoardHealth, board_id="bang-hong")
    assert health.unreachable_since is not None and health.consecutive_failures == 5
    clock.advance(minutes=5)
    await dispatcher.sync(clock.now)
    await dispatcher.stop()
    assert boards.hits("bang-hong") == 18  # tried again after five minutes


async def test_take_over_records_missed_slots_and_settles_stale_pushes(
    factory: Factory, dispatcher: Dispatcher, boards: FakeBoards, settings: Settings, clock: FakeClock
) -> None:
    await factory.campaign()
    await factory.board("bang-day", delivery="push", endpoint_url=boards.url("ok", "bang-day"))
    await dispatcher.sync(clock.now)
    await dispatcher.stop()
    engine = create_engine(settings)
    async with create_sessionmaker(engine)() as session, session.begin():
        await session.execute(update(Rotation).values(push_status="pending"))  # died mid-delivery
    await engine.dispose()
    clock.advance(minutes=3, seconds=10)  # down for the five slots 00:00:30-00:03:00 and a bit of a sixth
    window = await dispatcher.take_over()
    await dispatcher.sync(clock.now)  # the present first, then the past
    assert window == (clock.now - timedelta(minutes=3, seconds=10), clock.now)
    assert await dispatcher.record_missed(*window) == 5
    await dispatcher.stop()
    logged = await rows(settings)
    assert [r.push_status for r in logged] == ["failed"] + ["missed"] * 5 + ["delivered"]
    assert "outcome unknown" in (logged[0].error or "")
    assert [r.slot_index for r in logged] == list(range(17280, 17287))
    state = await one(settings, SchedulerState, id=1)
    assert state.handled_until == clock.now


async def test_a_board_reporting_foreign_content_is_an_incident(
    app: FastAPI, client: httpx.AsyncClient, keys: Keys, factory: Factory, dispatcher: Dispatcher, boards: FakeBoards,
    settings: Settings, clock: FakeClock
) -> None:
    await factory.campaign()
    liar = await factory.board("bang-la", delivery="push",
                               endpoint_url=boards.url(Ok(content_hash="sha256:" + "e" * 64), "bang-la"))
    await dispatcher.sync(clock.now)
    await dispatcher.stop()
    incident = await one(settings, IntegrityIncident, board_id="bang-la")
    assert incident.source == "push" and incident.reported_hash == "sha256:" + "e" * 64
    # A poll naming content never issued to the board is one too (in the next slot: one per slot).
    clock.advance(seconds=30)
    current = await factory.current(liar)
    foreign = current.headers["etag"].replace(current.json()["content_hash"][7:39], "f" * 32)
    assert (await factory.current(liar, **{"If-None-Match": foreign})).status_code == 200
    await runtime_of(app).polls.flush()
    board = (await client.get("/api/v1/boards/bang-la", headers=keys.auth("operator"))).json()
    assert board["health"]["integrity_incidents"] == 2


async def test_polls_record_first_polled_at(
    app: FastAPI, factory: Factory, dispatcher: Dispatcher, settings: Settings, clock: FakeClock
) -> None:
    await factory.campaign()
    board = await factory.board("bang-keo", delivery="poll")
    clock.advance(seconds=2)
    await factory.current(board)  # before the leader wrote the row: kept and tried again
    await runtime_of(app).polls.flush()
    await dispatcher.sync(clock.now)
    clock.advance(seconds=5)
    await factory.current(board)
    await runtime_of(app).polls.flush()
    [row] = await rows(settings)
    assert row.push_status == "not_pushed" and row.first_polled_at == clock.now - timedelta(seconds=5)
    health = await one(settings, BoardHealth, board_id="bang-keo")
    assert health.last_poll_at == clock.now


async def test_a_boundary_planned_ahead_is_replanned_after_a_change(
    client: httpx.AsyncClient, keys: Keys, factory: Factory, dispatcher: Dispatcher, boards: FakeBoards,
    clock: FakeClock
) -> None:
    await factory.campaign()
    await factory.board("bang-day", delivery="push", endpoint_url=boards.url("ok", "bang-day"))
    next_at = await dispatcher.sync(clock.now)
    assert next_at is not None
    await dispatcher.stop()
    clock.now = next_at - timedelta(seconds=1)
    await dispatcher.prepare(next_at)
    upcoming = (await client.get("/api/v1/boards/bang-day/schedule", headers=keys.auth("operator"), params={
        "from": next_at.isoformat(), "to": (next_at + timedelta(seconds=1)).isoformat()})).json()["items"][0]
    # Retired between the plan and the boundary: the plan is stale, the boundary plans again.
    await client.post(f"/api/v1/slogans/{upcoming['slogan_id']}/retire", json={"reason": "x"},
                      headers=keys.auth("approver"))
    clock.now = next_at
    await dispatcher.sync(next_at)
    await dispatcher.stop()
    pushed = json.loads(boards.received("bang-day")[-1].body)
    assert pushed["slot"]["starts_at"] == upcoming["starts_at"]
    assert pushed["content"]["slogan_id"] != upcoming["slogan_id"]
    # Without a change in between, the planned pushes are what goes out.
    following = await dispatcher.sync(next_at)
    assert following is not None
    clock.now = following - timedelta(seconds=1)
    await dispatcher.prepare(following)
    clock.now = following
    await dispatcher.sync(following)
    await dispatcher.stop()
    current = (await client.get("/api/v1/boards/bang-day/current", headers=keys.auth("operator"))).json()
    last = json.loads(boards.received("bang-day")[-1].body)
    assert last["slot"] == current["slot"] and last["content_hash"] == current["content_hash"]
    assert len(boards.received("bang-day")) == 3


async def test_each_claim_is_pushed_once_committed_and_a_failed_claim_is_tried_again(
    factory: Factory, dispatcher: Dispatcher, boards: FakeBoards, settings: Settings, clock: FakeClock,
    monkeypatch: Any
) -> None:
    await factory.campaign()
    await factory.board("a-keo", delivery="poll")
    push_boards = [f"bang-{n}" for n in range(1, 8)]
    for board_id in push_boards:
        await factory.board(board_id, delivery="push", endpoint_url=boards.url("ok", board_id))
    monkeypatch.setattr(dispatch, "FIRST_CLAIM", 2)
    real_insert = store.insert_rows
    calls = 0

    async def second_claim_fails(session: Any, claim: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OperationalError("INSERT INTO rotation", {}, Exception("database is locked"))
        return await real_insert(session, claim)

    monkeypatch.setattr(store, "insert_rows", second_claim_fails)
    with pytest.raises(OperationalError):
        await dispatcher.sync(clock.now)
    await dispatcher.stop()
    # The first claim (push boards first) was committed and pushed; nothing after it was.
    first = [b for b in push_boards if boards.received(b)]
    assert len(first) == 2 and all(len(boards.received(b)) == 1 for b in first)
    logged = await rows(settings)
    assert sorted(r.board_id for r in logged) == first and {r.push_status for r in logged} == {"delivered"}
    # The next call gives the rest their slot, and nobody theirs twice.
    monkeypatch.setattr(store, "insert_rows", real_insert)
    await dispatcher.sync(clock.now)
    await dispatcher.stop()
    assert all(len(boards.received(b)) == 1 for b in push_boards)
    logged = await rows(settings)
    assert len(logged) == 8
    expected = {"a-keo": "not_pushed"} | dict.fromkeys(push_boards, "delivered")
    assert {r.board_id: r.push_status for r in logged} == expected


async def test_a_missed_window_left_unwritten_is_written_by_the_next_leader(
    factory: Factory, dispatcher: Dispatcher, boards: FakeBoards, settings: Settings, clock: FakeClock
) -> None:
    await factory.campaign()
    await factory.board("bang-day", delivery="push", endpoint_url=boards.url("ok", "bang-day"))
    await dispatcher.sync(clock.now)
    await dispatcher.stop()
    down_at = clock.now
    clock.advance(minutes=2)  # down for the slots 00:00:30-00:02:00
    window = await dispatcher.take_over()
    assert window == (down_at, clock.now)
    await dispatcher.sync(clock.now)  # the present is pushed; stopped before writing the past
    await dispatcher.stop()
    clock.advance(seconds=30)
    other = another_leader(dispatcher)
    window = await other.take_over()
    assert window == (down_at, clock.now)  # not from the boundary the first one handled
    await other.sync(clock.now)
    assert await other.record_missed(*window) == 3
    await other.stop()
    logged = await rows(settings)
    assert [r.push_status for r in logged] == ["delivered"] + ["missed"] * 3 + ["delivered"] * 2
    assert (await one(settings, SchedulerState, id=1)).missed_from is None
    clock.advance(seconds=30)
    assert await other.take_over() == (clock.now - timedelta(seconds=30), clock.now)
