"""`create_app(settings)`: the ASGI application and its lifespan.

The lifespan builds the process's `Runtime` (`displayd.runtime`): the engine, the master
key, the live snapshot that watches for changes made by other processes, the poll recorder,
the hub of open event streams, metrics, the sign-in guard and key cache, and the scheduler when this process may lead.
Handlers reach it through `runtime_of(app)` / `RuntimeDep`, never through `app.state`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from displayd import __version__
from displayd.auth.endpoints import keys_router
from displayd.auth.endpoints import router as audit_router
from displayd.auth.guard import AuthGuard
from displayd.auth.keys import KeyCache
from displayd.boards.bulk import MAX_BODY_BYTES as BULK_BODY_BYTES
from displayd.boards.endpoints import router as boards_router
from displayd.campaigns.endpoints import router as campaigns_router
from displayd.catalog.endpoints import router as slogans_router
from displayd.changes import ChangeListener
from displayd.config import Settings
from displayd.db.session import asyncpg_dsn, create_engine, create_sessionmaker
from displayd.delivery.backlog import Backlog
from displayd.delivery.dispatch import PUSH_CONCURRENCY, Dispatcher
from displayd.delivery.leader import leadership_for
from displayd.delivery.push import Pusher
from displayd.delivery.scheduler import SlotScheduler
from displayd.delivery.transport import make_client
from displayd.emergency.endpoints import router as emergency_router
from displayd.http import BodyLimit, error_response, install_error_handlers
from displayd.keyring import master_key
from displayd.live.poll import PollPath
from displayd.live.recorder import PollRecorder, StreamRecorder
from displayd.live.stream import StreamHub, StreamPath
from displayd.live.watch import Live
from displayd.logbook.endpoints import router as logbook_router
from displayd.logbook.report_endpoints import router as report_router
from displayd.metrics import Metrics, metrics_registry
from displayd.metrics import router as metrics_router
from displayd.runtime import Clock, Runtime, runtime_of
from displayd.schemas import ErrorResponse
from displayd.web import router as web_router
from displayd.web.docs import router as docs_router

log = logging.getLogger("displayd")



def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings, *, clock: Clock = utc_now) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Teardown runs in reverse: scheduler, open streams, background tasks, a last flush, the engine.
        async with contextlib.AsyncExitStack() as stack:
            app.state.runtime = await _start(settings, clock, stack)
            yield

    app = FastAPI(
        title="displayd",
        version=__version__,
        summary="Slogan campaigns on electronic display boards.",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's pages load Swagger UI and ReDoc from a CDN: ours are served offline
        redoc_url=None,
    )
    install_error_handlers(app)
    app.include_router(slogans_router)
    app.include_router(campaigns_router)
    app.include_router(boards_router)
    app.include_router(emergency_router)
    app.include_router(logbook_router)
    app.include_router(report_router)
    app.include_router(audit_router)
    app.include_router(keys_router)
    app.include_router(web_router)
    app.include_router(docs_router)
    app.include_router(metrics_router)
    _add_health(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes,
                       larger={"/api/v1/boards/import": max(BULK_BODY_BYTES, settings.max_body_bytes)})
    app.add_middleware(PollPath, owner=app)  # polls skip everything else
    app.add_middleware(StreamPath, owner=app)  # outermost: a stream holds its frames for as long as it is open
    return app


async def _start(settings: Settings, clock: Clock, stack: contextlib.AsyncExitStack) -> Runtime:
    """Build the process's runtime and start its background work; `stack` undoes it all."""
    master = master_key(settings)  # resolved once: on PostgreSQL without a secret key, start fails here
    engine = create_engine(settings)
    stack.push_async_callback(engine.dispose)
    sessionmaker = create_sessionmaker(engine)
    metrics = Metrics()
    key_cache = KeyCache(sessionmaker, clock)
    live = Live(sessionmaker, poll_seconds=settings.change_poll_seconds, metrics=metrics,
                on_rebuild=key_cache.clear)
    streams = StreamHub(live, clock, StreamRecorder(sessionmaker, clock),
                        per_board=settings.stream_connections_per_board)
    runtime = Runtime(
        settings=settings, clock=clock, engine=engine, sessionmaker=sessionmaker, master=master, metrics=metrics,
        registry=CollectorRegistry(auto_describe=False), guard=AuthGuard(clock, metrics), key_cache=key_cache,
        live=live, polls=PollRecorder(sessionmaker, clock), streams=streams)
    runtime.registry = metrics_registry(runtime)
    await live.refresh()
    stack.callback(live.close)
    stack.push_async_callback(_quietly, runtime.polls.flush)
    stack.push_async_callback(_quietly, streams.recorder.flush)
    stack.push_async_callback(_quietly, key_cache.flush)
    for work, name in [(key_cache.run, "key-use"), (runtime.guard.run, "auth-guard"), (runtime.polls.run, "polls"),
                       (streams.recorder.run, "stream-log")]:
        stack.push_async_callback(_cancel, asyncio.create_task(work(), name=f"displayd-{name}"))
    live.listeners.append(streams.changed)  # first: a change reaches open streams before anything else is done
    streams.start()
    stack.push_async_callback(streams.close)
    # On PostgreSQL another process's change arrives as a notification within milliseconds;
    # the version row is still compared every change_poll_seconds, there and on SQLite.
    listener = None if settings.is_sqlite else ChangeListener(asyncpg_dsn(settings.database_url))
    stack.push_async_callback(_cancel, asyncio.create_task(live.watch(listener), name="displayd-changes"))
    if settings.scheduler_enabled:
        client = make_client(networks=settings.board_networks(), max_connections=PUSH_CONCURRENCY)
        stack.push_async_callback(client.aclose)
        # Boards (and an inspector reading their logs) can tell which process pushed.
        user_agent = f"displayd/{__version__} ({socket.gethostname()}:{os.getpid()})"
        pusher = Pusher(client, attempt_timeout=settings.push_timeout_seconds, user_agent=user_agent)
        dispatcher = Dispatcher(live=live, metrics=metrics, sessionmaker=sessionmaker, clock=clock, master=master,
                                pusher=pusher, name="", backlog=Backlog(settings.outage_backlog_rows))
        scheduler = SlotScheduler(dispatcher=dispatcher, leadership=leadership_for(settings), clock=clock,
                                  metrics=metrics, retention_days=settings.log_retention_days)
        dispatcher.name = scheduler.name
        live.listeners.append(streams.then(scheduler.changed))  # after the streams' own pass
        scheduler.start()
        stack.push_async_callback(scheduler.shutdown)
        runtime.scheduler = scheduler
    return runtime


async def _cancel(task: asyncio.Task[None]) -> None:
    """Cancel a background task and wait for it to end. Cancelled again every second while
    it runs on: a cancellation swallowed on its way (a library's race) must not keep the
    process from stopping."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    if not task.cancelled() and task.exception() is not None:
        log.warning("background task %s ended with %r", task.get_name(), task.exception())


async def _quietly(work: Callable[[], Awaitable[None]]) -> None:
    try:
        await work()
    except Exception as exc:
        log.warning("final flush failed: %s", exc)


def _add_health(app: FastAPI) -> None:
    @app.get("/healthz", tags=["health"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="The database answers",
             responses={503: {"model": ErrorResponse, "description": "The database does not answer."}})
    async def readyz() -> Any:
        try:
            async with runtime_of(app).engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:
            log.warning("readiness check failed: %s", exc)
            return error_response(503, "unavailable", "the database does not answer")
        return JSONResponse({"status": "ready"})


_ERROR_RESPONSES = {
    "401": "No API key, or one that is not valid.",
    "403": "The key's role may not do this.",
    "404": "No such resource.",
    "409": "The request conflicts with the resource's state.",
    "413": "The request body is over the size limit.",
    "422": "The request is not valid; `detail` says why.",
    "429": "Too many failed sign-ins from this address within a minute (`too_many_failures`); see `Retry-After`.",
}


def _openapi(app: FastAPI) -> dict[str, Any]:
    """OpenAPI with our error body in place of FastAPI's validation-error schemas."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, summary=app.summary,
                         description="All times are UTC (ISO 8601 with `Z`). Errors are "
                                     "`{\"error\", \"detail\"}`.", routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["ErrorResponse"] = ErrorResponse.model_json_schema()
    error_ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            # API routes can fail every way; others only where FastAPI documented a 422.
            codes = _ERROR_RESPONSES if path.startswith("/api/") else [c for c in responses if c in _ERROR_RESPONSES]
            for code in codes:
                responses[code] = {"description": _ERROR_RESPONSES[code], **error_ref}
    schema["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer",
                   "description": "A staff API key, or a board's token for its own `/current`."}
    }
    schema["security"] = [{"bearer": []}]
    app.openapi_schema = schema
    return schema
