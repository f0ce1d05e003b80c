"""The SQLite database and its `-wal`/`-shm` files are readable by their owner only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx

from displayd.app import create_app
from tests.cli import run_displayd
from tests.conftest import make_settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_database_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    database = tmp_path / "var" / "displayd.db"
    url = f"sqlite+aiosqlite:///{database}"
    previous = os.umask(0o022)  # the usual umask: files made without care are world-readable
    try:
        run_displayd("db", "upgrade", database_url=url)
        app = create_app(make_settings(url))
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://displayd.test") as client:
            assert (await client.get("/readyz")).status_code == 200
            files = [database, database.with_name("displayd.db-wal"), database.with_name("displayd.db-shm")]
            assert all(f.exists() for f in files)
            assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
        assert _mode(database.parent) == 0o700
    finally:
        os.umask(previous)


def test_a_database_made_with_looser_permissions_is_tightened(tmp_path: Path) -> None:
    database = tmp_path / "displayd.db"
    database.touch()
    database.chmod(0o644)
    run_displayd("db", "upgrade", database_url=f"sqlite+aiosqlite:///{database}")
    assert _mode(database) == 0o600
