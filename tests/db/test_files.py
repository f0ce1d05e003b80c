"""The SQLite database and its `-wal`/`-shm` files are readable by their owner only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import pytest

from displayd.app import create_app
from displayd.db import session as session_module
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


def test_an_existing_database_file_is_never_opened_to_tighten_it(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Closing any descriptor of a SQLite file drops the POSIX locks this process holds on it
    (a running engine's), so an existing file is chmod-ed by path, never opened."""
    database = tmp_path / "displayd.db"
    database.write_bytes(b"")
    database.chmod(0o644)
    opened: list[str] = []
    real_open = os.open

    def recording_open(path: str | os.PathLike[str], *args: int) -> int:
        fd = real_open(path, *args)  # raises for an exclusive create of an existing file: nothing opened
        opened.append(str(path))
        return fd

    monkeypatch.setattr(os, "open", recording_open)
    session_module.private_sqlite_file(database)
    assert opened == [], f"a descriptor of the live database was opened and closed: {opened}"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
