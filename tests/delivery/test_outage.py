"""PostgreSQL going away under a leader, through a TCP proxy the test cuts (`tests/netcut.py`):
every slot is pushed on time from memory, what could not be written waits in the backlog,
and once the database is back the log is complete — nothing lost, nothing doubled, no
`missed`. Polls keep answering throughout. The whole app talks to the database through the
proxy, as a replica whose database became unreachable would."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.engine import make_url

from displayd.config import Settings
from displayd.db.models import BoardHealth, SchedulerState
from displayd.db.session import create_engine, create_sessionmaker
from displayd.delivery import dispatch
from displayd.delivery.dispatch import Dispatcher
from displayd.live import recorder
from displayd.runtime import runtime_of
from tests.conftest import FakeClock
from tests.delivery.boards import FakeBoards
from tests.delivery.test_dispatch import rows
from tests.delivery.test_stream import opened
from tests.factories import Factory
from tests.netcut import NetCut

PUSH_BOARDS = ["bang-1", "bang-2", "bang-3"]


@pytest.fixture
def backend() -> str:
    return "postgresql"  # the outage of a database server; SQLite is a file in the process


@pytest.fixture
async def direct(settings: Settings) -> Settings:
    return settings


@pytest.fixture
async def proxy(direct: Settings) -> AsyncIterator[NetCut]:
    async with NetCut(direct.database_url) as proxy:
        yield proxy


@pytest.fixture
async def app(direct: Settings, proxy: NetCut, clock: FakeClock, monkeypatch: Any) -> AsyncIterator[FastAPI]:
    """The app on the test's database, through the proxy."""
    from displayd.app import create_app

    monkeypatch.setattr(dispatch, "BACKLOG_RETRY", 0.05)
    monkeypatch.setattr(recorder, "FLUSH_SECONDS", 3600.0)  # the tests flush the recorders themselves
    proxied = make_url(direct.database_url).set(host=proxy.host, port=proxy.port)
    settings = direct.model_copy(update={"database_url": proxied.render_as_string(hide_password=False)})
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        yield app
    await proxy.restore()  # let the teardown's last flushes through


async def state(settings: Settings) -> SchedulerState:
    engine = create_engine(settings)
    async with create_sessionmaker(engine)() as session:
        result = await session.scalar(select(SchedulerState))
    await engine.dispose()
    assert result is not None
    return result


def shows(boards: FakeBoards, board_id: str) -> list[str]:
    """The webhook-ids of the shows a board received, in order."""
    return [r.headers["webhook-id"] for r in boards.received(board_id) if json.loads(r.body)["type"] == "show"]


async def settled(dispatcher: Dispatcher, limit: float = 10.0) -> None:
    """Wait for the backlog's writer to have written everything (it tries every BACKLOG_RETRY)."""
    for _ in range(int(limit / 0.05)):
        if not dispatcher.offline:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"still offline, {dispatcher.backlog.waiting} waiting")


async def metric(client: httpx.AsyncClient, name: str) -> float:
    text = (await client.get("/metrics")).text
    [line] = [line for line in text.splitlines() if line.startswith(name + " ")]
    return float(line.split()[1])


async def setup(factory: Factory, boards: FakeBoards) -> dict[str, Any]:
    await factory.campaign()
    for board_id in PUSH_BOARDS:
        await factory.board(board_id, delivery="push", endpoint_url=boards.url("ok", board_id))
    poller: dict[str, Any] = await factory.board("bang-keo", delivery="poll")
    return poller


async def test_an_outage_is_invisible_to_boards_and_the_log_is_complete_afterwards(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, dispatcher: Dispatcher, boards: FakeBoards,
    proxy: NetCut, direct: Settings, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    poller = await setup(factory, boards)
    runtime = runtime_of(app)
    runtime.scheduler = SimpleNamespace(leader=True, dispatcher=dispatcher, leadership=SimpleNamespace(
        held=frozenset(range(64)), live=1, offline=False))  # type: ignore[assignment]
    await dispatcher.sync(clock.now)
    await dispatcher.stop()
    assert all(len(shows(boards, b)) == 1 for b in PUSH_BOARDS)

    await proxy.cut()
    caplog.set_level(logging.INFO, logger="displayd")
    waiting = []
    for slot in range(1, 5):
        clock.advance(seconds=30)
        await dispatcher.sync(clock.now)
        # On time: the slot's pushes left with the boundary, the database nowhere.
        await asyncio.wait_for(dispatcher.stop(), 5)
        assert all(len(shows(boards, b)) == 1 + slot for b in PUSH_BOARDS), slot
        assert dispatcher.offline
        waiting.append(dispatcher.backlog.waiting)
        # Polls answer from memory.
        assert (await factory.current(poller)).status_code == 200
    assert waiting == sorted(waiting) and waiting[0] > 0  # rows and outcomes, slot after slot
    assert await metric(client, "displayd_rows_waiting") == waiting[-1]
    assert [r.message for r in caplog.records if getattr(r, "event", None) == "database_unreachable"] != []
    assert sum(getattr(r, "event", None) == "database_unreachable" for r in caplog.records) == 1

    await proxy.restore()
    clock.advance(seconds=30)
    await dispatcher.sync(clock.now)  # the next boundary, alongside the backlog's writer
    await settled(dispatcher)
    await dispatcher.stop()
    assert dispatcher.backlog.waiting == 0 and dispatcher.backlog.empty
    assert await metric(client, "displayd_rows_waiting") == 0
    assert any(getattr(r, "event", None) == "backlog_written" for r in caplog.records)
    clock.advance(seconds=30)
    await dispatcher.sync(clock.now)  # online again: through the database
    await dispatcher.stop()
    assert not dispatcher.offline and dispatcher.backlog.empty

    for board_id in PUSH_BOARDS:  # every slot once, none twice
        received = shows(boards, board_id)
        assert len(received) == 7 and len(set(received)) == 7, received
    logged = await rows(direct)
    assert len(logged) == 7 * 4
    assert {r.push_status for r in logged if r.board_id in PUSH_BOARDS} == {"delivered"}
    assert {r.push_status for r in logged if r.board_id == "bang-keo"} == {"not_pushed"}
    for board_id in PUSH_BOARDS:
        indexes = [r.slot_index for r in logged if r.board_id == board_id]
        assert indexes == list(range(indexes[0], indexes[0] + 7))
        assert [f"{board_id}:{r.campaign_id}:{r.slot_index}:0" for r in logged if r.board_id == board_id] == \
            shows(boards, board_id)
    assert all(r.delivered_at is not None and r.attempts == 1 for r in logged if r.board_id in PUSH_BOARDS)
    assert (await state(direct)).handled_until == clock.now


async def test_a_take_over_after_an_outage_writes_the_backlog_first(
    app: FastAPI, factory: Factory, dispatcher: Dispatcher, boards: FakeBoards, proxy: NetCut, direct: Settings,
    clock: FakeClock
) -> None:
    """A leader that takes over again once the database is back (its lock was lost with the
    connection) loads what boards were given from the database: the slots it pushed from
    memory must be there, and none of them written down as `missed`."""
    await setup(factory, boards)
    await dispatcher.sync(clock.now)
    await dispatcher.stop()
    await proxy.cut()
    for _ in range(3):
        clock.advance(seconds=30)
        await dispatcher.sync(clock.now)
        await dispatcher.stop()
    with pytest.raises(OSError):  # while it is unreachable, a take-over fails (the scheduler steps down)
        await dispatcher.take_over()
    await proxy.restore()
    clock.advance(seconds=10)
    window = await dispatcher.take_over()
    assert window is not None
    await dispatcher.sync(clock.now)  # the same slot as before: nothing pushed again
    await dispatcher.stop()
    assert await dispatcher.record_missed(*window) == 0
    assert all(len(shows(boards, b)) == 4 and len(set(shows(boards, b))) == 4 for b in PUSH_BOARDS)
    logged = await rows(direct)
    assert len(logged) == 4 * 4 and "missed" not in {r.push_status for r in logged}
    assert {r.push_status for r in logged if r.board_id in PUSH_BOARDS} == {"delivered"}


async def test_a_full_backlog_drops_the_newest_with_one_log_line(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, dispatcher: Dispatcher, boards: FakeBoards,
    proxy: NetCut, direct: Settings, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    await setup(factory, boards)
    runtime_of(app).scheduler = SimpleNamespace(leader=True, dispatcher=dispatcher, leadership=SimpleNamespace(
        held=frozenset(range(64)), live=1, offline=False))  # type: ignore[assignment]
    await dispatcher.sync(clock.now)
    await dispatcher.stop()
    dispatcher.backlog.limit = 10
    await proxy.cut()
    caplog.set_level(logging.WARNING, logger="displayd")
    for _ in range(3):  # 4 rows and 3 outcomes a slot: 21 wanted, 10 kept
        clock.advance(seconds=30)
        await dispatcher.sync(clock.now)
        await dispatcher.stop()
    assert all(len(shows(boards, b)) == 4 for b in PUSH_BOARDS)  # pushed all the same
    assert dispatcher.backlog.waiting == 10 and dispatcher.backlog.dropped == 11
    full = [r for r in caplog.records if getattr(r, "event", None) == "backlog_full"]
    assert len(full) == 1 and "outage_backlog_rows" in full[0].getMessage()
    assert await metric(client, "displayd_rows_dropped_total") == 11
    assert await metric(client, "displayd_rows_waiting") == 10
    await proxy.restore()
    await dispatcher.settle_backlog()
    assert not dispatcher.offline and dispatcher.backlog.empty
    # Kept, oldest first: the first slot's 4 rows and 3 outcomes, the second slot's 3 push rows.
    logged = await rows(direct)
    assert len(logged) == 4 + 4 + 3
    first = [r for r in logged if r.starts_at == clock.now - timedelta(seconds=60)]
    assert sorted(r.push_status for r in first) == ["delivered"] * 3 + ["not_pushed"]
    second = [r for r in logged if r.starts_at == clock.now - timedelta(seconds=30)]
    assert len(second) == 3 and {r.push_status for r in second} == {"pending"}
    engine = create_engine(direct)
    async with create_sessionmaker(engine)() as session:
        health = list(await session.scalars(select(BoardHealth)))
    await engine.dispose()
    assert {h.board_id for h in health} == set(PUSH_BOARDS)  # health is per board: never dropped
    assert all(h.last_push_at is not None and h.last_push_at > clock.now - timedelta(seconds=5) for h in health)



async def test_polls_and_streams_answer_through_an_outage_and_their_marks_wait_for_the_leaders_backlog(
    app: FastAPI, factory: Factory, dispatcher: Dispatcher, boards: FakeBoards, proxy: NetCut, direct: Settings,
    clock: FakeClock
) -> None:
    """Polls and streams answer, from memory, and are noted while the database is away; the
    recorders' flushes fail without losing what they hold, and once it is back a slot noted long ago still waits for
    its row (MARK_PATIENCE runs from the database's return, not from the poll)."""
    poller = await setup(factory, boards)
    song = await factory.board("bang-song", delivery="stream")
    runtime = runtime_of(app)
    await dispatcher.sync(clock.now)
    await dispatcher.stop()
    await proxy.cut()
    clock.advance(seconds=30)
    await dispatcher.sync(clock.now)  # offline: the rows wait in the leader's backlog
    assert (await factory.current(poller)).status_code == 200
    streamed = next(r.key for r in dispatcher.backlog.rows if r.board_id == "bang-song")
    async with opened(app, song) as stream:  # a stream opens and gets its slot from memory
        assert stream.status == 200
        event = await asyncio.wait_for(stream.next(), 5)
        assert event.type == "show" and event.id == f"{streamed[0]}:{streamed[1]}:{streamed[2]}:0"
    polled_at = clock.now
    for _ in range(3):  # two minutes of failed flushes: more than MARK_PATIENCE
        clock.advance(seconds=40)
        with pytest.raises(OSError):
            await runtime.polls.flush()
        with pytest.raises(OSError):
            await runtime.streams.recorder.flush()
    await proxy.restore()
    await runtime.polls.flush()  # before the leader has written its backlog: the rows are not there yet
    await runtime.streams.recorder.flush()
    await dispatcher.settle_backlog()
    await runtime.polls.flush()
    await runtime.streams.recorder.flush()
    logged = {(r.board_id, r.starts_at): r for r in await rows(direct)}
    outage_slot = polled_at  # the slot began with the boundary the leader handled offline
    assert logged[("bang-keo", outage_slot)].first_polled_at == polled_at
    assert logged[("bang-song", outage_slot)].push_status == "delivered"
    assert logged[("bang-song", outage_slot)].delivered_at == polled_at
    assert runtime.polls.dropped == 0 and runtime.streams.recorder.dropped == 0


async def test_a_database_that_stops_answering_counts_as_unreachable_after_a_timeout(
    app: FastAPI, factory: Factory, dispatcher: Dispatcher, boards: FakeBoards, proxy: NetCut, direct: Settings,
    clock: FakeClock, monkeypatch: Any
) -> None:
    """A network that drops packets neither refuses nor resets: without a limit, a boundary
    would wait for TCP to give up. After DATABASE_TIMEOUT the slot goes out from memory."""
    monkeypatch.setattr(dispatch, "DATABASE_TIMEOUT", 0.5)
    await setup(factory, boards)
    await dispatcher.sync(clock.now)
    await dispatcher.stop()
    proxy.blackhole()
    clock.advance(seconds=30)
    await asyncio.wait_for(dispatcher.sync(clock.now), 5)
    assert dispatcher.offline
    clock.advance(seconds=30)
    await asyncio.wait_for(dispatcher.sync(clock.now), 0.5)  # offline: not even a try
    await proxy.restore()
    await settled(dispatcher)
    await dispatcher.stop()
    assert all(len(shows(boards, b)) == 3 == len(set(shows(boards, b))) for b in PUSH_BOARDS)
    logged = await rows(direct)
    assert len(logged) == 3 * 4 and {r.push_status for r in logged if r.board_id in PUSH_BOARDS} == {"delivered"}
