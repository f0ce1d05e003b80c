"""Retention of the rotation log's detail: rows of local days older than `log_retention_days`
are deleted, in small batches, by the scheduler leader (`SlotScheduler.retain`).

    deleted = await purge(sessionmaker, now=clock(), retention_days=400)

What a report needs of those days stays in `daily_total`, which a purge never lowers (there
is no DELETE trigger). The horizon `scheduler_state.purged_before` moves forward first, in a
transaction of its own, and only then are rows deleted: from that commit on, reports read
the days before it from the totals, so a report never counts a day twice or half.

Each batch is its own short transaction, with a pause after it, so the slot path's writes
(one SQLite writer at a time) wait at most one batch. Integrity incidents and issued content
are not purged: they are few, and they are the evidence of an incident.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from displayd.db.models import Rotation, SchedulerState

__all__ = ["BATCH", "PAUSE", "purge"]

log = logging.getLogger("displayd.retention")

BATCH = 5000
PAUSE = 0.05  # seconds between batches: the slot path's writes get the database in between
# No time zone is ahead of UTC by more than 14 h (Pacific/Kiritimati): a row whose local day
# is before D started before D 00:00 UTC + 14 h, which bounds the scan on the starts_at index.
MAX_AHEAD_OF_UTC = timedelta(hours=14)


async def purge(sessionmaker: async_sessionmaker[AsyncSession], *, now: datetime, retention_days: int,
                batch: int = BATCH, pause: float = PAUSE) -> int:
    """Move the horizon to (now − retention_days)'s date if that is later, then delete the
    rows of local days before it; how many rows were deleted."""
    async with sessionmaker() as session, session.begin():
        horizon = await _advance_horizon(session, (now - timedelta(days=retention_days)).date())
    deleted = 0
    if horizon is not None:
        # Keyset on (starts_at, id): each batch starts where the last ended, so it never walks
        # again over what was deleted (or kept) before it.
        bound = datetime.combine(horizon, time(), tzinfo=UTC) + MAX_AHEAD_OF_UTC
        after: tuple[datetime, int] | None = None
        while True:
            async with sessionmaker() as session, session.begin():
                done = await _delete_batch(session, horizon, bound, after, batch)
            deleted += len(done)
            if done:
                after = max(done)
            if len(done) < batch:
                break
            await asyncio.sleep(pause)
    log.info("purged %d rotation rows of local days before %s", deleted, horizon,
             extra={"event": "retention", "count": deleted, "purged_before": str(horizon)})
    return deleted


async def _advance_horizon(session: AsyncSession, wanted: date) -> date | None:
    """The horizon after this run: `wanted`, or the one already set if it is later (a shorter
    retention setting never brings back what is gone, and a longer one cannot)."""
    current = await session.scalar(select(SchedulerState.purged_before).where(SchedulerState.id == 1))
    if current is not None and current >= wanted:
        return current
    await session.execute(update(SchedulerState).where(SchedulerState.id == 1).values(purged_before=wanted))
    return wanted


async def _delete_batch(session: AsyncSession, horizon: date, bound: datetime, after: tuple[datetime, int] | None,
                        size: int) -> list[tuple[datetime, int]]:
    ids = (select(Rotation.id).where(Rotation.starts_at < bound, Rotation.local_day < horizon)
           .order_by(Rotation.starts_at, Rotation.id).limit(size))
    if after is not None:
        ids = ids.where(tuple_(Rotation.starts_at, Rotation.id) > tuple_(*after))
    result = await session.execute(delete(Rotation).where(Rotation.id.in_(ids.scalar_subquery()))
                                   .returning(Rotation.starts_at, Rotation.id))
    return [(row[0], row[1]) for row in result]
