"""Schema only through Alembic: upgrade → downgrade base → upgrade, on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from displayd.config import Settings
from displayd.db.models import Base
from displayd.db.session import create_engine
from tests.cli import run_displayd
from tests.conftest import BACKENDS, fresh_database_url


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from fresh_database_url(str(request.param), tmp_path)


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))


async def test_upgrade_downgrade_upgrade(empty_url: str, tmp_path: Path) -> None:
    engine = create_engine(Settings(database_url=empty_url))
    model_tables = {t.name for t in Base.metadata.sorted_tables}
    run_displayd("db", "upgrade", database_url=empty_url, cwd=tmp_path)
    assert await _tables(engine) == model_tables | {"alembic_version"}
    run_displayd("db", "downgrade", "base", database_url=empty_url, cwd=tmp_path)
    assert await _tables(engine) <= {"alembic_version"}
    run_displayd("db", "upgrade", database_url=empty_url, cwd=tmp_path)
    assert await _tables(engine) == model_tables | {"alembic_version"}
    await engine.dispose()


async def test_models_match_migrations(empty_url: str) -> None:
    """Autogenerate finds nothing to do: the models and the migrations agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from displayd.db import migrate

    settings = Settings(database_url=empty_url)
    await asyncio.to_thread(migrate.upgrade, settings)
    engine = create_engine(settings)

    def diff(connection: object) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})  # type: ignore[arg-type]
        return list(compare_metadata(context, Base.metadata))

    async with engine.connect() as connection:
        differences = await connection.run_sync(diff)
    await engine.dispose()
    assert differences == []
