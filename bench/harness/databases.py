"""Scratch databases: an empty SQLite file, or an empty PostgreSQL database dropped at the end.

    with scratch_database(workdir, "poll", server=None) as url:                    # sqlite+aiosqlite:///…/bench.db
        ...
    with scratch_database(workdir, "poll", server="postgresql://postgres@127.0.0.1/test") as url:
        ...   # postgresql+asyncpg://postgres@127.0.0.1/displayd_bench_poll_<pid>, created through `test`

`server` names a database the benchmark may connect to in order to create its own beside it;
nothing is written into that one. Each benchmark gets a fresh database, so repeated runs never
meet a board or a campaign a previous run left.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
from sqlalchemy.engine import URL, make_url

from bench.harness.processes import BenchError

LOCAL_POSTGRESQL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def postgresql_url(value: str) -> str:
    """An argparse `type`: a PostgreSQL URL, with the asyncpg driver displayd uses."""
    url = make_url(value)
    if url.get_backend_name() != "postgresql":
        raise argparse.ArgumentTypeError("a PostgreSQL URL (leave the option out for a temporary SQLite file)")
    return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def _dsn(url: URL) -> str:
    """asyncpg's form of an SQLAlchemy URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin(server: URL, sql: str) -> None:
    try:
        connection = await asyncpg.connect(_dsn(server))
    except (OSError, asyncpg.PostgresError) as exc:
        raise BenchError(f"cannot reach PostgreSQL at {server.render_as_string()}: {exc}") from exc
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextmanager
def scratch_database(workdir: Path, tag: str, *, server: str | None) -> Iterator[str]:
    """The URL of a fresh, empty database (not migrated): SQLite in `workdir`, or beside `server`'s."""
    if server is None:
        yield f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
        return
    base = make_url(postgresql_url(server))
    name = f"displayd_bench_{tag}_{os.getpid()}"
    asyncio.run(_admin(base, f"CREATE DATABASE {name}"))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(base, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def plain_dsn(url: str) -> str:
    """The driver's own DSN of a displayd PostgreSQL URL (for asyncpg.connect)."""
    return _dsn(make_url(url))
