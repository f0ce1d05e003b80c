"""The process's in-memory world, typed: built once in the lifespan, read by whatever serves.

    runtime = runtime_of(request.app)                    # the one accessor
    async def endpoint(runtime: RuntimeDep) -> ...:      # or as a FastAPI dependency
        runtime.live.snapshot.showing(board_id, runtime.clock())

Everything a process keeps between requests is a field here, so a reader (or mypy) sees from
a signature what a hot path touches: the settings and the clock; the engine and session
maker; the master key, resolved once; the live snapshot (`displayd.live`), the poll
recorder and the hub of open event streams (`displayd.live.stream`); metrics, the failed
sign-in guard and the staff-key cache; the scheduler when this process may lead.
`create_app` builds it in its lifespan and keeps it on `app.state.runtime`; nothing else is
kept on `app.state`, and nothing but `runtime_of` reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from displayd.auth.guard import AuthGuard
from displayd.auth.keys import KeyCache
from displayd.config import Settings
from displayd.live.recorder import PollRecorder
from displayd.live.watch import Live
from displayd.metrics import Metrics

if TYPE_CHECKING:
    from displayd.delivery.scheduler import SlotScheduler
    from displayd.live.snapshot import Snapshot
    from displayd.live.stream import StreamHub  # (it imports the delivery package, which imports this one)

__all__ = ["Clock", "Runtime", "RuntimeDep", "current_runtime", "runtime_of"]

Clock = Callable[[], datetime]


@dataclass(eq=False, slots=True)
class Runtime:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    master: bytes                        # the master key (`displayd.keyring.master_key`), resolved once
    metrics: Metrics
    registry: CollectorRegistry          # this process's /metrics, read at scrape time
    guard: AuthGuard
    key_cache: KeyCache
    live: Live
    polls: PollRecorder
    streams: StreamHub                   # every open event stream, and the task that feeds them
    scheduler: SlotScheduler | None = None  # None where this process may not lead

    @property
    def snapshot(self) -> Snapshot:
        return self.live.snapshot


def runtime_of(app: Starlette) -> Runtime:
    """The app's runtime; only once its lifespan has started."""
    runtime: Runtime | None = getattr(app.state, "runtime", None)
    if runtime is None:
        raise RuntimeError("displayd's lifespan has not started: there is no runtime yet")
    return runtime


def current_runtime(request: Request) -> Runtime:
    return runtime_of(request.app)


RuntimeDep = Annotated[Runtime, Depends(current_runtime)]
