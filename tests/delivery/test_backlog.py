"""The backlog a leader keeps while the database is unreachable: which errors say so, the
bound, and writing in order, chunk by chunk, keeping what a failed write did not reach."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from displayd.config import Settings
from displayd.db.models import BoardHealth, DailyTotal, Rotation, SchedulerState
from displayd.db.session import create_engine, create_sessionmaker
from displayd.delivery.backlog import Backlog, Report, unreachable
from displayd.live import recorder
from displayd.live.recorder import StreamRecorder
from displayd.logbook import store
from displayd.logbook.store import NewRow, Outcome

T0 = datetime(2024, 5, 7, tzinfo=UTC)


class _Orig(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def _caused(cause: BaseException) -> Exception:
    """A driver error wrapping `cause`, as SQLAlchemy's asyncpg adapter raises them."""
    wrapper = Exception("wrapped")
    wrapper.__cause__ = cause
    return wrapper


@pytest.mark.parametrize(("exc", "expected"), [
    (ConnectionRefusedError(111, "Connect call failed"), True),
    (ConnectionResetError(104, "Connection reset by peer"), True),
    (TimeoutError(), True),
    (OSError(113, "No route to host"), True),
    (asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"), True),
    (asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"), True),
    (InterfaceError("SELECT 1", {}, Exception("the underlying connection is closed"), connection_invalidated=True),
     True),
    (OperationalError("SELECT 1", {}, _Orig("57P01")), True),  # terminating connection: admin shutdown
    (OperationalError("SELECT 1", {}, _Orig("08006")), True),  # connection failure
    (OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked")), False),
    (IntegrityError("INSERT", {}, _Orig("23505")), False),
    (DBAPIError("SELECT", {}, _Orig("42P01")), False),
    (ValueError("not a database error"), False),
    (asyncpg.InterfaceError("cannot perform operation: another operation is in progress"), False),
    (DBAPIError("SELECT", {}, _caused(asyncpg.exceptions.ConnectionDoesNotExistError("closed"))), True),
])
def test_unreachable_tells_a_lost_database_from_a_refused_statement(exc: BaseException, expected: bool) -> None:
    assert unreachable(exc) is expected


def row(board: str, slot: int, status: str = "pending") -> NewRow:
    starts = T0 + timedelta(seconds=30 * slot)
    return NewRow(board, 1, slot, 1, "sha256:" + "a" * 64, starts, starts + timedelta(seconds=30), status)


def outcome(board: str, slot: int, status: str = "delivered", revision: int = 0,
            delivered_at: datetime | None = T0) -> Outcome:
    return Outcome((board, 1, slot), status, 1, 200 if status == "delivered" else None, 5, None,
                   delivered_at if status == "delivered" else None, revision)


def test_a_later_outcome_of_a_waiting_slot_replaces_it_as_the_database_would() -> None:
    backlog = Backlog()
    backlog.add_outcomes([outcome("b", 1, delivered_at=T0)])
    backlog.add_outcomes([outcome("b", 1, "failed", revision=1)])
    assert backlog.waiting == 1
    merged = backlog.outcomes[("b", 1, 1)]
    assert (merged.push_status, merged.revision, merged.delivered_at) == ("failed", 1, T0)  # the first delivery
    backlog.add_health([{"board_id": "b", "n": 1}, {"board_id": "c", "n": 1}, {"board_id": "b", "n": 2}])
    assert list(backlog.health) == ["c", "b"] and backlog.health["b"]["n"] == 2  # one row a board, the latest


def test_a_full_backlog_keeps_the_oldest_counts_the_rest_and_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    backlog = Backlog(limit=5)
    caplog.set_level(logging.WARNING, logger="displayd.delivery")
    assert backlog.add_rows([row("b", n) for n in range(3)]) == [row("b", n) for n in range(3)]
    assert backlog.add_rows([row("b", n) for n in range(3, 6)]) == [row("b", 3), row("b", 4)]
    backlog.add_outcomes([outcome("b", 0)])
    backlog.add_reports([Report("b", "1:0", T0, "sha256:" + "e" * 64, None)])
    assert [r.slot_index for r in backlog.rows] == [0, 1, 2, 3, 4]
    assert backlog.waiting == 5 and backlog.dropped == 3
    assert [r.getMessage() for r in caplog.records if getattr(r, "event", None) == "backlog_full"] == [
        "5 rotation-log writes wait for the database, the most kept (outage_backlog_rows): newer ones are dropped "
        "and counted in displayd_rows_dropped_total"]


class FailingOn:
    """A sessionmaker whose `fail_on`-th session cannot reach the database."""

    def __init__(self, sessionmaker: Any, fail_on: int) -> None:
        self.sessionmaker = sessionmaker
        self.fail_on = fail_on
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        if self.calls == self.fail_on:
            @asynccontextmanager
            async def refused() -> AsyncIterator[Any]:
                raise ConnectionRefusedError(111, "Connect call failed")
                yield  # pragma: no cover
            return refused()
        return self.sessionmaker()


async def test_the_backlog_is_written_in_order_and_a_failed_chunk_waits_for_the_next_try(
    settings: Settings, monkeypatch: Any
) -> None:
    monkeypatch.setattr(store, "CHUNK", 2)
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    # A row somebody wrote meanwhile (a poll board's, say) is kept as it is; one written
    # `missed` by a leader that back-filled these slots too early is replaced: they were given.
    async with sessionmaker() as session, session.begin():
        await store.insert_rows(session, [row("b", 2, "not_pushed"), row("b", 3, "missed")])
    backlog = Backlog()
    backlog.add_rows([row("b", n) for n in range(5)] + [row("b", 4, "skipped")])  # slot 4 twice: written once
    backlog.add_issued([("b", "sha256:" + "a" * 64)], T0)
    backlog.add_outcomes([outcome("b", n) for n in (0, 1, 3, 4)])
    backlog.add_health([{"board_id": "b", "last_push_at": T0, "last_push_status": "delivered",
                         "last_push_error": None, "consecutive_failures": 0, "unreachable_since": None}])
    backlog.handled(T0 + timedelta(minutes=5), "leader-a")
    reported: list[Report] = []

    async def reports(session: Any, batch: list[Report]) -> None:
        reported.extend(batch)

    failing = FailingOn(sessionmaker, fail_on=2)  # the second chunk of rows
    with pytest.raises(ConnectionRefusedError):
        await backlog.write(failing, reports=reports)  # type: ignore[arg-type]
    assert [r.slot_index for r in backlog.rows] == [2, 3, 4, 4] and backlog.waiting == 4 + 4
    assert await backlog.write(sessionmaker, reports=reports) == 4
    assert backlog.empty and backlog.waiting == 0
    async with sessionmaker() as session:
        logged = list(await session.scalars(select(Rotation).order_by(Rotation.slot_index)))
        health = await session.get(BoardHealth, "b")
        state = await session.get(SchedulerState, 1)
        totals = list(await session.scalars(select(DailyTotal)))
    await engine.dispose()
    assert [(r.slot_index, r.push_status) for r in logged] == [
        (0, "delivered"), (1, "delivered"), (2, "not_pushed"), (3, "delivered"), (4, "delivered")]
    assert [(t.rows, t.slots, t.missed, t.delivered, t.not_pushed) for t in totals] == [(5, 5, 0, 4, 1)]
    assert health is not None and health.last_push_status == "delivered"
    assert state is not None and state.handled_until == T0 + timedelta(minutes=5) and state.leader == "leader-a"


class Unreachable:
    def __call__(self) -> Any:
        raise ConnectionRefusedError(111, "Connect call failed")


async def test_a_stream_recorder_keeps_a_bounded_number_of_slots_through_failed_flushes(monkeypatch: Any) -> None:
    monkeypatch.setattr(recorder, "MAX_WAITING", 3)
    streams = StreamRecorder(Unreachable(), lambda: T0)  # type: ignore[arg-type]
    for slot in range(5):
        streams.sent(("b", 1, slot), 0, T0)
    streams.sent(("b", 1, 0), 1, T0 + timedelta(seconds=1))  # a revision of a slot kept: no drop
    for _ in range(3):
        with pytest.raises(ConnectionRefusedError):
            await streams.flush()
        streams.sent(("b", 1, 9), 0, T0)
    assert streams.dropped == 2 + 3 and len(streams._marks) == 3
    assert streams._marks[("b", 1, 0)][:2] == (T0, 1)


async def test_failing_flushes_log_once_and_once_more_when_they_work_again(
    monkeypatch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(recorder, "FLUSH_SECONDS", 0.001)
    caplog.set_level(logging.INFO, logger="displayd.polls")
    calls = 0
    done = asyncio.Event()

    async def flush() -> None:
        nonlocal calls
        calls += 1
        if calls <= 5:
            raise ConnectionRefusedError(111, "Connect call failed")
        done.set()

    task = asyncio.create_task(recorder._flush_forever(flush, "polls", lambda: 7))
    await asyncio.wait_for(done.wait(), 5)
    await asyncio.sleep(0.01)
    task.cancel()
    events = [(getattr(r, "event", None), r.getMessage()) for r in caplog.records]
    assert [e for e, _ in events] == ["record_failing", "record_resumed"]
    assert "after 5 failed tries; 7 dropped" in events[1][1]


@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize("mark", ["streamed", "polled"])
async def test_a_row_committed_while_marks_are_written_is_never_found_unmarked(settings: Settings, mark: str) -> None:
    """A leader writing its backlog commits a slot's row between a recorder's two statements:
    the mark is then written (or tried again), never counted as done with the row unmarked."""
    engine, other = create_engine(settings), create_engine(settings)
    key = ("bang-song", 1, 5)
    async with create_sessionmaker(engine)() as session, session.begin():
        execute = session.execute
        calls = 0

        async def committed_in_between(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            result = await execute(*args, **kwargs)
            calls += 1
            if calls == 1:
                async with create_sessionmaker(other)() as writer, writer.begin():
                    await store.insert_rows(writer, [row("bang-song", 5, "not_pushed")])
            return result

        session.execute = committed_in_between  # type: ignore[method-assign]
        if mark == "streamed":
            found = await store.mark_streamed(session, [store.Streamed(key, T0, 0)])
        else:
            found = await store.mark_polled(session, [(key, T0)])
    async with create_sessionmaker(engine)() as session:
        logged = await session.scalar(select(Rotation))
    await engine.dispose()
    await other.dispose()
    assert logged is not None
    marked = logged.push_status == "delivered" if mark == "streamed" else logged.first_polled_at == T0
    assert marked and key not in found  # written, and tried again (a no-op) at the next flush
