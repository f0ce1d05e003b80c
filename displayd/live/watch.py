"""Keeping a process's snapshot in step with the database.

`Live.refresh()` rebuilds the snapshot now (after this process's own change commits);
`Live.watch()` runs for the process's lifetime and rebuilds it when another process moved
the change version. Rebuilds are serialised, so a burst of changes costs one or two.
Listeners (the scheduler leader) hear of every rebuild. Each rebuild also empties the staff
key cache (`on_rebuild`, called before the new snapshot is read): a revocation moves the
change version, so a revoked key stops working here within `change_poll_seconds`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from displayd import changes
from displayd.live import snapshot as snapshots
from displayd.live.snapshot import Snapshot
from displayd.metrics import Metrics

log = logging.getLogger("displayd.live")

GC_FREEZE_EVERY = 60.0  # seconds: the most often a full collection runs (`_collect_later`)
GC_DELAY = 2.0  # seconds after a rebuild, at the soonest
GC_GROWN_EVERY = 10.0  # seconds: the most often the heap's growth (streams opening) brings one (`heap_grew`)


class Live:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, poll_seconds: float, metrics: Metrics,
                 on_rebuild: Callable[[], None] | None = None) -> None:
        self.sessionmaker = sessionmaker
        self.poll_seconds = poll_seconds
        self.metrics = metrics
        self.on_rebuild = on_rebuild
        self.snapshot = Snapshot.empty()  # until the first refresh, which the lifespan awaits
        self.listeners: list[Callable[[], Awaitable[None]]] = []
        self._lock = asyncio.Lock()
        self._frozen_at = -GC_FREEZE_EVERY
        self._collecting: asyncio.TimerHandle | None = None
        self._closed = False

    async def refresh(self) -> None:
        async with self._lock:
            if self.on_rebuild is not None:
                self.on_rebuild()
            async with self.sessionmaker() as session:
                self.snapshot = await snapshots.load(session, on_error=self._count_plan_error,
                                                     previous=self.snapshot)
            if self._frozen_at < 0:  # the first snapshot, as the process starts: nobody waits yet
                self._collect()
        for listener in self.listeners:
            await listener()
        self._collect_later()

    def heap_grew(self) -> None:
        """Many long-lived objects were made since the last freeze (thousands of event streams
        opened): collect and freeze them soon, at most once every GC_GROWN_EVERY seconds.
        Otherwise the collector's own full collections walk every open stream's objects each
        time (~250 ms with 5,000 streams, every few slots), and one landing on a change's way
        to the boards doubles the time its revision takes."""
        self._collect_later(every=GC_GROWN_EVERY)

    def _collect_later(self, every: float = GC_FREEZE_EVERY) -> None:
        """The snapshot lives until the next change: move it (and everything else long-lived)
        out of the collector's sight, so full collections at a slot boundary stay short.
        (Unfreeze first, so earlier snapshots' cycles can still be collected.) A full
        collection costs tens to hundreds of milliseconds with thousands of open streams, so a
        burst of changes pays it at most once every GC_FREEZE_EVERY seconds, and never on a
        change's way to the boards: it runs GC_DELAY seconds after the rebuild, once the
        listeners (the open streams, the scheduler's revisions) have had their turn (the first
        snapshot's collection runs in `refresh`, at start)."""
        if self._frozen_at < 0 or self._closed:
            return
        loop = asyncio.get_running_loop()
        at = loop.time() + max(GC_DELAY, self._frozen_at + every - time.monotonic())
        if self._collecting is not None:
            if self._collecting.when() <= at:  # one comes soon enough already
                return
            self._collecting.cancel()  # (a change's, a minute after the last: growth asks for it sooner)
        self._collecting = loop.call_at(at, self._collect)

    def close(self) -> None:
        """The process stops: no collection is left scheduled (an event loop may outlive it)."""
        if self._collecting is not None:
            self._collecting.cancel()
            self._collecting = None
        self._closed = True  # nor by a refresh still under way

    def _collect(self) -> None:
        self._collecting = None
        self._frozen_at = time.monotonic()
        gc.unfreeze()
        gc.collect()
        gc.freeze()

    def _count_plan_error(self) -> None:
        self.metrics.plan_errors += 1

    async def watch(self, listener: changes.ChangeListener | None = None) -> None:
        """Rebuild when another process moved the change version: at once when `listener`
        hears of it (PostgreSQL), and in any case within `poll_seconds`."""
        try:
            while True:
                if listener is None:
                    await asyncio.sleep(self.poll_seconds)
                else:
                    await listener.wait(self.poll_seconds)
                await self._check()
        finally:
            if listener is not None:
                await listener.close()

    async def _check(self) -> None:
        try:
            async with self.sessionmaker() as session:
                version = await changes.current_version(session)
            if version != self.snapshot.version:
                await self.refresh()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("could not check for changes: %s", exc)
