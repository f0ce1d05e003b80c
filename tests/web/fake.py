"""A stand-in for displayd's board side, on loopback, for the web player's browser tests.

    async with FakeDisplayd() as fake:           # uvicorn in the test's event loop
        await page.goto(fake.play_url)
        await fake.wait_for_streams(1)
        fake.send(show(slot(1, 7, start, end), ["Dòng một"]))

It serves the real player page (displayd's template, script, styles and fonts) next to a
`/events` stream and a `/current` poll that the test drives by hand, so a test decides what
arrives when: content sent ahead, revisions, a stream that is missing (`stream_status = 404`),
displayd going away (`down = True`: every API answer 503, open streams closed). The same
origin matters: the player's CSP lets it talk to its own origin only.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from displayd.web import pages
from displayd.web.render import page

BOARD = "man-hinh-thu"
TOKEN = "bt_fake-board-token"


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def slot(campaign_id: int, index: int, starts_at: datetime, ends_at: datetime) -> dict[str, Any]:
    return {"campaign_id": campaign_id, "index": index, "starts_at": iso(starts_at), "ends_at": iso(ends_at)}


def content(lines: list[str], *more_pages: list[str]) -> dict[str, Any]:
    text = " ".join(lines)
    return {"slogan_id": zlib.crc32(text.encode()) % 1000, "text": text, "pages": [lines, *more_pages],
            "charset": "utf-8"}


def content_hash(body: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def show(the_slot: dict[str, Any], lines: list[str], revision: int = 0, *,
         valid_until: str | None = None) -> dict[str, Any]:
    """A `show` as displayd pushes and streams it."""
    body = content(lines)
    return {"type": "show", "board_id": BOARD, "slot": the_slot, "revision": revision, "content": body,
            "content_hash": content_hash(body), "valid_until": valid_until or the_slot["ends_at"]}


def blank(the_slot: dict[str, Any] | None, revision: int = 0, until: str | None = None) -> dict[str, Any]:
    """A blank revision of `the_slot`, or (None) the board going idle."""
    if the_slot is None:
        return {"type": "blank", "board_id": BOARD, "until": until}
    return {"type": "blank", "board_id": BOARD, "slot": the_slot, "revision": revision,
            "until": until or the_slot["ends_at"]}


def current(showing: dict[str, Any] | None, following: dict[str, Any] | None = None) -> dict[str, Any]:
    """A `/current` document from `show` documents: what shows now (None: idle) and `next`."""
    nxt = None if following is None else {k: following[k] for k in ("slot", "content", "content_hash")}
    if showing is None:
        return {"board_id": BOARD, "state": "idle", "slot": None, "content": None, "content_hash": None,
                "valid_until": None, "next": nxt}
    return {"board_id": BOARD, "state": "showing", "slot": showing["slot"], "content": showing["content"],
            "content_hash": showing["content_hash"], "valid_until": showing["valid_until"], "next": nxt}


def event_id(document: dict[str, Any]) -> str:
    the_slot = document.get("slot") or {"campaign_id": 0, "index": 0}
    return f"{BOARD}:{the_slot['campaign_id']}:{the_slot['index']}:{document.get('revision', 0)}"


def _listening() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


@dataclass
class Poll:
    """One `/current` request as the fake saw it."""

    at: datetime
    if_none_match: str | None
    status: int


@dataclass
class FakeDisplayd:
    stream_status: int = 200
    down: bool = False
    document: dict[str, Any] = field(default_factory=lambda: current(None))
    max_age: int = 30
    answer_delay: float = 0.0  # seconds /current takes to answer
    later: tuple[datetime, dict[str, Any]] | None = None  # `document` from then on
    polls: list[Poll] = field(default_factory=list)
    stream_requests: list[str | None] = field(default_factory=list)  # each one's Last-Event-ID
    _socket: socket.socket = field(default_factory=_listening)
    _streams: list[asyncio.Queue[bytes | None]] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def play_url(self) -> str:
        return f"{self.url}/play/{BOARD}?token={TOKEN}"

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(json.dumps(self.document, sort_keys=True).encode()).hexdigest()[:20] + '"'

    def send(self, document: dict[str, Any]) -> None:
        """One event to every open stream, framed as displayd frames it."""
        frame = (f"event: {document['type']}\nid: {event_id(document)}\n"
                 f"data: {json.dumps(document, ensure_ascii=False)}\n\n").encode()
        for queue in self._streams:
            queue.put_nowait(frame)

    def close_streams(self) -> None:
        for queue in self._streams:
            queue.put_nowait(None)

    def go_down(self) -> None:
        self.down = True
        self.close_streams()

    async def wait_for_streams(self, count: int, seconds: float = 10) -> None:
        await self._until(lambda: self.open_streams >= count, seconds)

    async def wait_for_polls(self, count: int, seconds: float = 15) -> None:
        await self._until(lambda: len(self.polls) >= count, seconds)

    async def _until(self, done: Callable[[], bool], seconds: float) -> None:
        async with asyncio.timeout(seconds):
            while not done():
                self._changed.clear()  # no await since done(): no change can slip between
                await self._changed.wait()

    # -- the endpoints --

    async def _play(self, request: Request) -> Response:
        return page("player.html", title="Màn hình thử", body_class="player", stylesheet="player.css",
                    board_id=request.path_params["board_id"])

    async def _asset(self, request: Request) -> Response:
        return await pages.asset(request.path_params["name"])

    async def _healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"}, status_code=503 if self.down else 200)

    def _refused(self, status: int) -> Response:
        return JSONResponse({"error": "unavailable" if status == 503 else "not_found", "detail": "fake"},
                            status_code=status)

    async def _events(self, request: Request) -> Response:
        self.stream_requests.append(request.headers.get("last-event-id"))
        if self.down:
            return self._refused(503)
        if request.path_params["board_id"] != BOARD or request.query_params.get("token") != TOKEN:
            return self._refused(404)
        if self.stream_status != 200:
            return self._refused(self.stream_status)
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._streams.append(queue)
        self._changed.set()

        async def frames() -> AsyncIterator[bytes]:
            try:
                yield b": connected\n\n"
                while (frame := await queue.get()) is not None:
                    yield frame
            finally:
                self._streams.remove(queue)
                self._changed.set()

        return StreamingResponse(frames(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    async def _current(self, request: Request) -> Response:
        if self.down:
            return self._refused(503)
        if request.headers.get("authorization") != f"Bearer {TOKEN}" or request.path_params["board_id"] != BOARD:
            return self._refused(404)
        at = datetime.now(UTC)
        if self.later is not None and at >= self.later[0]:
            self.document, self.later = self.later[1], None
        await asyncio.sleep(self.answer_delay)
        headers = {"ETag": self.etag, "Cache-Control": f"max-age={self.max_age}"}
        tag = request.headers.get("if-none-match")
        status = 304 if tag == self.etag else 200
        self.polls.append(Poll(at, tag, status))
        self._changed.set()
        if status == 304:
            return Response(status_code=304, headers=headers)
        return JSONResponse(self.document, headers=headers)

    # -- running --

    async def __aenter__(self) -> FakeDisplayd:
        app = Starlette(routes=[
            Route("/play/{board_id}", self._play),
            Route("/ui/static/{name}", self._asset),
            Route("/healthz", self._healthz),
            Route("/api/v1/boards/{board_id}/events", self._events),
            Route("/api/v1/boards/{board_id}/current", self._current),
        ])
        config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        # The socket listens already: the browser's first request waits in its backlog.
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close_streams()
        assert self._server is not None and self._task is not None
        self._server.should_exit = True
        await self._task
        self._socket.close()
