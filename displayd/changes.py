"""How processes learn that what boards see has changed.

A change (retirement, pause, campaign or board edit) calls `touch(session)` inside its
transaction: it increments the one `change_version` row. The process that made the change
rebuilds its snapshot as soon as the transaction commits (`changed(session)` tells the
request plumbing to); every other process compares the row every `change_poll_seconds`
and rebuilds when it moved. That works the same on SQLite and PostgreSQL and costs one
primary-key read a second.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from displayd.db.models import ChangeVersion


async def touch(session: AsyncSession) -> None:
    """Move the change version, once per transaction however many rows it changes (a bulk
    import of 1,000 boards is one change, one snapshot rebuild in every process)."""
    transaction = session.get_transaction()
    if transaction is not None and session.info.get("touched_in") is transaction:
        return
    await session.execute(
        update(ChangeVersion).where(ChangeVersion.id == 1).values(version=ChangeVersion.version + 1)
    )
    session.info["changed"] = True
    session.info["touched_in"] = transaction


def changed(session: AsyncSession) -> bool:
    return bool(session.info.get("changed"))


async def current_version(session: AsyncSession) -> int:
    return int(await session.scalar(select(ChangeVersion.version).where(ChangeVersion.id == 1)) or 0)
