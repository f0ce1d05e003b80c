"""Daily totals: kept by the database's triggers as the log is written, equal to the detail,
and the airtime report the same whether it reads the detail, the totals or both.

Random logs (boards and campaigns in time zones from UTC−11 to UTC+14, across a DST change,
slots of any length down to the microsecond, every status, polls, outcomes written later,
rows moved to another slogan or cut short) are written through the store functions, on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from displayd.config import Settings
from displayd.db.models import Board, Campaign, DailyTotal, Rotation, SchedulerState
from displayd.db.session import create_engine, create_sessionmaker
from displayd.logbook import queries, retention, store
from displayd.logbook.queries import RotationFilter, day_start
from displayd.logbook.store import NewRow, Outcome

# Kiritimati +14, Pago Pago −11, Chatham +12:45/+13:45, Kathmandu +5:45, and two zones whose
# clocks move on 2024-03-10 (inside the generated week).
ZONES = ["Asia/Ho_Chi_Minh", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Pacific/Chatham", "Asia/Kathmandu",
         "America/Los_Angeles", "America/St_Johns"]
T0 = datetime(2024, 3, 7, 6, 0, tzinfo=UTC)
WEEK_US = 7 * 86400 * 10**6
STATUSES = ["pending", "delivered", "failed", "skipped", "missed", "not_pushed"]
COUNTERS = ("rows", "slots", "milliseconds", "missed", "not_pushed", "delivered", "failed", "polled")


@dataclass
class Log:
    zones: list[str]               # per campaign
    deliveries: list[str]          # per board
    rows: list[NewRow]
    batches: list[int]             # where the inserts are cut into separate calls
    outcomes: list[tuple[int, str]]          # (row, new status), written after the inserts
    polls: list[tuple[int, int]]             # (row, µs after its start)
    moved: list[tuple[int, int, int]]        # (row, new slogan, µs to cut from its end): revisions
    stale_at_us: int                         # fail_stale_pending at T0 + this


@st.composite
def logs(draw: st.DrawFn) -> Log:
    zones = draw(st.lists(st.sampled_from(ZONES), min_size=1, max_size=3))
    deliveries = draw(st.lists(st.sampled_from(["push", "poll", "both"]), min_size=1, max_size=4))
    count = draw(st.integers(1, 50))
    rows = []
    for k in range(count):
        start = T0 + timedelta(microseconds=draw(st.integers(0, WEEK_US)))
        length = timedelta(microseconds=draw(st.one_of(st.integers(1, 3_600_000_000), st.sampled_from(
            [5_000_000, 30_000_000, 500, 1_500, 2_499_500]))))
        rows.append(NewRow(f"bang-{draw(st.integers(0, len(deliveries) - 1))}",
                           1 + draw(st.integers(0, len(zones) - 1)), k, draw(st.integers(1, 3)), f"sha256:{k:064x}",
                           start, start + length, draw(st.sampled_from(STATUSES))))
    indexes = st.integers(0, count - 1)
    return Log(
        zones=zones, deliveries=deliveries, rows=rows,
        batches=sorted(draw(st.lists(st.integers(1, count), max_size=2, unique=True))),
        outcomes=draw(st.lists(st.tuples(indexes, st.sampled_from(["delivered", "failed", "skipped"])), max_size=20)),
        polls=draw(st.lists(st.tuples(indexes, st.integers(0, 10_000_000)), max_size=20)),
        moved=draw(st.lists(st.tuples(indexes, st.integers(1, 3), st.integers(0, 400)), max_size=4)),
        stale_at_us=draw(st.integers(0, WEEK_US)),
    )


async def clear(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session, session.begin():
        for table in ("rotation", "daily_total", "board", "campaign"):
            await session.execute(text(f"DELETE FROM {table}"))
        await session.execute(update(SchedulerState).values(purged_before=None))


async def set_up(sessionmaker: async_sessionmaker[AsyncSession], log: Log) -> None:
    now = T0
    async with sessionmaker() as session, session.begin():
        for number, zone in enumerate(log.zones, start=1):
            session.add(Campaign(id=number, name=f"Đợt {number}", starts_at=T0, ends_at=T0 + timedelta(days=8),
                                 timezone=zone, daily_hours=[], dwell_seconds=30, priority=100, order="sequential",
                                 playlist=[], targets={"all": True}, paused=False, created_by="test", created_at=now,
                                 updated_at=now))
        for number, delivery in enumerate(log.deliveries):
            session.add(Board(id=f"bang-{number}", name=f"Bảng {number}", groups=[], delivery=delivery,
                              charset="utf-8", max_chars=40, lines=2, offset=0, enabled=True,
                              token_hash=f"{number:064x}", secret_nonce="n", secret_hash="h", created_at=now,
                              updated_at=now))


async def write(sessionmaker: async_sessionmaker[AsyncSession], log: Log) -> None:
    """The log as the leader and the poll recorder write it, through the store functions."""
    cuts = [0, *log.batches, len(log.rows)]
    for start, end in itertools.pairwise(cuts):
        async with sessionmaker() as session, session.begin():
            await store.insert_rows(session, log.rows[start:end])
    async with sessionmaker() as session, session.begin():  # a second leader's claim: nothing new
        assert await store.insert_rows(session, log.rows) == set()
    async with sessionmaker() as session, session.begin():
        await store.record_results(session, [
            Outcome(log.rows[i].key, status, 1, 200 if status == "delivered" else 503, 12, None,
                    log.rows[i].starts_at if status == "delivered" else None) for i, status in log.outcomes])
    async with sessionmaker() as session, session.begin():
        await store.mark_polled(session, [(log.rows[i].key, log.rows[i].starts_at + timedelta(microseconds=us))
                                          for i, us in log.polls])
    async with sessionmaker() as session, session.begin():
        await store.fail_stale_pending(session, T0 + timedelta(microseconds=log.stale_at_us))
    async with sessionmaker() as session, session.begin():  # revisions: another slogan, a slot cut short
        for i, slogan, cut_us in log.moved:
            row = log.rows[i]
            await session.execute(update(Rotation).where(
                Rotation.board_id == row.board_id, Rotation.campaign_id == row.campaign_id,
                Rotation.slot_index == row.slot_index).values(
                slogan_id=slogan, ends_at=max(row.starts_at, row.ends_at - timedelta(microseconds=cut_us))))


async def detail_sums(session: AsyncSession, dialect: str, log: Log) -> dict[tuple[Any, ...], Counter[str]]:
    """What the detail says, per (board, campaign, slogan, day), summed here in Python."""
    sums: dict[tuple[Any, ...], Counter[str]] = defaultdict(Counter)
    result = await session.execute(select(Rotation, queries.milliseconds(dialect).label("ms")))
    for row, ms in result:
        zone = ZoneInfo(log.zones[row.campaign_id - 1])
        assert row.local_day == row.starts_at.astimezone(zone).date(), "the writer sets the campaign's local day"
        exact = (row.ends_at - row.starts_at) / timedelta(milliseconds=1)
        assert abs(ms - exact) <= 1, "a row's milliseconds are its duration, rounded"
        given = row.push_status != "missed"
        sums[(row.board_id, row.campaign_id, row.slogan_id, row.local_day)].update({
            "rows": 1, "slots": int(given), "milliseconds": ms if given else 0,
            "missed": int(row.push_status == "missed"), "not_pushed": int(row.push_status == "not_pushed"),
            "delivered": int(row.push_status == "delivered"), "failed": int(row.push_status == "failed"),
            "polled": int(row.first_polled_at is not None)})
    return sums


async def totals(session: AsyncSession) -> dict[tuple[Any, ...], Counter[str]]:
    """The totals of every key that has rows (a row moved to another slogan leaves zeros behind)."""
    found: dict[tuple[Any, ...], Counter[str]] = {}
    for total in await session.scalars(select(DailyTotal).where(DailyTotal.rows != 0)):
        found[(total.board_id, total.campaign_id, total.slogan_id, total.day)] = Counter(
            {c: getattr(total, c) for c in COUNTERS})
    return found


async def set_horizon(sessionmaker: async_sessionmaker[AsyncSession], horizon: date | None) -> None:
    async with sessionmaker() as session, session.begin():
        await session.execute(update(SchedulerState).values(purged_before=horizon))


async def reports(sessionmaker: async_sessionmaker[AsyncSession], log: Log, days: list[date]) -> list[Any]:
    """Airtime by slogan, board and day, over everything and per campaign over whole local days."""
    wheres = [RotationFilter()]
    for campaign_id, zone in enumerate(log.zones, start=1):
        wheres.append(RotationFilter(campaign_id=campaign_id))
        first, last = days[0], days[-1]
        wheres.append(RotationFilter(campaign_id=campaign_id, starts_from=day_start(first + timedelta(days=1),
                                                                                     ZoneInfo(zone)),
                                     starts_before=day_start(last, ZoneInfo(zone))))
    got = []
    async with sessionmaker() as session:
        for where in wheres:
            for by in ("slogan", "board", "day"):
                got.append((where, by, await queries.airtime(session, where, by=by)))
    return got


async def check(database_url: str, log: Log) -> None:
    engine = create_engine(Settings(database_url=database_url))
    sessionmaker = create_sessionmaker(engine)
    try:
        await clear(sessionmaker)
        await set_up(sessionmaker, log)
        await write(sessionmaker, log)
        async with sessionmaker() as session:
            detail = await detail_sums(session, engine.dialect.name, log)
            assert await totals(session) == detail
            days = sorted({key[3] for key in detail})
        expected = await reports(sessionmaker, log, days)
        assert expected[0][2], "the whole log reports something"
        middle = days[len(days) // 2]
        for horizon in (days[0], days[-1] + timedelta(days=1), middle):
            await set_horizon(sessionmaker, horizon)
            assert await reports(sessionmaker, log, days) == expected, f"horizon {horizon}"
        # And once the detail before the middle day is really gone.
        await set_horizon(sessionmaker, None)
        now = datetime.combine(middle, time(), tzinfo=UTC) + timedelta(days=3, hours=1)
        deleted = await retention.purge(sessionmaker, now=now, retention_days=3, batch=7, pause=0)
        assert deleted == sum(c["rows"] for key, c in detail.items() if key[3] < middle)
        assert await reports(sessionmaker, log, days) == expected
        async with sessionmaker() as session:
            assert await totals(session) == detail, "a purge takes nothing from the totals"
    finally:
        await engine.dispose()


@hypothesis_settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(log=logs())
def test_totals_equal_the_detail_and_airtime_is_the_same_from_either(settings: Settings, log: Log) -> None:
    asyncio.run(check(settings.database_url, log))


async def whole_days(database_url: str) -> None:
    hanoi = timedelta(hours=7)
    rows = [NewRow("bang-0", 1, k, 1, f"sha256:{k:064x}", start - hanoi, start - hanoi + timedelta(seconds=30),
                   "delivered") for k, start in enumerate([datetime(2024, 3, 8, 23, 0, tzinfo=UTC),
                                                           datetime(2024, 3, 9, 1, 0, tzinfo=UTC)])]
    log = Log(["Asia/Ho_Chi_Minh"], ["push"], rows, [], [], [], [], 0)
    engine = create_engine(Settings(database_url=database_url))
    sessionmaker = create_sessionmaker(engine)

    async def days(horizon: date | None, **where: datetime) -> list[tuple[str, int]]:
        await set_horizon(sessionmaker, horizon)
        async with sessionmaker() as session:
            report = await queries.airtime(session, RotationFilter(campaign_id=1, **where), by="day")
        return [(r.key, r.slots) for r in report]

    try:
        await clear(sessionmaker)
        await set_up(sessionmaker, log)
        await write(sessionmaker, log)
        local_noon_8th = datetime(2024, 3, 8, 12, 0, tzinfo=UTC) - hanoi
        # The detail takes instants; the totals take the days that start in the range.
        assert await days(None, starts_from=local_noon_8th) == [("2024-03-08", 1), ("2024-03-09", 1)]
        assert await days(date(2024, 3, 10), starts_from=local_noon_8th) == [("2024-03-09", 1)]
        assert await days(date(2024, 3, 10), starts_from=datetime(2024, 3, 8, tzinfo=UTC) - hanoi) == [
            ("2024-03-08", 1), ("2024-03-09", 1)]
        assert await days(date(2024, 3, 10), starts_before=datetime(2024, 3, 9, tzinfo=UTC) - hanoi) == [
            ("2024-03-08", 1)]
        assert await days(date(2024, 3, 10), starts_before=datetime(2024, 3, 9, 0, 30, tzinfo=UTC) - hanoi) == [
            ("2024-03-08", 1), ("2024-03-09", 1)]  # the 9th starts before `to`: all of it
        # A horizon in between: the 8th from the totals, the 9th from the detail.
        assert await days(date(2024, 3, 9), starts_from=local_noon_8th) == [("2024-03-09", 1)]
        assert await days(date(2024, 3, 9)) == [("2024-03-08", 1), ("2024-03-09", 1)]
    finally:
        await engine.dispose()


async def test_a_range_takes_whole_local_days_from_the_totals(settings: Settings) -> None:
    await whole_days(settings.database_url)
