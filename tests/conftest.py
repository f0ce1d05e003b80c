"""Shared fixtures.

Every test that takes `settings` (directly or through `app`/`client`) runs twice: on a
SQLite file and on a real PostgreSQL database made for this test run. PostgreSQL being
unreachable is a failure, not a skip: the storage contract is tested on both or not at all.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from displayd.app import create_app
from displayd.auth.keys import create_key
from displayd.auth.roles import Role, cli_principal
from displayd.config import Settings
from displayd.db import migrate
from displayd.db.models import Base
from displayd.db.session import create_engine, create_sessionmaker

PG_SERVER = os.environ.get("DISPLAYD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]


async def _pg_admin(sql: str) -> None:
    try:
        connection = await asyncpg.connect(PG_SERVER, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL at {PG_SERVER} is unreachable ({exc}); the storage tests need it", pytrace=False)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def pg_url(database: str) -> str:
    base = PG_SERVER.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{database}"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, dropped at the end."""
    name = f"displayd_test_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    yield name
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def fresh_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own (for migration and multi-process tests)."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        return
    name = f"displayd_fresh_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield pg_url(name)
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def migrated_urls(tmp_path_factory: pytest.TempPathFactory, pg_database: str) -> dict[str, str]:
    urls = {
        "sqlite": f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'displayd.db'}",
        "postgresql": pg_url(pg_database),
    }
    for url in urls.values():
        migrate.upgrade(Settings(database_url=url))
    return urls


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "allowed_board_networks": ["127.0.0.0/8", "::1/128", "10.0.0.0/8", "192.168.0.0/16"],
        "change_poll_seconds": 0.2,
        "scheduler_enabled": False,  # tests move a fake clock; the scheduler runs in real processes
        "secret_key": "test-secret-key-0123456789abcdef0123456789",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def settings(backend: str, migrated_urls: dict[str, str]) -> AsyncIterator[Settings]:
    """Settings on an emptied, migrated database of the test's backend."""
    settings = make_settings(migrated_urls[backend])
    engine = create_engine(settings)
    singletons = ("change_version", "scheduler_state")  # one row each, made by the migrations
    tables = [t.name for t in reversed(Base.metadata.sorted_tables) if t.name not in singletons]
    async with engine.begin() as connection:
        if backend == "postgresql":
            await connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                await connection.execute(text(f"DELETE FROM {table}"))
        await connection.execute(text("UPDATE change_version SET version = 0"))
        await connection.execute(text("UPDATE scheduler_state SET handled_until = NULL, leader = NULL, "
                                      "missed_from = NULL, purged_before = NULL"))
    await engine.dispose()
    yield settings


# Tiers, marked here so that no test has to remember: `db` when a test reaches a database
# through the fixtures, `process` when its module starts servers, subprocesses or a browser
# (it imports one of the names below; a plain subprocess, as the
# determinism test uses, stays fast). `make test-fast` runs what is neither: the pure and
# unit tests, in seconds; `make test` runs everything.
DATABASE_FIXTURES = frozenset({"settings", "backend", "migrated_urls", "pg_database"})
PROCESS_NAMES = frozenset({"run_displayd", "start_server", "servers", "free_port",
                           "async_playwright", "DISPLAYD"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if DATABASE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)
        module = getattr(item, "module", None)
        if module is not None and PROCESS_NAMES.intersection(vars(module)):
            item.add_marker(pytest.mark.process)


class FakeClock:
    """A clock the test moves by hand: `clock.advance(seconds=30)`."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2024, 5, 7, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def app(settings: Settings, clock: FakeClock) -> AsyncIterator[FastAPI]:
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://displayd.test") as client:
        yield client


@dataclass(frozen=True)
class Keys:
    """One key per role, plus a second editor and approver (other people)."""

    admin: str
    editor: str
    approver: str
    operator: str
    editor2: str
    approver2: str

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {getattr(self, who)}"}


async def make_keys(settings: Settings) -> Keys:
    engine = create_engine(settings)
    made: dict[str, str] = {}
    async with create_sessionmaker(engine)() as session, session.begin():
        for label, role, name in [
            ("admin", Role.ADMIN, "Quản trị"), ("editor", Role.EDITOR, "Chuyên viên A"),
            ("approver", Role.APPROVER, "Lãnh đạo Sở"), ("operator", Role.OPERATOR, "Thanh tra"),
            ("editor2", Role.EDITOR, "Chuyên viên B"), ("approver2", Role.APPROVER, "Phó Giám đốc"),
        ]:
            _, made[label] = await create_key(session, actor=cli_principal("setup"), role=role.value,
                                              name=name, now=datetime.now(UTC))
    await engine.dispose()
    return Keys(**made)


@pytest.fixture
async def keys(settings: Settings) -> Keys:
    return await make_keys(settings)


async def count_rows(settings: Settings, table: str) -> int:
    engine = create_engine(settings)
    async with AsyncSession(engine) as session:
        value = await session.scalar(text(f"SELECT count(*) FROM {table}"))
    await engine.dispose()
    return int(value or 0)


@pytest.fixture
async def factory(client: httpx.AsyncClient, keys: Keys) -> Any:
    from tests.factories import Factory

    return Factory(client, keys)


@pytest.fixture
async def boards() -> AsyncIterator[Any]:
    """Fake push boards on a loopback socket (tests/delivery/boards.py)."""
    from tests.delivery.boards import FakeBoards

    async with FakeBoards() as fake:
        yield fake


@pytest.fixture
async def dispatcher(app: FastAPI, settings: Settings, clock: FakeClock) -> AsyncIterator[Any]:
    """The leader's slot work on the test's app, pushing through a real client."""
    from displayd.delivery.dispatch import Dispatcher
    from displayd.delivery.push import Pusher
    from displayd.delivery.transport import make_client
    from displayd.keyring import master_key

    client = make_client(networks=settings.board_networks())
    dispatcher = Dispatcher(state=app.state, sessionmaker=app.state.sessionmaker, clock=clock,
                            master=master_key(settings), pusher=Pusher(client, attempt_timeout=2), name="test")
    yield dispatcher
    await dispatcher.stop()
    await client.aclose()
