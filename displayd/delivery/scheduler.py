"""The APScheduler 3 side: who leads, and when the next slot boundary runs.

The jobs are bound methods of `SlotScheduler`, held as they are by APScheduler's in-memory
job store (nothing is serialised, so nothing needs a name to be found again):
- `check_leadership` every LEADERSHIP_CHECK_SECONDS: the replica's heartbeat and its fair
  share of the push shards (`displayd.delivery.leader`, `displayd.delivery.shards`); the
  dispatcher takes over the shards gained (their boards' ledgers and health, a boundary at
  once for their present, then their missed slots) and forgets the ones lost. While the
  database does not answer, the shards held stay held (`offline`) and boundaries go on.
- `boundary` at the next instant any board's content changes: the dispatcher gives every
  board what it should show, and the job schedules its own successor; `prepare` plans it
  a moment before. The database
  is the truth: on taking over, and after every change, the boundary is recomputed from
  the snapshot, never carried over.
- `retain` every RETENTION_EVERY_SECONDS, and once RETENTION_AFTER_TAKEOVER after taking the
  primary shard: its leader (one per site) purges the rotation log's detail past `log_retention_days`
  (`displayd.logbook.retention`) in a task of its own, so a purge never delays a boundary.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from displayd.delivery.dispatch import Dispatcher
from displayd.delivery.leader import Change, Leadership
from displayd.delivery.shards import PRIMARY_SHARD
from displayd.logbook import retention
from displayd.metrics import Metrics

log = logging.getLogger("displayd.scheduler")

LEADERSHIP_CHECK_SECONDS = 2.0  # with PostgreSQL noticing a dead leader at once: takeover well within 15 s
BOUNDARY_JOB = "slot-boundary"
PREPARE_JOB = "slot-prepare"
# Plan a boundary this long before it (or twice as long as the last plan took, if more), so
# at the instant only I/O is left: 10,000 boards take a good part of a second to plan.
PREPARE_AHEAD = timedelta(seconds=1)
RETENTION_JOB = "retention"
RETENTION_FIRST_JOB = "retention-first"
RETENTION_EVERY_SECONDS = 600
RETENTION_AFTER_TAKEOVER = timedelta(seconds=30)  # after the take-over's own work (the present, missed slots)
# A purge batch (tens of milliseconds; SQLite has one writer) starts only this long before
# the next boundary or earlier, so the boundary's rows never wait for one.
QUIET_BEFORE_BOUNDARY = timedelta(milliseconds=500)

class SlotScheduler:
    def __init__(self, *, dispatcher: Dispatcher, leadership: Leadership, clock: Callable[[], datetime],
                 metrics: Metrics, retention_days: int = 400) -> None:
        self.name = leadership.name
        self.dispatcher = dispatcher
        self.leadership = leadership
        self.clock = clock
        self.metrics = metrics
        self.leader = False
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self._lock = asyncio.Lock()
        self._busy = asyncio.Lock()  # one boundary at a time
        self._stopping = False
        # Missed-slot windows to write once the present is pushed: (start, end, shards or None for every board).
        self._missed: list[tuple[datetime, datetime, frozenset[int] | None]] = []
        self._backfill: asyncio.Task[int] | None = None
        self.retention_days = retention_days
        self.purging: asyncio.Task[int] | None = None
        self._next_boundary: datetime | None = None

    def start(self) -> None:
        self.dispatcher.shards = self.leadership.held  # none until the first check gains some
        self.scheduler.start()
        self.scheduler.add_job(
            self.check_leadership, IntervalTrigger(seconds=LEADERSHIP_CHECK_SECONDS), id="leadership",
            next_run_time=datetime.now(UTC),
            # A late check is useless once the next is due; one at a time; never queue them up.
            misfire_grace_time=int(LEADERSHIP_CHECK_SECONDS), coalesce=True, max_instances=1,
        )
        self.scheduler.add_job(
            self.retain, IntervalTrigger(seconds=RETENTION_EVERY_SECONDS), id=RETENTION_JOB,
            # A purge that is late is as good as one on time; one run at a time (`retain` also
            # skips while the previous purge task is still deleting).
            misfire_grace_time=None, coalesce=True, max_instances=1,
        )

    async def shutdown(self) -> None:
        self._stopping = True
        self.scheduler.shutdown(wait=False)
        async with self._busy:  # let a boundary under way finish its transaction
            pass
        for task in (self._backfill, self.purging):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self.dispatcher.stop()
        await self.leadership.release()  # the locks, and this replica's row
        self.leader = False

    @property
    def offline(self) -> bool:
        """Leading without the database (it does not answer): pushing from memory."""
        return self.leadership.offline

    async def check_leadership(self) -> None:
        """Every LEADERSHIP_CHECK_SECONDS: the replica's heartbeat and fair share of the shards
        (`displayd.delivery.leader`); the dispatcher takes over the shards gained and drops
        the ones lost. Only applying the change waits for a boundary under way."""
        async with self._lock:
            if self._stopping:
                return
            change = await self.leadership.check()
            if not change.gained and not change.lost:
                return
            async with self._busy:
                if change.lost:
                    self.dispatcher.drop(change.lost)
                if change.gained and not self._stopping:
                    await self._take_over(change)
                if self.leader and not self.leadership.held:
                    self._step_down("it leads no shard any more")

    async def _take_over(self, change: Change) -> None:
        try:
            window = await self.dispatcher.take_over(change.gained)
        except Exception:
            log.exception("taking over %d shards failed; giving them back", len(change.gained))
            await self.leadership.give_up(change.gained)
            self.dispatcher.drop(change.gained)
            return
        if not self.leader:
            self.leader = True
            log.info("this process leads push shards", extra={"event": "leadership", "leader": True,
                                                              "instance": self.name})
        now = self.clock()
        if window is not None:  # the site's missed slots: every board
            self._missed.append((window[0], window[1], None))
        if change.unled_for is not None:  # the slots of a dead replica's boards nobody gave
            unled = timedelta(seconds=change.unled_for + 2 * LEADERSHIP_CHECK_SECONDS)
            self._missed.append((now - unled, now, change.gained))
        self._schedule(now)  # the present, for the boards just gained, at once
        if PRIMARY_SHARD in change.gained:
            self.scheduler.add_job(
                self.retain, DateTrigger(run_date=now + RETENTION_AFTER_TAKEOVER), id=RETENTION_FIRST_JOB,
                replace_existing=True, misfire_grace_time=None, coalesce=True, max_instances=1)

    def _step_down(self, why: str) -> None:
        self.leader = False
        with contextlib.suppress(Exception):
            self.scheduler.remove_job(BOUNDARY_JOB)
        self.dispatcher.given.clear()
        self._next_boundary = None
        if self.purging is not None:
            self.purging.cancel()  # only the primary's leader purges (a batch under way is rolled back)
        log.warning("this process no longer leads push shards: %s", why,
                    extra={"event": "leadership", "leader": False, "instance": self.name})

    async def changed(self) -> None:
        """What boards see changed: bring them up to date now (the leader only)."""
        if self.leader:
            self._schedule(self.clock())

    async def retain(self) -> None:
        """Purge the detail past `retention_days` (the primary shard's leader only: once per
        site), as a task of its own: the
        boundaries go on while it deletes, each batch a short transaction of its own."""
        if (not self.leader or PRIMARY_SHARD not in self.leadership.held or self.leadership.offline
                or self._stopping or (self.purging is not None and not self.purging.done())):
            return
        self.purging = asyncio.create_task(self._purge(), name="displayd-retention")

    async def _purge(self) -> int:
        try:
            return await retention.purge(self.dispatcher.sessionmaker, now=self.clock(),
                                         retention_days=self.retention_days, quiet=self.quiet)
        except Exception:
            log.exception("purging the rotation log failed; the next run tries again")
            return 0

    async def quiet(self) -> None:
        """Return when no boundary is under way and the next is more than QUIET_BEFORE_BOUNDARY away."""
        while True:
            async with self._busy:  # a boundary under way finishes first
                pass
            wait = self._until_quiet()
            if wait <= 0:
                return
            await asyncio.sleep(wait)

    def _until_quiet(self) -> float:
        if self._next_boundary is None:
            return 0.0
        ahead = (self._next_boundary - self.clock()).total_seconds()
        if ahead > QUIET_BEFORE_BOUNDARY.total_seconds():
            return 0.0
        return max(ahead, 0.0) + 0.05  # by then the boundary has begun (and holds `_busy`)

    def _schedule(self, at: datetime) -> None:
        self._next_boundary = at
        self.scheduler.add_job(
            self.boundary, DateTrigger(run_date=at), args=[at], id=BOUNDARY_JOB,
            replace_existing=True,
            # A late boundary still runs, however late: it gives boards what is current *now*
            # (the dispatcher plans at max(at, now)), which beats leaving them stale. Slots it
            # overslept entirely are found by the next take-over as `missed`.
            misfire_grace_time=None,
            # Replaying several overdue boundaries would push stale content: run once.
            coalesce=True,
            # A change can ask for a boundary *now* while one is running; that one must wait,
            # not be dropped (a dropped date job would end the chain of boundaries). So APScheduler
            # may start a second instance, and `boundary` serialises them with a lock.
            max_instances=2,
        )

    async def boundary(self, at: datetime) -> None:
        async with self._busy:
            self._next_boundary = None  # this one; `_boundary` schedules (and notes) the next
            if self.leader and not self._stopping:
                await self._boundary(at)

    async def prepare(self, at: datetime) -> None:
        async with self._busy:
            if self.leader and not self._stopping and self.clock() < at:
                await self.dispatcher.prepare(at)

    async def _boundary(self, at: datetime) -> None:
        self.metrics.slot_lateness.observe(max(0.0, (self.clock() - at).total_seconds()))
        try:
            next_at = await self.dispatcher.sync(at)
        except Exception:
            log.exception("slot boundary %s failed; trying again in 1 s", at.isoformat())
            self._schedule(self.clock() + timedelta(seconds=1))
            return
        if next_at is not None:
            self._schedule(next_at)
            before = max(PREPARE_AHEAD, timedelta(seconds=2 * self.dispatcher.plan_seconds))
            ahead = next_at - min(before, (next_at - self.clock()) / 2)
            self.scheduler.add_job(
                self.prepare, DateTrigger(run_date=ahead), args=[next_at],
                id=PREPARE_JOB, replace_existing=True,
                # Planning late is useless: past the boundary, the boundary plans for itself.
                misfire_grace_time=1, coalesce=True, max_instances=1)
        if self._missed and (self._backfill is None or self._backfill.done()):
            # The present is pushed: now the past can be written down.
            windows, self._missed = self._missed, []
            self._backfill = asyncio.create_task(self._record_missed(windows), name="displayd-missed")

    async def _record_missed(self, windows: list[tuple[datetime, datetime, frozenset[int] | None]]) -> int:
        recorded = 0
        for start, end, shards in windows:
            try:
                recorded += await self.dispatcher.record_missed(start, end, shards)
            except Exception:  # the site's window stays claimed for the next take-over
                log.exception("recording the missed slots between %s and %s failed", start.isoformat(),
                              end.isoformat())
        return recorded
