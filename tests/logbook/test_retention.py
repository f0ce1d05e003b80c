"""Retention: the leader purges the rotation log's detail past `log_retention_days`, in small
batches, on SQLite and PostgreSQL; the totals stay, and reports over the whole period answer
the same before and after."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from sqlalchemy import func, select

from displayd.config import Settings
from displayd.db.copy import copy_database
from displayd.db.models import DailyTotal, Rotation, SchedulerState
from displayd.db.session import create_engine, create_sessionmaker
from displayd.delivery.dispatch import Dispatcher
from displayd.delivery.leader import Change
from displayd.delivery.scheduler import SlotScheduler
from displayd.delivery.shards import ALL_SHARDS
from displayd.logbook import retention, store
from displayd.logbook.store import NewRow
from displayd.metrics import Metrics
from tests.conftest import FakeClock, Keys, fresh_database_url
from tests.factories import Factory


def rows(board_id: str, campaign_id: int, slogans: list[int], first: datetime, count: int, *,
         every: timedelta = timedelta(hours=1), status: str = "delivered") -> list[NewRow]:
    return [NewRow(board_id, campaign_id, k, slogans[k % len(slogans)], f"sha256:{k:064x}", first + every * k,
                   first + every * k + timedelta(seconds=30), status) for k in range(count)]


async def read(settings: Settings, *columns: Any) -> list[Any]:
    engine = create_engine(settings)
    async with create_sessionmaker(engine)() as session:
        result = list(await session.execute(select(*columns)))
    await engine.dispose()
    return result


async def write(settings: Settings, new: list[NewRow]) -> None:
    engine = create_engine(settings)
    async with create_sessionmaker(engine)() as session, session.begin():
        await store.insert_rows(session, new)
    await engine.dispose()


async def test_purge_deletes_the_days_before_the_horizon_in_batches_and_keeps_the_totals(
    factory: Factory, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    slogans = await factory.approved_ids()
    # Days are the campaigns' own: Kiritimati is 14 h ahead of UTC, Pago Pago 11 h behind.
    ahead = await factory.campaign("Kiritimati", timezone="Pacific/Kiritimati")
    behind = await factory.campaign("Pago Pago", timezone="Pacific/Pago_Pago")
    start = datetime(2024, 3, 1, 0, 30, tzinfo=UTC)
    await write(settings, rows("bang-a", ahead["id"], slogans, start, 24 * 10)
                + rows("bang-b", behind["id"], slogans, start, 24 * 10, status="missed"))
    totals_before = await read(settings, *DailyTotal.__table__.columns)
    every = await read(settings, Rotation.campaign_id, Rotation.local_day)
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    caplog.set_level(logging.INFO, logger="displayd.retention")
    now = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)

    deleted = await retention.purge(sessionmaker, now=now, retention_days=4, batch=7, pause=0)

    horizon = date(2024, 3, 6)
    assert deleted == sum(1 for _, day in every if day < horizon) > 7 * 3
    left = await read(settings, Rotation.campaign_id, Rotation.local_day)
    assert sorted(left) == sorted((c, day) for c, day in every if day >= horizon)
    assert {c for c, day in left if day == horizon} == {ahead["id"], behind["id"]}
    assert await read(settings, SchedulerState.purged_before) == [(horizon,)]
    assert sorted(await read(settings, *DailyTotal.__table__.columns)) == sorted(totals_before)
    [event] = [r for r in caplog.records if getattr(r, "event", None) == "retention"]
    assert event.count == deleted  # type: ignore[attr-defined]
    # Again: nothing left to do. A longer retention never moves the horizon back.
    assert await retention.purge(sessionmaker, now=now, retention_days=4, pause=0) == 0
    assert await retention.purge(sessionmaker, now=now, retention_days=100, pause=0) == 0
    assert await read(settings, SchedulerState.purged_before) == [(horizon,)]
    await engine.dispose()


class Leading:
    """A leadership of every shard, from its first check: the test is the only scheduler."""

    name = "test"
    offline = False
    live = 1

    def __init__(self) -> None:
        self.held: frozenset[int] = frozenset()

    async def check(self) -> Change:
        if self.held:
            return Change()
        self.held = ALL_SHARDS
        return Change(gained=ALL_SHARDS)

    async def give_up(self, shards: frozenset[int]) -> None:
        self.held -= shards

    async def release(self) -> None:
        self.held = frozenset()


async def airtime(client: httpx.AsyncClient, keys: Keys, campaign_id: int) -> list[Any]:
    answers = []
    for by in ("slogan", "board", "day"):
        response = await client.get("/api/v1/reports/airtime", params={"campaign_id": campaign_id, "by": by},
                                    headers=keys.auth("operator"))
        assert response.status_code == 200, response.text
        answers.append(response.json()["items"])
    return answers


async def test_the_leader_purges_old_detail_and_reports_stay_the_same(
    factory: Factory, settings: Settings, client: httpx.AsyncClient, keys: Keys, dispatcher: Dispatcher,
    clock: FakeClock,
) -> None:
    slogans = await factory.approved_ids()
    # A campaign that is over: its log is history, nothing is pushed now.
    campaign = await factory.campaign(starts_at="2024-03-01T00:00:00Z", ends_at="2024-05-01T00:00:00Z")
    await factory.board("bang-day", delivery="push", endpoint_url="http://127.0.0.1:9/")
    await factory.board("bang-keo", delivery="poll")
    start = datetime(2024, 3, 1, tzinfo=UTC)
    every = timedelta(minutes=50)
    await write(settings, rows("bang-day", campaign["id"], slogans, start, 1700, every=every)
                + rows("bang-keo", campaign["id"], slogans, start, 1700, every=every, status="not_pushed"))
    before = await airtime(client, keys, campaign["id"])
    scheduler = SlotScheduler(dispatcher=dispatcher, leadership=Leading(), clock=clock, metrics=Metrics(),
                              retention_days=30)

    await scheduler.retain()
    assert scheduler.purging is None, "only the leader purges"
    scheduler.start()  # takes the lead, and purges shortly after: at once, with the test's clock
    try:
        for _ in range(200):
            if scheduler.purging is not None and scheduler.purging.done():
                break
            await asyncio.sleep(0.05)
        assert scheduler.leader and scheduler.purging is not None and scheduler.purging.done()
        deleted = scheduler.purging.result()
    finally:
        await scheduler.shutdown()

    horizon = (clock.now - timedelta(days=30)).date()  # 2024-04-07
    [(oldest,)] = await read(settings, func.min(Rotation.local_day))
    assert oldest == horizon, "old rows gone, recent rows kept"
    assert deleted == 2 * sum(1 for k in range(1700) if (start + every * k + timedelta(hours=7)).date() < horizon)
    assert await airtime(client, keys, campaign["id"]) == before


async def test_purge_batches_wait_until_no_boundary_is_near() -> None:
    clock = FakeClock()
    scheduler = SlotScheduler(dispatcher=cast(Dispatcher, None), leadership=Leading(), clock=clock, metrics=Metrics())
    await asyncio.wait_for(scheduler.quiet(), 1)  # no boundary planned: at once
    boundary = clock.now + timedelta(seconds=10)
    scheduler._schedule(boundary)
    await asyncio.wait_for(scheduler.quiet(), 1)  # far enough away
    clock.advance(seconds=9.7)
    waiting = asyncio.create_task(scheduler.quiet())
    await asyncio.sleep(0.2)
    assert not waiting.done(), "the boundary is 300 ms away"
    clock.advance(seconds=1)
    await asyncio.sleep(0.2)
    assert not waiting.done(), "its time has come, but it has not run yet"
    await scheduler.boundary(boundary)  # runs (a follower's: it does nothing) and plans no successor
    await asyncio.wait_for(waiting, 1)


@pytest.fixture
def other_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database on the other backend."""
    yield from fresh_database_url("postgresql" if backend == "sqlite" else "sqlite", tmp_path)


async def test_a_copied_database_keeps_the_totals_of_purged_days(
    factory: Factory, settings: Settings, other_url: str
) -> None:
    slogans = await factory.approved_ids()
    campaign = await factory.campaign()
    await write(settings, rows("bang-a", campaign["id"], slogans, datetime(2024, 3, 1, tzinfo=UTC), 24 * 20))
    engine = create_engine(settings)
    await retention.purge(create_sessionmaker(engine), now=datetime(2024, 3, 30, tzinfo=UTC), retention_days=20,
                          pause=0)
    await engine.dispose()
    totals = sorted(await read(settings, *DailyTotal.__table__.columns))
    assert sum(row.rows for row in totals) == 24 * 20 > len(await read(settings, Rotation.id))

    await copy_database(settings.database_url, other_url)

    copied = Settings(database_url=other_url)
    assert sorted(await read(copied, *DailyTotal.__table__.columns)) == totals, "as on the source, not recounted"
    assert await read(copied, SchedulerState.purged_before) == [(date(2024, 3, 10),)]
