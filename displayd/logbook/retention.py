"""Retention of the rotation log's detail: rows of local days older than `log_retention_days`
are deleted, in small batches, by the scheduler leader (`SlotScheduler.retain`).

    deleted = await purge(sessionmaker, now=clock(), retention_days=400)

What a report needs of those days stays in `daily_total`, which a purge never lowers (there
is no DELETE trigger). The horizon `scheduler_state.purged_before` moves forward first, in a
transaction of its own, and only then are rows deleted: from that commit on, reports read
the days before it from the totals, so a report never counts a day twice or half.

Each batch is its own short transaction, with a pause after it, so the slot path's writes
(one SQLite writer at a time) wait at most one batch; the leader also holds each batch back
while a slot boundary is near or under way (`SlotScheduler.quiet`), so a slot's first rows
never wait for one. Integrity incidents and issued content
are not purged: they are few, and they are the evidence of an incident.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import any_, delete, func, select, tuple_, update
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
                batch: int = BATCH, pause: float = PAUSE,
                quiet: Callable[[], Awaitable[None]] | None = None) -> int:
    """Move the horizon to (now − retention_days)'s date if that is later, then delete the
    rows of local days before it; how many rows were deleted. `quiet` is awaited before each
    batch: the scheduler's way of keeping batches away from its slot boundaries."""
    async with sessionmaker() as session, session.begin():
        horizon = await _advance_horizon(session, (now - timedelta(days=retention_days)).date())
    deleted = 0
    bound = datetime.combine(horizon, time(), tzinfo=UTC) + MAX_AHEAD_OF_UTC
    after: tuple[datetime, int] | None = None
    while True:
        if quiet is not None:
            await quiet()
        async with sessionmaker() as session, session.begin():
            count, after = await _delete_batch(session, horizon, bound, after, batch)
        deleted += count
        if count < batch:
            break
        await asyncio.sleep(pause)
    log.info("purged %d rotation rows of local days before %s", deleted, horizon,
             extra={"event": "retention", "count": deleted, "purged_before": str(horizon)})
    return deleted


async def _advance_horizon(session: AsyncSession, wanted: date) -> date:
    """The horizon after this run: `wanted`, or the one already set if it is later (a shorter
    retention setting never brings back what is gone, and a longer one cannot)."""
    current = await session.scalar(select(SchedulerState.purged_before).where(SchedulerState.id == 1))
    if current is not None and current >= wanted:
        return current
    await session.execute(update(SchedulerState).where(SchedulerState.id == 1).values(purged_before=wanted))
    return wanted


async def _delete_batch(session: AsyncSession, horizon: date, bound: datetime, after: tuple[datetime, int] | None,
                        size: int) -> tuple[int, tuple[datetime, int] | None]:
    """Delete the next `size` rows of days before the horizon, in (starts_at, id) order;
    (how many, where the next batch starts). One statement, and nothing but a count comes
    back: the event loop, which runs the slot boundaries too, does no work per row."""
    ids = (select(Rotation.id).where(Rotation.starts_at < bound, Rotation.local_day < horizon)
           .order_by(Rotation.starts_at, Rotation.id).limit(size))
    if _dialect(session) != "postgresql":
        # SQLite frees a deleted row's index entries at once: each batch may start from the top.
        result = await session.execute(delete(Rotation).where(Rotation.id.in_(ids.scalar_subquery())))
        return int(getattr(result, "rowcount", 0) or 0), None
    # PostgreSQL leaves dead index entries until vacuum, so each batch starts where the last
    # ended (keyset on the index's order). `= ANY(ARRAY(…))`: with `IN (SELECT …)` the planner
    # hash-joins the batch against a sequential scan of the whole log, every batch.
    if after is not None:
        ids = ids.where(tuple_(Rotation.starts_at, Rotation.id) > tuple_(*after))
    gone = delete(Rotation).where(Rotation.id == any_(func.array(ids.scalar_subquery()))) \
        .returning(Rotation.starts_at, Rotation.id).cte("gone")
    last = (await session.execute(select(func.count().over(), gone.c.starts_at, gone.c.id)
                                  .order_by(gone.c.starts_at.desc(), gone.c.id.desc()).limit(1))).first()
    return (0, after) if last is None else (int(last[0]), (last[1], last[2]))


def _dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else "sqlite"
