"""A board's event stream (`/api/v1/boards/{id}/events`) opened on an app in this process.

    async with EventStream(app, "/api/v1/boards/bang-a/events", token="bt_…") as stream:
        assert stream.status == 200
        event = await stream.next()           # Event(type="show", id="bang-a:1:17280:0", data={…})

The request goes through the app's whole ASGI stack, as a server would send it, and the test
sees each chunk the app writes: httpx's ASGI transport waits for a response to end, which a
stream never does. `receive()` behaves as uvicorn's: the request, then `http.disconnect` once
the board goes (`close()`) or the response is complete; `send()` after that is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from starlette.types import ASGIApp, Message


@dataclass(frozen=True)
class Event:
    type: str | None  # None for a comment line
    id: str | None
    data: dict[str, Any] | None
    comment: str | None = None


class EventStream:
    def __init__(self, app: ASGIApp, path: str, *, token: str | None = None, query: str = "",
                 headers: dict[str, str] | None = None, block_writes: bool = False) -> None:
        self.app = app
        self.path = path
        self.query = query
        self.request_headers = dict(headers or {})
        if token is not None:
            self.request_headers["Authorization"] = f"Bearer {token}"
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.body = b""  # an error answer's body
        self.ended = False  # the app wrote the response's last chunk
        self.task: asyncio.Task[None] | None = None
        self._chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._started = asyncio.Event()
        self._gone = asyncio.Event()  # the board went, or the response is complete
        self._asked = False
        self._buffer = b""
        self._block = asyncio.Event() if block_writes else None  # a board that stopped reading (until `unblock`)

    async def __aenter__(self) -> EventStream:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": self.path, "raw_path": self.path.encode(),
                 "query_string": self.query.encode(), "root_path": "", "server": ("displayd.test", 80),
                 "client": ("127.0.0.1", 40000),
                 "headers": [(k.lower().encode(), v.encode()) for k, v in self.request_headers.items()]}
        self.task = asyncio.ensure_future(self.app(scope, self._receive, self._send))
        waiter = asyncio.create_task(self._started.wait())
        await asyncio.wait({waiter, self.task}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        assert self._started.is_set(), "the app answered nothing"
        if self.status != 200:
            await asyncio.wait_for(self.task, 5)
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        """The board goes away; the app's call must end."""
        self._gone.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 5)

    async def _receive(self) -> Message:
        if not self._asked:
            self._asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        if self._gone.is_set():
            return
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {k.decode(): v.decode() for k, v in message["headers"]}
            self._started.set()
            return
        if self._block is not None:
            await self._block.wait()
        if self.status != 200:
            self.body += message.get("body", b"")
        elif message.get("body"):
            await self._chunks.put(message["body"])
        if not message.get("more_body", False):
            self.ended = True
            await self._chunks.put(None)
            self._gone.set()

    def unblock(self) -> None:
        """The board reads again: writes waiting (`block_writes`) go through."""
        assert self._block is not None
        self._block.set()

    def json(self) -> Any:
        return json.loads(self.body)

    async def next(self, within: float = 2.0, *, comments: bool = False) -> Event:
        """The next event (comments skipped unless `comments`); fails after `within` seconds."""
        async with asyncio.timeout(within):
            while True:
                while b"\n\n" in self._buffer:
                    block, self._buffer = self._buffer.split(b"\n\n", 1)
                    event = _parse(block.decode())
                    if event.type is not None or comments:
                        return event
                chunk = await self._chunks.get()
                if chunk is None:
                    raise AssertionError(f"the stream ended ({self._buffer!r} left)")
                self._buffer += chunk

    async def nothing(self, wait: float = 0.2) -> None:
        """No event arrives within `wait` seconds (comments aside)."""
        with contextlib.suppress(TimeoutError):
            event = await self.next(wait)
            raise AssertionError(f"unexpected event {event}")

    async def end(self, within: float = 2.0) -> None:
        """The app ends the response (events before it are skipped)."""
        async with asyncio.timeout(within):
            while await self._chunks.get() is not None:
                pass
        assert self.ended


def _parse(block: str) -> Event:
    fields: dict[str, str] = {}
    comment = None
    for line in block.split("\n"):
        if line.startswith(":"):
            comment = line[1:].strip()
            continue
        name, _, value = line.partition(":")
        assert name not in fields, f"field {name} twice in one event: data must be one line"
        fields[name] = value.removeprefix(" ")
    if not fields:
        return Event(None, None, None, comment)
    return Event(fields.get("event"), fields.get("id"), json.loads(fields["data"]) if "data" in fields else None)
