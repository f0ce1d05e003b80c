"""Engines and sessions. SQLite gets WAL, foreign keys and a busy timeout on every connection,
and its files are readable by their owner only."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from displayd.config import Settings

# How long a SQLite writer waits for another's transaction before giving up. Writes are short
# and bounded (the largest, a 10,000-board slot, takes ~0.3 s), so waiting is always enough.
SQLITE_BUSY_TIMEOUT_MS = 10_000
# How long opening a PostgreSQL connection may take (asyncpg waits 60 s by default). Short,
# because a database that went away must be noticed in seconds: the leader then pushes from
# memory (`displayd.delivery.backlog`), and each boundary must not wait a minute to learn it.
PG_CONNECT_TIMEOUT_SECONDS = 3.0


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets polls and the dashboard read while the scheduler writes the log.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def private_sqlite_file(path: Path) -> None:
    """Make the SQLite file (and its folder, if new) readable by its owner only, before SQLite
    opens it: SQLite gives the `-wal` and `-shm` files the database file's permissions.

    An existing file is changed by path, never opened: closing any descriptor of a SQLite
    file drops every POSIX lock this process holds on it, so opening it here beside a running
    engine (a second engine in one process) could let another process check-point the WAL
    away under that engine's feet."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        os.close(fd)  # a new, empty file: nobody holds locks on it yet
    for suffix in ("", "-wal", "-shm"):
        member = path.with_name(path.name + suffix)
        with contextlib.suppress(FileNotFoundError):
            if member.stat().st_uid == os.getuid() and member.stat().st_mode & 0o077:
                member.chmod(0o600)  # made by an older displayd (or by hand) with looser bits


def create_engine(settings: Settings, **kwargs: Any) -> AsyncEngine:
    """The process's engine for `settings.database_url` (the SQLite file private to its owner)."""
    if settings.is_sqlite:
        path = settings.sqlite_path
        if path is not None:
            private_sqlite_file(path)
        engine = create_async_engine(settings.database_url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("connect_args", {"timeout": PG_CONNECT_TIMEOUT_SECONDS})
    kwargs.setdefault("pool_size", 10)
    return create_async_engine(settings.database_url, **kwargs)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def asyncpg_dsn(database_url: str) -> str:
    """The plain `postgresql://` DSN asyncpg takes, for the connections displayd holds open
    outside the pool (the scheduler lock, the change listener)."""
    from sqlalchemy.engine import make_url

    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
