"""Replicas sharing the push work (`Dispatcher.shards`): two dispatchers leading disjoint shards
push disjoint boards and, together, every board once; a shard that moves is not pushed again
for the slot under way; a dead replica's missed slots are its boards' only. And the scheduler
keeps leading, and its boundaries keep running, while its lock connection cannot reach the
database (a proxy the test cuts)."""

from __future__ import annotations

import asyncio
import copy
import json
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from displayd.config import Settings
from displayd.db.models import Rotation, SchedulerState
from displayd.delivery.dispatch import Dispatcher
from displayd.delivery.leader import Change, PostgresLeadership
from displayd.delivery.push import PushRequest, PushResult
from displayd.delivery.scheduler import BOUNDARY_JOB, SlotScheduler
from displayd.delivery.shards import ALL_SHARDS, shard_of
from displayd.metrics import Metrics
from displayd.runtime import runtime_of
from tests.conftest import FakeClock
from tests.delivery.boards import FakeBoards
from tests.delivery.test_dispatch import another_leader, one, rows
from tests.factories import Factory
from tests.netcut import NetCut
from tests.test_metrics import scrape

LOW = frozenset(range(32))
HIGH = ALL_SHARDS - LOW
BOARDS = [f"bang-{n}" for n in range(1, 9)]


def test_the_boards_fall_in_both_halves() -> None:
    assert {shard_of(b) in LOW for b in BOARDS} == {True, False}


async def push_boards(factory: Factory, boards: FakeBoards) -> None:
    await factory.campaign()
    for board_id in BOARDS:
        await factory.board(board_id, delivery="push", endpoint_url=boards.url("ok", board_id))


def leading(dispatcher: Dispatcher) -> Dispatcher:
    dispatcher.shards = frozenset()  # as a scheduler starts it: nothing until a take-over
    return dispatcher


async def test_two_dispatchers_with_disjoint_shards_push_every_board_once(
        factory: Factory, dispatcher: Dispatcher, boards: FakeBoards, clock: FakeClock, settings: Settings) -> None:
    await push_boards(factory, boards)
    low, high = leading(dispatcher), leading(another_leader(dispatcher))
    await low.take_over(LOW)
    await high.take_over(HIGH)
    await low.sync(clock.now)
    await low.stop()
    assert {b for b in BOARDS if boards.received(b)} == {b for b in BOARDS if shard_of(b) in LOW}
    await high.sync(clock.now)
    await high.stop()
    assert [len(boards.received(b)) for b in BOARDS] == [1] * len(BOARDS)

    # The low shards move to the other replica mid-slot: their slot is not pushed again ...
    low.drop(LOW)
    assert low.shards == frozenset() and not low.given
    await high.take_over(LOW)
    for leader in (low, high):
        await leader.sync(clock.now)
        await leader.stop()
    assert [len(boards.received(b)) for b in BOARDS] == [1] * len(BOARDS)
    # ... and the next slot of every board is pushed by the one that leads them all now.
    clock.advance(seconds=30)
    assert await low.sync(clock.now) is None  # it leads nothing: nothing to plan, no next boundary
    await high.sync(clock.now)
    await high.stop()
    assert [len(boards.received(b)) for b in BOARDS] == [2] * len(BOARDS)
    logged = Counter((r.board_id, r.slot_index) for r in await rows(settings))
    assert len(logged) == 2 * len(BOARDS) and set(logged.values()) == {1}


async def test_a_slot_a_dead_leader_left_pending_is_sent_again_by_the_one_taking_over(
        factory: Factory, dispatcher: Dispatcher, boards: FakeBoards, clock: FakeClock, settings: Settings) -> None:
    """Killed mid-fan-out, a leader leaves rows `pending` whose pushes never left: the replica
    taking its shards over sends those slots again, as their next revision, in time."""
    await push_boards(factory, boards)
    dead = leading(another_leader(dispatcher))
    await dead.take_over(ALL_SHARDS)
    gone: list[str] = []

    async def never_sent(requests: list[PushRequest], **_: object) -> list[PushResult]:
        gone.extend(r.board_id for r in requests)
        await asyncio.Event().wait()  # the process dies before anything leaves
        raise AssertionError("unreachable")

    dead.pusher = copy.copy(dead.pusher)
    dead.pusher.push_all = never_sent  # type: ignore[method-assign]
    await dead.sync(clock.now)  # its rows are claimed, `pending`
    await asyncio.sleep(0.05)
    for task in list(dead._deliveries):  # ... and it is killed
        task.cancel()
    assert sorted(gone) == BOARDS and not any(boards.received(b) for b in BOARDS)
    assert {r.push_status for r in await rows(settings)} == {"pending"}

    survivor = leading(dispatcher)
    await survivor.take_over(ALL_SHARDS)
    await survivor.sync(clock.now)
    await survivor.stop()
    for board_id in BOARDS:
        [received] = boards.received(board_id)
        document = json.loads(received.body)
        assert (document["type"], document["revision"]) == ("show", 1)
    assert {(r.push_status, r.revisions) for r in await rows(settings)} == {("delivered", 1)}


async def test_two_leaders_of_one_shard_at_once_still_push_each_slot_once(
        factory: Factory, dispatcher: Dispatcher, boards: FakeBoards, clock: FakeClock) -> None:
    """While a shard moves, its old and new leader may both plan it: the row is the claim."""
    await push_boards(factory, boards)
    first, second = dispatcher, another_leader(dispatcher)
    for leader in (first, second):
        await leader.sync(clock.now)
    for leader in (first, second):
        await leader.stop()
    assert [len(boards.received(b)) for b in BOARDS] == [1] * len(BOARDS)


async def test_a_dead_replica_s_missed_slots_are_written_for_its_boards_only(
        factory: Factory, dispatcher: Dispatcher, boards: FakeBoards, clock: FakeClock, settings: Settings) -> None:
    await push_boards(factory, boards)
    await dispatcher.sync(clock.now)
    await dispatcher.stop()
    start = clock.now
    clock.advance(seconds=95)  # slots 1 and 2 passed with nobody giving them
    recorded = await dispatcher.record_missed(start, clock.now, LOW)
    low_boards = {b for b in BOARDS if shard_of(b) in LOW}
    assert recorded == 2 * len(low_boards)
    missed = [r for r in await rows(settings) if r.push_status == "missed"]
    assert {r.board_id for r in missed} == low_boards
    assert (await one(settings, SchedulerState, id=1)).missed_from is None  # the site's window is not touched


@pytest.fixture
async def proxy() -> AsyncIterator[NetCut]:
    async with NetCut() as proxy:
        yield proxy


async def test_the_scheduler_keeps_leading_and_pushing_while_its_lock_connection_is_cut(
        backend: str, app: FastAPI, client: httpx.AsyncClient, factory: Factory, dispatcher: Dispatcher,
        boards: FakeBoards, clock: FakeClock, settings: Settings, proxy: NetCut) -> None:
    if backend == "sqlite":
        pytest.skip("the shard locks are PostgreSQL's; on SQLite a file lock never goes offline")
    await push_boards(factory, boards)
    database = settings.database_url.rsplit("/", 1)[1]
    scheduler = SlotScheduler(dispatcher=dispatcher, leadership=PostgresLeadership(proxy.url(database)),
                              clock=clock, metrics=runtime_of(app).metrics)
    runtime_of(app).scheduler = scheduler
    dispatcher.shards = frozenset()
    try:
        await scheduler.check_leadership()
        assert scheduler.leader and dispatcher.shards == ALL_SHARDS and not scheduler.offline
        await scheduler.boundary(clock.now)
        await dispatcher.stop()
        assert [len(boards.received(b)) for b in BOARDS] == [1] * len(BOARDS)

        await proxy.cut()
        await scheduler.check_leadership()
        await scheduler.check_leadership()
        assert scheduler.leader and scheduler.offline
        assert dispatcher.shards == ALL_SHARDS and scheduler.scheduler.get_job(BOUNDARY_JOB) is not None
        samples = await scrape(client)
        assert samples[("displayd_database_offline", ())] == 1 and samples[("displayd_shards_led", ())] == 64
        assert samples[("displayd_scheduler_leader", ())] == 1
        clock.advance(seconds=30)
        await scheduler.boundary(clock.now)  # the next slot goes out as ever
        await dispatcher.stop()
        assert [len(boards.received(b)) for b in BOARDS] == [2] * len(BOARDS)

        await proxy.restore()
        await scheduler.check_leadership()
        assert scheduler.leader and not scheduler.offline
        assert scheduler.leadership.held == ALL_SHARDS
        samples = await scrape(client)
        assert samples[("displayd_database_offline", ())] == 0
        assert samples[("displayd_replicas_live", ())] == 1
    finally:  # (its APScheduler never started: the jobs were only stored)
        await dispatcher.stop()
        await scheduler.leadership.release()
        runtime_of(app).scheduler = None


class Scripted:
    """A leadership whose checks answer the changes given, in order."""

    name = "scripted"
    offline = False
    live = 2

    def __init__(self, *changes: Change) -> None:
        self.changes = list(changes)
        self.held: frozenset[int] = frozenset()

    async def check(self) -> Change:
        change = self.changes.pop(0) if self.changes else Change()
        self.held = (self.held | change.gained) - change.lost
        return change

    async def give_up(self, shards: frozenset[int]) -> None:
        self.held -= shards

    async def release(self) -> None:
        self.held = frozenset()


async def test_the_scheduler_takes_over_shards_it_gains_and_forgets_those_it_loses(
        factory: Factory, dispatcher: Dispatcher, boards: FakeBoards, clock: FakeClock, settings: Settings) -> None:
    await push_boards(factory, boards)
    low_boards = {b for b in BOARDS if shard_of(b) in LOW}
    leadership = Scripted(Change(gained=LOW), Change(gained=HIGH, unled_for=60.0), Change(lost=LOW),
                          Change(lost=HIGH))
    scheduler = SlotScheduler(dispatcher=dispatcher, leadership=leadership, clock=clock, metrics=Metrics())
    dispatcher.shards = frozenset()  # as `start` does
    await scheduler.check_leadership()
    assert scheduler.leader and dispatcher.shards == LOW
    await scheduler.boundary(clock.now)
    await dispatcher.stop()
    assert {b for b in BOARDS if boards.received(b)} == low_boards

    # 65 s later it gains the other half, whose replica died: their present is pushed at once,
    # and their slot that passed meanwhile (30–60 s) is written as missed, theirs only.
    clock.advance(seconds=65)
    await scheduler.check_leadership()
    assert dispatcher.shards == ALL_SHARDS
    await scheduler.boundary(clock.now)
    await dispatcher.stop()
    assert scheduler._backfill is not None
    assert await scheduler._backfill == len(BOARDS) - len(low_boards)
    assert all(boards.received(b) for b in BOARDS)
    missed = {r.board_id for r in await rows(settings) if r.push_status == "missed"}
    assert missed == set(BOARDS) - low_boards

    await scheduler.check_leadership()
    assert dispatcher.shards == HIGH and not set(dispatcher.given) & low_boards and scheduler.leader
    await scheduler.check_leadership()
    assert not scheduler.leader and dispatcher.shards == frozenset()
    received = [len(boards.received(b)) for b in BOARDS]
    clock.advance(seconds=30)
    await scheduler.boundary(clock.now)  # a boundary still stored runs, and does nothing
    await dispatcher.stop()
    assert [len(boards.received(b)) for b in BOARDS] == received


async def test_a_take_over_settles_the_stale_pushes_of_its_own_shards_only(
        app: FastAPI, factory: Factory, dispatcher: Dispatcher, boards: FakeBoards, clock: FakeClock,
        settings: Settings) -> None:
    """Rows left `pending` past their slot's end: the replica taking over the low shards marks
    theirs `failed` (their leader stopped), and leaves the high shards' to the replica that
    still leads them (it writes their outcomes itself, however late)."""
    await push_boards(factory, boards)
    await dispatcher.sync(clock.now)
    await dispatcher.stop()
    async with runtime_of(app).sessionmaker() as session, session.begin():
        await session.execute(update(Rotation).values(push_status="pending"))
    clock.advance(seconds=31)  # the slot is over, its outcomes still unknown
    low = leading(another_leader(dispatcher))
    await low.take_over(LOW)
    statuses = {r.board_id: r.push_status for r in await rows(settings)}
    assert statuses == {b: "failed" if shard_of(b) in LOW else "pending" for b in BOARDS}
