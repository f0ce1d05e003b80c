"""`create_app(settings)`: the ASGI application and its lifespan.

The lifespan opens the database engine, loads the board snapshot and watches for changes
made by other processes. Everything a process keeps in memory lives on `app.state`: the
settings, the session factory, the clock, the staff-key cache, the snapshot, last polls.
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
from sqlalchemy import text

from displayd import __version__
from displayd.auth.endpoints import router as audit_router
from displayd.boards.bulk import MAX_BODY_BYTES as BULK_BODY_BYTES
from displayd.boards.endpoints import router as boards_router
from displayd.boards.poll import PollPath
from displayd.campaigns.endpoints import router as campaigns_router
from displayd.catalog.endpoints import router as slogans_router
from displayd.config import Settings
from displayd.db.session import create_engine, create_sessionmaker
from displayd.delivery.dispatch import PUSH_CONCURRENCY, Dispatcher
from displayd.delivery.leader import leadership_for
from displayd.delivery.push import Pusher
from displayd.delivery.scheduler import SlotScheduler
from displayd.delivery.transport import make_client
from displayd.http import BodyLimit, error_response, install_error_handlers
from displayd.keyring import master_key
from displayd.live import Live
from displayd.logbook.endpoints import router as logbook_router
from displayd.logbook.polls import PollRecorder
from displayd.metrics import install as install_metrics
from displayd.metrics import router as metrics_router
from displayd.schemas import ErrorResponse
from displayd.web import router as web_router

log = logging.getLogger("displayd")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings, *, clock: Clock = utc_now) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Teardown runs in reverse: scheduler, background tasks, a last flush, the engine.
        async with contextlib.AsyncExitStack() as stack:
            engine = create_engine(settings)
            stack.push_async_callback(engine.dispose)
            app.state.engine = engine
            app.state.sessionmaker = sessionmaker = create_sessionmaker(engine)
            app.state.polls = polls = PollRecorder(sessionmaker, clock)
            live = Live(app.state, sessionmaker, settings.change_poll_seconds)
            await live.refresh()
            app.state.on_change = live.refresh
            stack.push_async_callback(_quietly, polls.flush)
            stack.push_async_callback(_cancel, asyncio.create_task(polls.run(), name="displayd-polls"))
            stack.push_async_callback(_cancel, asyncio.create_task(live.watch(), name="displayd-changes"))
            app.state.scheduler = None
            if settings.scheduler_enabled:
                client = make_client(networks=settings.board_networks(), max_connections=PUSH_CONCURRENCY)
                stack.push_async_callback(client.aclose)
                # Boards (and an inspector reading their logs) can tell which process pushed.
                user_agent = f"displayd/{__version__} ({socket.gethostname()}:{os.getpid()})"
                pusher = Pusher(client, attempt_timeout=settings.push_timeout_seconds, user_agent=user_agent)
                dispatcher = Dispatcher(state=app.state, sessionmaker=sessionmaker, clock=clock,
                                        master=master_key(settings), pusher=pusher, name="")
                scheduler = SlotScheduler(dispatcher=dispatcher, leadership=leadership_for(settings), clock=clock,
                                          metrics=app.state.metrics, retention_days=settings.log_retention_days)
                dispatcher.name = scheduler.name
                live.listeners.append(scheduler.changed)
                scheduler.start()
                stack.push_async_callback(scheduler.shutdown)
                app.state.scheduler = scheduler
            yield

    app = FastAPI(
        title="displayd",
        version=__version__,
        summary="Slogan campaigns on electronic display boards.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.clock = clock
    app.state.key_cache = {}
    install_metrics(app.state)  # before the routes and the poll path, which count into it
    install_error_handlers(app)
    app.include_router(slogans_router)
    app.include_router(campaigns_router)
    app.include_router(boards_router)
    app.include_router(logbook_router)
    app.include_router(audit_router)
    app.include_router(web_router)
    app.include_router(metrics_router)
    _add_health(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes,
                       larger={"/api/v1/boards/import": max(BULK_BODY_BYTES, settings.max_body_bytes)})
    app.add_middleware(PollPath, state=app.state)  # outermost: polls skip everything else
    return app


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


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
            async with app.state.engine.connect() as connection:
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
