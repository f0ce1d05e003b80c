"""One scheduler among all processes sharing a database.

    leadership = leadership_for(settings)
    if await leadership.try_acquire(): ...      # then, before every slot:
    if not await leadership.still_held(): ...   # step down

PostgreSQL: a session advisory lock held on a dedicated connection (not from the pool).
When the leader dies, even by `kill -9`, the server sees its connection close and frees
the lock; a standby trying every few seconds takes over. SQLite: an exclusive `flock` on a
file beside the database, which the kernel releases when the process dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from pathlib import Path
from typing import Protocol

import asyncpg

from displayd.config import Settings
from displayd.db.session import asyncpg_dsn

log = logging.getLogger("displayd.leader")

# pg_try_advisory_lock takes a bigint; this one spells "displayd" in ASCII.
LOCK_KEY = int.from_bytes(b"displayd", "big") & 0x7FFF_FFFF_FFFF_FFFF


class Leadership(Protocol):
    async def try_acquire(self) -> bool: ...
    async def still_held(self) -> bool: ...
    async def release(self) -> None: ...


class PostgresLeadership:
    """The lock's connection runs one query at a time: the boundary and the periodic check both
    ask `still_held`, and two queries at once on one asyncpg connection fail ("another
    operation is in progress") — which once read as a lost lock, dropped the connection and
    so really lost it, mid-fan-out. A caller arriving while a check is under way waits for it."""

    def __init__(self, database_url: str) -> None:
        self.dsn = asyncpg_dsn(database_url)
        self.connection: asyncpg.Connection | None = None
        self.held = False
        self._one_at_a_time = asyncio.Lock()

    async def try_acquire(self) -> bool:
        if self.held:
            return await self.still_held()
        async with self._one_at_a_time:
            return await self._try_acquire()

    async def _try_acquire(self) -> bool:
        try:
            if self.connection is None or self.connection.is_closed():
                self.connection = await asyncpg.connect(self.dsn, timeout=5, server_settings={
                    "application_name": "displayd-scheduler"})
            self.held = bool(await asyncio.wait_for(
                self.connection.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY), 5))
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            log.warning("could not try the scheduler lock: %s", exc)
            await self._drop()
        return self.held

    async def still_held(self) -> bool:
        async with self._one_at_a_time:
            return await self._still_held()

    async def _still_held(self) -> bool:
        if not self.held or self.connection is None:
            return False
        try:
            await asyncio.wait_for(self.connection.fetchval("SELECT 1"), 2)
        except (OSError, asyncpg.PostgresError, TimeoutError, asyncpg.InterfaceError,
                asyncpg.exceptions.InternalClientError) as exc:
            log.warning("lost the scheduler lock's connection: %s", exc)
            await self._drop()
        return self.held

    async def release(self) -> None:
        async with self._one_at_a_time:
            if self.held and self.connection is not None and not self.connection.is_closed():
                with contextlib.suppress(Exception):
                    await self.connection.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
            await self._drop()

    async def _drop(self) -> None:
        self.held = False
        connection, self.connection = self.connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 2)


class FileLeadership:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    async def try_acquire(self) -> bool:
        if self.fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return True

    async def still_held(self) -> bool:
        return self.fd is not None

    async def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def leadership_for(settings: Settings) -> Leadership:
    if settings.is_sqlite:
        path = settings.sqlite_path or Path("var/displayd-memory.db")
        return FileLeadership(path.with_name(path.name + ".scheduler.lock"))
    return PostgresLeadership(settings.database_url)
