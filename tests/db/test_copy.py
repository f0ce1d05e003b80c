"""`displayd db copy`: a copied database serves what the source served, on either direction."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from displayd.app import create_app
from displayd.config import Settings
from displayd.db.models import Board, Replica
from displayd.db.session import create_engine, create_sessionmaker
from displayd.progress import Progress
from tests.cli import run_displayd
from tests.conftest import FakeClock, Keys, fresh_database_url, make_settings
from tests.factories import Factory
from tests.logbook.test_rotations_api import slot_rows, write


@pytest.fixture
def target_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database on the other backend than the test's source."""
    yield from fresh_database_url("postgresql" if backend == "sqlite" else "sqlite", tmp_path)


@asynccontextmanager
async def serving(target_url: str, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    # The test's secret key on both sides: board credentials survive the move only with it.
    app: FastAPI = create_app(make_settings(target_url), clock=clock)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://displayd.test") as c:
            yield c


async def answers(client: httpx.AsyncClient, keys: Keys, board: dict[str, Any], campaign_id: int) -> list[Any]:
    """What an operator and a board read: the same calls on source and target."""
    reads = [
        ("/api/v1/slogans", {}), ("/api/v1/campaigns", {}), ("/api/v1/boards", {}),
        (f"/api/v1/boards/{board['id']}/schedule", {"from": "2024-05-06T16:00:00Z", "to": "2024-05-06T17:00:00Z"}),
        ("/api/v1/rotations", {"limit": 1000}),
        ("/api/v1/reports/airtime", {"campaign_id": campaign_id, "by": "slogan"}),
        (f"/api/v1/reports/campaigns/{campaign_id}", {"to": "2024-05-08T00:00:00Z"}),
        ("/api/v1/audit", {}),
    ]
    got: list[Any] = []
    for path, params in reads:
        response = await client.get(path, params=params, headers=keys.auth("admin"))
        assert response.status_code == 200, (path, response.text)
        got.append(response.json())
    poll = await client.get(f"/api/v1/boards/{board['id']}/current",
                            headers={"Authorization": f"Bearer {board['token']}"})
    assert poll.status_code == 200, poll.text
    got.append(poll.json())
    return got


async def test_a_copied_database_serves_the_same_schedule_log_and_report(
    settings: Settings, factory: Factory, keys: Keys, client: httpx.AsyncClient, target_url: str, clock: FakeClock,
) -> None:
    board = await factory.board("bang-nha-van-hoa")
    campaign = await factory.campaign(starts_at="2024-05-06T00:00:00Z")
    slogans = await factory.approved_ids()
    await write(settings, slot_rows(board["id"], campaign["id"], slogans, 0, 5_000))
    before = await answers(client, keys, board, campaign["id"])

    copied = run_displayd("db", "copy", settings.database_url, target_url, database_url="unused")
    assert "counts match" in copied.stdout
    async with serving(target_url, clock) as target:
        after = await answers(target, keys, board, campaign["id"])
        for index, (left, right) in enumerate(zip(before, after, strict=True)):
            assert right == left, index
        # New rows on the target take new ids: PostgreSQL's sequences were moved past the copy.
        made = await target.post("/api/v1/slogans", json={"text": "Đoàn kết, đoàn kết, đại đoàn kết"},
                                 headers=keys.auth("editor"))
        assert made.status_code == 201, made.text
        assert made.json()["id"] > max(slogans)


async def test_a_target_with_rows_is_refused_unless_forced(
    settings: Settings, factory: Factory, target_url: str,
) -> None:
    await factory.board("bang-1")
    run_displayd("db", "copy", settings.database_url, target_url, database_url="unused")
    await factory.board("bang-2")

    again = run_displayd("db", "copy", settings.database_url, target_url, database_url="unused", check=False)
    assert again.returncode != 0
    assert "already holds rows" in again.stderr and "board (1)" in again.stderr

    forced = run_displayd("db", "copy", "--force", settings.database_url, target_url, database_url="unused")
    assert "counts match" in forced.stdout
    back = run_displayd("db", "copy", target_url, settings.database_url, database_url="unused", check=False)
    assert back.returncode != 0 and "already holds rows" in back.stderr, "the source is never overwritten unasked"


def test_refuses_a_missing_source_and_copying_onto_itself(tmp_path: Path) -> None:
    missing = f"sqlite+aiosqlite:///{tmp_path / 'nowhere.db'}"
    result = run_displayd("db", "copy", missing, f"sqlite+aiosqlite:///{tmp_path / 'to.db'}",
                          database_url="unused", check=False)
    assert result.returncode != 0 and "no SQLite database" in result.stderr
    assert not (tmp_path / "nowhere.db").exists(), "the missing source is not created"
    same = run_displayd("db", "copy", missing, missing, database_url="unused", check=False)
    assert same.returncode != 0 and "same database" in same.stderr


class Terminal:
    def __init__(self, tty: bool) -> None:
        self.tty, self.text = tty, ""

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass


def test_progress_is_drawn_on_a_terminal_and_summarised_elsewhere() -> None:
    terminal, pipe = Terminal(tty=True), Terminal(tty=False)
    for stream in (terminal, pipe):
        ticks = iter([0.0, 1.0, 2.0, 3.0]).__next__
        progress = Progress("rotation", total=300, stream=stream, clock=ticks)  # type: ignore[arg-type]
        progress.advance(100)
        progress.advance(100)
        progress.done()
    assert "rotation: 100 of 300 rows (33%), 100 rows/s, 2.0 s left" in terminal.text
    assert "rotation: 200 of 300 rows (67%), 100 rows/s, 1.0 s left" in terminal.text
    assert pipe.text == "rotation: 200 rows in 3.0 s\n", "a pipe gets the summary alone"


async def test_the_replicas_of_the_source_site_are_not_copied(
    settings: Settings, factory: Factory, target_url: str, clock: FakeClock,
) -> None:
    """A heartbeat row is a process of the old site, not data: the copy leaves it behind."""
    await factory.board("bang-1")
    engine = create_engine(settings)
    async with create_sessionmaker(engine)() as session, session.begin():
        session.add(Replica(name="may-cu:1:aa", started_at=clock.now, heartbeat_at=clock.now, shards="0,1,2"))
    await engine.dispose()
    copied = run_displayd("db", "copy", settings.database_url, target_url, database_url="unused")
    assert "counts match" in copied.stdout
    engine = create_engine(make_settings(target_url))
    async with create_sessionmaker(engine)() as session:
        assert await session.scalar(select(func.count()).select_from(Replica)) == 0
        assert await session.scalar(select(func.count()).select_from(Board)) == 1
    await engine.dispose()
