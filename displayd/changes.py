"""How processes learn that what boards see has changed.

A change (retirement, pause, campaign or board edit) calls `touch(session)` inside its
transaction: it increments the one `change_version` row. The process that made the change
rebuilds its snapshot as soon as the transaction commits (`changed(session)` tells the
request plumbing to). On PostgreSQL the same transaction sends `NOTIFY displayd_changes`,
delivered at commit: every other process listening (`ChangeListener`) checks the row at
once, within milliseconds. The row stays the truth and the fallback: every process also
compares it every `change_poll_seconds` (on SQLite, where one process runs, that is all),
so a lost notification or a dropped listening connection costs seconds, never a change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from displayd.db.models import ChangeVersion

CHANNEL = "displayd_changes"
log = logging.getLogger("displayd.changes")


async def touch(session: AsyncSession) -> None:
    """Move the change version, once per transaction however many rows it changes (a bulk
    import of 1,000 boards is one change, one snapshot rebuild in every process)."""
    transaction = session.get_transaction()
    if transaction is not None and session.info.get("touched_in") is transaction:
        return
    await session.execute(
        update(ChangeVersion).where(ChangeVersion.id == 1).values(version=ChangeVersion.version + 1)
    )
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.execute(select(func.pg_notify(CHANNEL, "")))  # sent when (and if) the transaction commits
    session.info["changed"] = True
    session.info["touched_in"] = transaction


def changed(session: AsyncSession) -> bool:
    return bool(session.info.get("changed"))


async def current_version(session: AsyncSession) -> int:
    return int(await session.scalar(select(ChangeVersion.version).where(ChangeVersion.id == 1)) or 0)


class ChangeListener:
    """`LISTEN displayd_changes` on a connection of its own (PostgreSQL): `wait(seconds)` returns
    True as soon as another process committed a change, False when `seconds` passed first.
    A lost connection is opened again on the next wait; meanwhile waits just time out, so
    the caller falls back to comparing the version row."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.connection: asyncpg.Connection | None = None
        self._heard = asyncio.Event()
        self._failing = False

    def _notified(self, *_: object) -> None:
        self._heard.set()

    async def _connect(self) -> None:
        if self.connection is not None and not self.connection.is_closed():
            return
        try:
            self.connection = await asyncpg.connect(self.dsn, timeout=5, server_settings={
                "application_name": "displayd-changes"})
            await self.connection.add_listener(CHANNEL, self._notified)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            self.connection = None
            if not self._failing:
                log.warning("cannot listen for changes (checking every few seconds instead): %s", exc)
            self._failing = True
            return
        if self._failing:
            log.info("listening for changes again")
        self._failing = False
        self._heard.set()  # changes made while not listening: look once now

    async def wait(self, seconds: float) -> bool:
        await self._connect()
        # (Not `asyncio.wait_for`: on Python 3.11 it swallows a cancellation that arrives as the
        # notification does, and the process's watch task then never stops.)
        try:
            async with asyncio.timeout(seconds):
                await self._heard.wait()
        except TimeoutError:
            return False
        self._heard.clear()
        return True

    async def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await self.connection.close()
            self.connection = None
