"""Migration 0006 on a database that already has a log: every row gets its campaign's local
day, the totals are built from the rows, the triggers count what comes after; and it goes
back down to 0005 and up again, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from displayd.config import Settings
from displayd.db import migrate
from displayd.db.session import create_engine
from tests.conftest import BACKENDS, fresh_database_url

INSERT_ROW = text(
    "INSERT INTO rotation (board_id, campaign_id, slot_index, slogan_id, content_hash, starts_at, ends_at, "
    "push_status, attempts, first_polled_at) VALUES (:board, :campaign, :slot, :slogan, 'sha256:x', :starts, :ends, "
    ":status, 0, :polled)")


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from fresh_database_url(str(request.param), tmp_path)


def stored(engine_name: str, t: datetime) -> object:
    """A raw SQL parameter for a UTC column, as each database keeps it."""
    return t.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f") if engine_name == "sqlite" else t


async def test_the_migration_gives_old_rows_their_local_days_and_totals(empty_url: str) -> None:
    settings = Settings(database_url=empty_url)
    await asyncio.to_thread(migrate.upgrade, settings, "0005")
    engine = create_engine(settings)
    kind = engine.dialect.name
    now = stored(kind, datetime(2024, 5, 1, tzinfo=UTC))
    start = datetime(2024, 5, 6, 16, 59, 30, tzinfo=UTC)  # 23:59:30 in Hà Nội, 05:59:30 next day in Kiritimati
    async with engine.begin() as connection:
        for number, zone in [(1, "Asia/Ho_Chi_Minh"), (2, "Pacific/Kiritimati")]:
            await connection.execute(text(
                "INSERT INTO campaign (id, name, starts_at, ends_at, timezone, daily_hours, dwell_seconds, priority, "
                "\"order\", playlist, targets, paused, created_by, created_at, updated_at) VALUES (:id, 'c', :now, "
                ":now, :zone, '[]', 30, 100, 'sequential', '[]', '{}', false, 'test', :now, :now)"),
                {"id": number, "zone": zone, "now": now})
        rows = [{"board": "bang-a", "campaign": campaign, "slot": k, "slogan": 1 + k % 2,
                 "starts": stored(kind, start + timedelta(seconds=30 * k)),
                 "ends": stored(kind, start + timedelta(seconds=30 * k + 30)),
                 "status": "missed" if k == 3 else "delivered", "polled": now if k == 0 else None}
                for campaign in (1, 2, 9) for k in range(4)]  # 9: a campaign that is not there
        await connection.execute(INSERT_ROW, rows)
    await engine.dispose()

    await asyncio.to_thread(migrate.upgrade, settings)
    engine = create_engine(settings)
    async with engine.connect() as connection:
        days = {(c, k): str(d) for c, k, d in await connection.execute(
            text("SELECT campaign_id, slot_index, local_day FROM rotation"))}
        totals = sorted(tuple(r) for r in await connection.execute(text(
            'SELECT campaign_id, slogan_id, CAST(day AS VARCHAR(10)), "rows", slots, milliseconds, missed, '
            "delivered, polled FROM daily_total")))
    hanoi = {(c, k): "2024-05-06" if k == 0 else "2024-05-07" for c in (1, 9) for k in range(4)}
    assert days == {**hanoi, **{(2, k): "2024-05-07" for k in range(4)}}, "each campaign's zone; the default's"
    assert totals == [
        (1, 1, "2024-05-06", 1, 1, 30_000, 0, 1, 1), (1, 1, "2024-05-07", 1, 1, 30_000, 0, 1, 0),
        (1, 2, "2024-05-07", 2, 1, 30_000, 1, 1, 0),
        (2, 1, "2024-05-07", 2, 2, 60_000, 0, 2, 1), (2, 2, "2024-05-07", 2, 1, 30_000, 1, 1, 0),
        (9, 1, "2024-05-06", 1, 1, 30_000, 0, 1, 1), (9, 1, "2024-05-07", 1, 1, 30_000, 0, 1, 0),
        (9, 2, "2024-05-07", 2, 1, 30_000, 1, 1, 0),
    ]
    # The triggers count from now on: a new row, and an outcome changed.
    async with engine.begin() as connection:
        await connection.execute(text(
            "INSERT INTO rotation (board_id, campaign_id, slot_index, slogan_id, content_hash, starts_at, ends_at, "
            "push_status, attempts, local_day) VALUES ('bang-a', 2, 4, 1, 'h', :s, :e, 'pending', 0, :d)"),
            {"s": stored(kind, start + timedelta(minutes=2)), "e": stored(kind, start + timedelta(minutes=3)),
             "d": date(2024, 5, 7)})
        await connection.execute(text("UPDATE rotation SET push_status = 'failed' "
                                      "WHERE campaign_id = 2 AND slot_index = 0"))
        [after] = list(await connection.execute(text(
            'SELECT "rows", slots, milliseconds, delivered, failed, polled FROM daily_total '
            "WHERE campaign_id = 2 AND slogan_id = 1")))
    assert tuple(after) == (3, 3, 120_000, 1, 1, 1)
    await engine.dispose()

    await asyncio.to_thread(migrate.downgrade, settings, "0005")
    await asyncio.to_thread(migrate.upgrade, settings)
    engine = create_engine(settings)
    async with engine.connect() as connection:
        count = (await connection.execute(text('SELECT sum("rows") FROM daily_total'))).scalar()
    await engine.dispose()
    assert count == 13, "down and up again: the totals rebuilt from the rows"
