"""`GET /api/v1/boards/{id}/events`: the board event stream, on SQLite and PostgreSQL.

Streams are opened on the app in this process (tests/delivery/stream_client.py) with a clock
the test moves: after moving it, a test calls `hub.sync()`, the pass the hub's own task runs
at each instant a stream needs something. Changes made through the API reach the streams
through the snapshot rebuild alone (the hub's task, woken by it), as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from displayd import changes
from displayd.app import create_app
from displayd.config import Settings
from displayd.db.models import Board, DailyTotal, EmergencyStop, Rotation
from displayd.delivery.dispatch import Dispatcher
from displayd.live import stream as stream_module
from displayd.live.stream import StreamHub
from displayd.live.watch import GC_GROWN_EVERY
from displayd.runtime import runtime_of
from tests.conftest import FakeClock, Keys
from tests.delivery.stream_client import EventStream
from tests.factories import Factory
from tests.test_metrics import scrape


def events_path(board_id: str) -> str:
    return f"/api/v1/boards/{board_id}/events"


def opened(app: FastAPI, board: dict[str, Any], **options: Any) -> EventStream:
    return EventStream(app, events_path(board["id"]), token=board["token"], **options)


def hub(app: FastAPI) -> StreamHub:
    return runtime_of(app).streams


async def change_board(app: FastAPI, board_id: str, **values: Any) -> None:
    """Set board columns the API does not take (yet): `delivery: stream`, `lead_seconds`."""
    runtime = runtime_of(app)
    async with runtime.sessionmaker() as session, session.begin():
        await session.execute(update(Board).where(Board.id == board_id).values(**values))
        await changes.touch(session)
    await runtime.live.refresh()


async def emergency_stop(app: FastAPI, clock: FakeClock, *, holds: bool) -> None:
    """Start or lift the emergency stop in the database, as its endpoint will."""
    runtime = runtime_of(app)
    async with runtime.sessionmaker() as session, session.begin():
        if holds:
            session.add(EmergencyStop(reason="Kiểm tra", started_at=clock.now, started_by="test"))
        else:
            await session.execute(update(EmergencyStop).where(EmergencyStop.lifted_at.is_(None))
                                  .values(lifted_at=clock.now, lifted_by="test"))
        await changes.touch(session)
    await runtime.live.refresh()


async def rotation_rows(app: FastAPI) -> dict[int, Rotation]:
    async with runtime_of(app).sessionmaker() as session:
        return {row.slot_index: row for row in await session.scalars(select(Rotation))}


async def test_a_stream_opens_with_what_shows_now_as_a_push_would_send_it(
    app: FastAPI, factory: Factory, clock: FakeClock
) -> None:
    campaign = await factory.campaign()
    board = await factory.board("bang-a")  # a poll board, no lead: content at each slot's start
    clock.advance(seconds=7)
    current = (await factory.current(board)).json()
    async with opened(app, board) as stream:
        assert stream.status == 200
        assert stream.headers["content-type"] == "text/event-stream"
        assert stream.headers["cache-control"] == "no-cache"
        event = await stream.next()
        assert event.type == "show" and event.id == f"bang-a:{campaign['id']}:17280:0"
        assert event.data == {"type": "show", "board_id": "bang-a", "slot": current["slot"], "revision": 0,
                              "content": current["content"], "content_hash": current["content_hash"],
                              "valid_until": current["valid_until"]}
        clock.advance(seconds=22)  # 00:00:29
        assert hub(app).sync() == clock.now + timedelta(seconds=1)  # when the hub's task wakes next
        await stream.nothing()
        clock.advance(seconds=1)
        hub(app).sync()
        following = await stream.next()
        assert following.id == f"bang-a:{campaign['id']}:17281:0"
        assert following.data is not None and following.data["slot"]["starts_at"] == "2024-05-07T00:00:30Z"
        assert following.data["content"]["slogan_id"] != current["content"]["slogan_id"]


async def test_a_stream_board_gets_its_next_slot_ahead(app: FastAPI, factory: Factory, clock: FakeClock) -> None:
    campaign = await factory.campaign()
    board = await factory.board("bang-a")
    await change_board(app, "bang-a", delivery="stream")  # lead 0: still at least 2 s ahead on a stream
    async with opened(app, board) as stream:
        assert (await stream.next()).id == f"bang-a:{campaign['id']}:17280:0"
        clock.advance(seconds=27.5)
        assert hub(app).sync() == clock.now + timedelta(seconds=0.5)
        await stream.nothing()
        clock.advance(seconds=0.5)  # 00:00:28, 2 s before the next slot
        hub(app).sync()
        ahead = await stream.next()
        assert ahead.type == "show" and ahead.id == f"bang-a:{campaign['id']}:17281:0"
        assert ahead.data is not None and ahead.data["slot"]["starts_at"] == "2024-05-07T00:00:30Z"
        clock.advance(seconds=2)  # the slot sent ahead begins: nothing to send then
        hub(app).sync()
        await stream.nothing()

    await change_board(app, "bang-a", lead_seconds=5)  # a lead of its own, above the least
    clock.advance(seconds=24)  # 00:00:54: the slot of 00:01:00 is 6 s away
    async with opened(app, board) as stream:
        assert (await stream.next()).id == f"bang-a:{campaign['id']}:17281:0"
        await stream.nothing()
        clock.advance(seconds=1)
        hub(app).sync()
        assert (await stream.next()).id == f"bang-a:{campaign['id']}:17282:0"


async def test_a_stream_board_is_blanked_when_its_campaign_ends(
    app: FastAPI, factory: Factory, clock: FakeClock
) -> None:
    campaign = await factory.campaign(ends_at="2024-05-07T00:01:00Z")
    board = await factory.board("bang-a")
    await change_board(app, "bang-a", delivery="stream")
    clock.advance(seconds=28)
    async with opened(app, board) as stream:
        assert [(await stream.next()).id, (await stream.next()).id] == \
            [f"bang-a:{campaign['id']}:17280:0", f"bang-a:{campaign['id']}:17281:0"]
        # The slot sent ahead starts with nothing more to send; the last slot's end is when it goes idle.
        assert hub(app).sync() == clock.now + timedelta(seconds=30)  # 00:00:58, the last slot's lead
        clock.advance(seconds=30)
        assert hub(app).sync() == clock.now + timedelta(seconds=2)  # nothing follows it: its end
        await stream.nothing()
        clock.advance(seconds=2)
        hub(app).sync()
        idle = await stream.next()
        assert idle.type == "blank" and idle.data == {"type": "blank", "board_id": "bang-a", "until": None}


async def test_a_retirement_is_sent_at_once_as_a_blank_revision(
    app: FastAPI, client: httpx.AsyncClient, keys: Keys, factory: Factory
) -> None:
    campaign = await factory.campaign()
    board = await factory.board("bang-a")
    async with opened(app, board) as stream:
        first = await stream.next()
        assert first.data is not None
        shown = first.data["content"]["slogan_id"]
        retired = await client.post(f"/api/v1/slogans/{shown}/retire", headers=keys.auth("approver"),
                                    json={"reason": "Thu hồi"})
        assert retired.status_code == 200
        blank = await stream.next()  # the hub's task, woken by the rebuild: no sync() here
        assert blank.type == "blank" and blank.id == f"bang-a:{campaign['id']}:17280:1"
        assert blank.data == {"type": "blank", "board_id": "bang-a", "slot": first.data["slot"], "revision": 1,
                              "until": first.data["slot"]["ends_at"]}
        await stream.nothing()


async def test_pause_blanks_the_slot_and_resumption_gives_it_back(
    app: FastAPI, client: httpx.AsyncClient, keys: Keys, factory: Factory
) -> None:
    campaign = await factory.campaign()
    board = await factory.board("bang-a")
    slot = f"bang-a:{campaign['id']}:17280"
    async with opened(app, board) as stream:
        first = await stream.next()
        paused = await client.post(f"/api/v1/campaigns/{campaign['id']}/pause", headers=keys.auth("editor"))
        assert paused.status_code == 200
        blank = await stream.next()
        assert (blank.type, blank.id) == ("blank", f"{slot}:1")
        await stream.nothing()
        resumed = await client.post(f"/api/v1/campaigns/{campaign['id']}/resume", headers=keys.auth("editor"))
        assert resumed.status_code == 200
        again = await stream.next()
        assert (again.type, again.id) == ("show", f"{slot}:2")
        assert again.data is not None and first.data is not None
        assert again.data["content"] == first.data["content"] and again.data["revision"] == 2


async def test_the_emergency_stop_blanks_every_stream_until_it_is_lifted(
    app: FastAPI, factory: Factory, clock: FakeClock
) -> None:
    campaign = await factory.campaign()
    boards = [await factory.board(board_id) for board_id in ("bang-a", "bang-b")]
    async with opened(app, boards[0]) as a, opened(app, boards[1]) as b:
        for stream in (a, b):
            assert (await stream.next()).type == "show"
        await emergency_stop(app, clock, holds=True)
        for stream, board in ((a, boards[0]), (b, boards[1])):
            blank = await stream.next()
            assert (blank.type, blank.id) == ("blank", f"{board['id']}:{campaign['id']}:17280:1")
        clock.advance(seconds=30)  # while it holds, later slots are not sent
        hub(app).sync()
        await a.nothing()
        await emergency_stop(app, clock, holds=False)
        shown = await a.next()
        assert (shown.type, shown.id) == ("show", f"bang-a:{campaign['id']}:17281:0")


async def test_an_idle_board_is_told_so_when_it_connects(app: FastAPI, factory: Factory, clock: FakeClock) -> None:
    board = await factory.board("bang-a")
    async with opened(app, board) as stream:
        blank = await stream.next()
        assert blank.type == "blank" and blank.id == f"bang-a:blank:{int(clock.now.timestamp() * 1000)}"
        assert blank.data == {"type": "blank", "board_id": "bang-a", "until": None}
        campaign = await factory.campaign()  # a campaign that reaches it: sent at once
        shown = await stream.next()
        assert shown.id == f"bang-a:{campaign['id']}:17280:0"


async def test_the_token_goes_in_the_header_or_the_query(app: FastAPI, factory: Factory, keys: Keys) -> None:
    await factory.campaign()
    board = await factory.board("bang-a")
    other = await factory.board("bang-b")
    async with EventStream(app, events_path("bang-a"), query=f"token={board['token']}") as stream:
        assert stream.status == 200 and (await stream.next()).type == "show"
    async with opened(app, board) as stream:
        assert stream.status == 200 and (await stream.next()).type == "show"
    # Another board's token learns nothing, not even that the board exists.
    async with EventStream(app, events_path("bang-a"), token=other["token"]) as stream:
        assert stream.status == 404 and stream.json()["error"] == "not_found"
    async with EventStream(app, events_path("bang-nowhere"), token=board["token"]) as stream:
        assert stream.status == 404
    async with EventStream(app, events_path("bang-a")) as stream:
        assert stream.status == 401 and stream.headers["www-authenticate"] == "Bearer"
        assert set(stream.json()) == {"error", "detail"}
    async with EventStream(app, events_path("bang-a"), query="token=") as stream:
        assert stream.status == 401
    failures = runtime_of(app).metrics.auth_failures["board_token"]
    async with EventStream(app, events_path("bang-a"), token="bt_not-a-real-token") as stream:
        assert stream.status == 401 and stream.json()["detail"] == "the board token is not valid"
    assert runtime_of(app).metrics.auth_failures["board_token"] == failures + 1  # counted as the poll path does
    async with EventStream(app, events_path("bang-a"), token=keys.admin) as stream:
        assert stream.status == 401  # staff keys read /current; a stream is the board's own
    assert hub(app).count == 0


async def test_more_streams_than_the_cap_get_429(app: FastAPI, factory: Factory) -> None:
    await factory.campaign()
    board = await factory.board("bang-a")
    other = await factory.board("bang-b")
    assert runtime_of(app).settings.stream_connections_per_board == 2
    async with opened(app, board), opened(app, board):
        async with opened(app, board) as third:
            assert third.status == 429 and third.headers["retry-after"] == "5"
            assert third.json()["error"] == "too_many_streams"
        async with opened(app, other) as elsewhere:  # the cap is per board
            assert elsewhere.status == 200
        assert hub(app).count == 2
    async with opened(app, board) as again:  # the two closed: room again
        assert again.status == 200


async def test_last_event_id_resumes_with_the_current_and_next_slot(
    app: FastAPI, client: httpx.AsyncClient, keys: Keys, factory: Factory, clock: FakeClock
) -> None:
    campaign = await factory.campaign()
    board = await factory.board("bang-a")
    await change_board(app, "bang-a", delivery="stream")
    slot = f"bang-a:{campaign['id']}"
    clock.advance(seconds=28)
    async with opened(app, board) as stream:
        first = [await stream.next(), await stream.next()]
    assert [e.id for e in first] == [f"{slot}:17280:0", f"{slot}:17281:0"]

    clock.advance(seconds=1)  # it reconnects: the slot its last event named comes as the next revision
    async with opened(app, board, headers={"Last-Event-ID": f"{slot}:17281:0"}) as stream:
        again = [await stream.next(), await stream.next()]
        await stream.nothing()
    assert [e.id for e in again] == [f"{slot}:17280:0", f"{slot}:17281:1"]
    assert again[1].data is not None and first[1].data is not None
    assert again[1].data["content"] == first[1].data["content"] and again[1].data["revision"] == 1

    async with opened(app, board, headers={"Last-Event-ID": f"{slot}:17280:3"}) as stream:
        assert [(await stream.next()).id, (await stream.next()).id] == [f"{slot}:17280:4", f"{slot}:17281:0"]
    for foreign in (f"bang-b:{campaign['id']}:17280:3", "bang-a:blank:1715040000000", "nonsense", f"{slot}:17280:²",
                    f"{slot}:17279:5"):  # another board's, a blank's, not one of ours, a slot over: a fresh start
        async with opened(app, board, headers={"Last-Event-ID": foreign}) as stream:
            assert [(await stream.next()).id, (await stream.next()).id] == [f"{slot}:17280:0", f"{slot}:17281:0"]

    # Paused while it was away: the slot it holds is taken back, and it is told it is idle.
    paused = await client.post(f"/api/v1/campaigns/{campaign['id']}/pause", headers=keys.auth("editor"))
    assert paused.status_code == 200
    async with opened(app, board, headers={"Last-Event-ID": f"{slot}:17281:1"}) as stream:
        taken = await stream.next()
        idle = await stream.next()
        await stream.nothing()
    assert (taken.type, taken.id) == ("blank", f"{slot}:17281:2")
    assert taken.data is not None and taken.data["slot"]["starts_at"] == "2024-05-07T00:00:30Z"
    assert idle.type == "blank" and idle.data is not None and "slot" not in idle.data


async def test_a_comment_line_keeps_the_stream_alive(app: FastAPI, factory: Factory) -> None:
    board = await factory.board("bang-a")
    streams = hub(app)
    assert streams.heartbeat == 15.0
    async with opened(app, board) as stream:
        await stream.next()  # the blank of an idle board
        streams.heartbeat = 0.05
        streams.wake()
        beat = await stream.next(comments=True)
        assert beat.type is None and beat.comment == "keepalive"
        assert (await stream.next(comments=True)).comment == "keepalive"  # and again


async def test_a_streamed_slot_is_logged_delivered_before_it_starts(
    app: FastAPI, factory: Factory, dispatcher: Dispatcher, clock: FakeClock
) -> None:
    campaign = await factory.campaign()
    board = await factory.board("bang-a")
    await change_board(app, "bang-a", delivery="stream")
    recorder = hub(app).recorder
    async with opened(app, board) as stream:
        await stream.next()
        await recorder.flush()  # the leader has not written the slot's row yet: kept, tried again
        assert await rotation_rows(app) == {}
        await dispatcher.sync(clock.now)
        assert (await rotation_rows(app))[17280].push_status == "not_pushed"
        await recorder.flush()
        row = (await rotation_rows(app))[17280]
        assert (row.push_status, row.attempts, row.revisions) == ("delivered", 1, 0)
        assert row.delivered_at == clock.now == row.starts_at

        clock.advance(seconds=28)  # the leader writes the next slot's row at the lead; the stream sends it
        await dispatcher.sync(clock.now)
        hub(app).sync()
        ahead = await stream.next()
        assert ahead.id == f"bang-a:{campaign['id']}:17281:0"
        sent_at = clock.now
        await recorder.flush()
        row = (await rotation_rows(app))[17281]
        assert row.push_status == "delivered" and row.delivered_at == sent_at < row.starts_at

    # Another stream sends it again later, as a revision: the first delivery and the highest revision stay.
    clock.advance(seconds=1)
    async with opened(app, board, headers={"Last-Event-ID": f"bang-a:{campaign['id']}:17281:4"}) as stream:
        assert [(await stream.next()).id, (await stream.next()).id][1] == f"bang-a:{campaign['id']}:17281:5"
    await recorder.flush()
    row = (await rotation_rows(app))[17281]
    assert (row.push_status, row.attempts, row.revisions, row.delivered_at) == ("delivered", 1, 5, sent_at)
    async with runtime_of(app).sessionmaker() as session:  # the daily totals count each delivery once
        delivered = await session.scalar(select(func.sum(DailyTotal.delivered)))
        not_pushed = await session.scalar(select(func.sum(DailyTotal.not_pushed)))
    assert (delivered, not_pushed) == (2, 0)


async def test_a_push_outcome_is_not_overwritten_by_a_stream(
    app: FastAPI, factory: Factory, dispatcher: Dispatcher, clock: FakeClock
) -> None:
    await factory.campaign()
    board = await factory.board("bang-a", delivery="push", endpoint_url="http://127.0.0.1:9/nowhere")
    await dispatcher.sync(clock.now)  # nothing listens there: the push fails
    await dispatcher.stop()
    assert (await rotation_rows(app))[17280].push_status == "failed"
    async with opened(app, board) as stream:  # any board may open a stream
        assert (await stream.next()).type == "show"
    await hub(app).recorder.flush()
    row = (await rotation_rows(app))[17280]
    assert row.push_status == "failed" and row.delivered_at is None


async def test_a_deleted_board_or_a_replaced_token_ends_the_stream(
    app: FastAPI, client: httpx.AsyncClient, keys: Keys, factory: Factory
) -> None:
    await factory.campaign()
    a, b = await factory.board("bang-a"), await factory.board("bang-b")
    async with opened(app, a) as stream_a, opened(app, b) as stream_b:
        await stream_a.next()
        await stream_b.next()
        renewed = await client.post("/api/v1/boards/bang-a/credentials", headers=keys.auth("admin"))
        assert renewed.status_code == 200
        await stream_a.end()  # ended cleanly, with the response's last chunk
        assert stream_b.task is not None and not stream_b.task.done()
        deleted = await client.delete("/api/v1/boards/bang-b", headers=keys.auth("admin"))
        assert deleted.status_code in (200, 204)
        await stream_b.end()
    assert hub(app).count == 0


async def test_a_board_that_stops_reading_is_dropped_and_the_others_go_on(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    board, other = await factory.board("bang-a"), await factory.board("bang-b")
    streams = hub(app)
    streams.write_timeout = 0.2
    async with opened(app, board, block_writes=True) as stuck, opened(app, other) as reading:
        assert stuck.task is not None
        await asyncio.wait_for(asyncio.shield(stuck.task), 2)  # its first write waited too long: dropped
        assert streams.dropped == 1 and streams.count == 1
        await reading.next()
        await factory.campaign()
        assert (await reading.next()).type == "show"
        assert (await scrape(client))[("displayd_streams_dropped_total", ())] == 1
    # However fast the hub queues (its heartbeat here), what waits behind a stuck write is bounded.
    streams.write_timeout = 60.0
    monkeypatch.setattr(stream_module, "MAX_PENDING", 2000)  # the show in flight, then ~150 comment lines
    async with opened(app, board, block_writes=True) as stuck:
        streams.heartbeat = 0.001
        streams.wake()
        assert stuck.task is not None
        await asyncio.wait_for(asyncio.shield(stuck.task), 2)
        assert streams.dropped == 2 and streams.count == 0


async def test_a_write_that_waits_goes_on_with_what_was_queued_behind_it(
    app: FastAPI, client: httpx.AsyncClient, keys: Keys, factory: Factory, clock: FakeClock
) -> None:
    """A write the connection cannot take at once (its transport paused) is finished by a task,
    and what the hub queued meanwhile follows it, in order."""
    campaign = await factory.campaign()
    board = await factory.board("bang-a")
    clock.advance(seconds=7)
    streams = hub(app)
    async with opened(app, board, block_writes=True) as slow:
        await asyncio.sleep(0.05)
        stream = streams.boards["bang-a"][0]
        assert stream.writer is not None  # the first event's write waits, in a task
        slogan = (await factory.current(board)).json()["content"]["slogan_id"]
        retired = await client.post(f"/api/v1/slogans/{slogan}/retire", headers=keys.auth("approver"),
                                    json={"reason": "Thu hồi"})
        assert retired.status_code == 200
        await asyncio.sleep(0.05)  # the hub's pass queued the blank behind it
        assert stream.pending and stream.state == "open"
        slow.unblock()
        first, second = await slow.next(), await slow.next()
        assert (first.type, second.type) == ("show", "blank")
        assert second.data is not None and second.data["slot"]["campaign_id"] == campaign["id"]
        assert second.data["revision"] == 1 and streams.dropped == 0
        await asyncio.sleep(0.05)
        assert stream.writer is None and not stream.pending


async def test_the_scheduler_hears_of_a_change_once_the_streams_were_told(
    app: FastAPI, client: httpx.AsyncClient, keys: Keys, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With streams open, the leader plans its revisions after the hub's pass over the new
    snapshot (they share one event loop); with none, at once."""
    await factory.campaign()
    board = await factory.board("bang-a")
    runtime = runtime_of(app)
    told: list[bool] = []  # for each change the scheduler heard of: had the streams had their pass?

    async def changed() -> None:
        told.append(runtime.streams._passed is runtime.live.snapshot)

    monkeypatch.setattr(runtime.live, "listeners", [*runtime.live.listeners, runtime.streams.then(changed)])
    async with opened(app, board) as stream:
        first = await stream.next()
        assert first.data is not None
        retired = await client.post(f"/api/v1/slogans/{first.data['content']['slogan_id']}/retire",
                                    headers=keys.auth("approver"), json={"reason": "Thu hồi"})
        assert retired.status_code == 200
        assert (await stream.next()).type == "blank"
        for _ in range(50):
            if told:
                break
            await asyncio.sleep(0.01)
    assert told and all(told)  # (on PostgreSQL this process may also hear its own notification)
    await factory.board("bang-b")  # no stream open: told at once, in the rebuild
    assert told[-1] is False


async def test_open_streams_are_a_gauge(app: FastAPI, client: httpx.AsyncClient, factory: Factory) -> None:
    board = await factory.board("bang-a")
    assert (await scrape(client))[("displayd_streams_open", ())] == 0
    async with opened(app, board) as stream:
        await stream.next()
        assert (await scrape(client))[("displayd_streams_open", ())] == 1
    assert (await scrape(client))[("displayd_streams_open", ())] == 0


async def test_stopping_ends_every_stream_cleanly(settings: Settings, clock: FakeClock, keys: Keys) -> None:
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://displayd.test") as client:
            board = await Factory(client, keys).board("bang-a")
        stream = opened(app, board)
        await stream.__aenter__()
        await stream.next()
    await stream.end()  # the lifespan's end wrote each stream's last chunk
    assert stream.task is not None
    await asyncio.wait_for(stream.task, 2)


async def test_streams_opening_in_numbers_bring_the_heap_s_freeze_forward(
    app: FastAPI, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Open streams are long-lived objects: once many opened since the last freeze, the process
    collects and freezes soon (`Live.heap_grew`), not a minute after the last change, so the
    collector's own full collections do not walk every stream's objects every few slots."""
    live = runtime_of(app).live
    grew: list[int] = []
    monkeypatch.setattr(stream_module, "FREEZE_STREAMS", 8)
    monkeypatch.setattr(live, "heap_grew", lambda: grew.append(hub(app).count))
    boards = [await factory.board(f"bang-{n:02d}") for n in range(10)]
    async with contextlib.AsyncExitStack() as stack:
        for board in boards:
            await (await stack.enter_async_context(opened(app, board))).next()
        assert grew == [8, 10]  # at FREEZE_STREAMS, then at a quarter more
    async with contextlib.AsyncExitStack() as stack:  # all closed and opened again: new objects
        for board in boards[:8]:
            await (await stack.enter_async_context(opened(app, board))).next()
    assert grew == [8, 10, 8]


async def test_the_heap_s_growth_brings_a_change_s_collection_forward(app: FastAPI, factory: Factory) -> None:
    live = runtime_of(app).live
    loop = asyncio.get_running_loop()
    await factory.campaign()  # a change: its collection comes a minute after the last one
    assert live._collecting is not None and live._collecting.when() - loop.time() > GC_GROWN_EVERY
    live.heap_grew()
    growth = live._collecting
    assert growth is not None and growth.when() - loop.time() <= GC_GROWN_EVERY
    await factory.board("bang-a")  # another change keeps the sooner one
    assert live._collecting is growth
