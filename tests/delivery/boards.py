"""Fake display boards on a real loopback socket, for push tests (here and in the scheduler's tests).

    async with FakeBoards() as boards:
        url = boards.url("ok", "so-sanh-chinh")                 # 200, records what it got
        slow = boards.url("hang", "b-hang")                     # accepts, reads, never answers
        moved = boards.url(Status(302, location=boards.url("ok", "target")), "b-302")
        ...
        boards.received("so-sanh-chinh")                        # [Received(headers, body), ...]
        boards.hits("target")                                   # 0: redirects are never followed

Every board is a path (`/<board_id>`) on one server; its behaviour is chosen when its URL is made:
`"ok"`, `Ok(content_hash=..., status=204)`, `"hang"`, `"drip"` (a valid status line, then one byte a
second), `"reset"` (RST via SO_LINGER 0), `"error500"`, `Status(code, location=...)`, `Flaky(n)` (500
for the first n requests, then 200). Unknown paths get 404. Every request is recorded before the
behaviour runs, so a board that hangs or resets still shows the hit. `connections` counts accepted
TCP connections: 0 proves nothing reached the server at all.

A minimal HTTP/1.1 server (Content-Length bodies, keep-alive) on `asyncio.start_server`, so faults
can be made at the socket level; leaving the `async with` closes every connection and task.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import time
from dataclasses import dataclass, field
from types import TracebackType

__all__ = ["Drip", "FakeBoards", "Flaky", "Hang", "Ok", "Received", "Reset", "Status"]

REASONS = {200: "OK", 204: "No Content", 302: "Found", 404: "Not Found", 408: "Request Timeout",
           429: "Too Many Requests", 500: "Internal Server Error"}


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float = 0.0  # when it was read (time.time()): whether a slot arrived on time


@dataclass(frozen=True)
class Ok:
    status: int = 200
    content_hash: str | None = None  # answered as {"content_hash": ...} when set


@dataclass(frozen=True)
class Hang:
    pass


@dataclass(frozen=True)
class Drip:
    interval: float = 1.0
    length: int = 1000  # the Content-Length announced; bytes then come one per interval


@dataclass(frozen=True)
class Reset:
    pass


@dataclass(frozen=True)
class Status:
    code: int
    location: str | None = None


@dataclass
class Flaky:
    failures: int
    seen: int = field(default=0, compare=False)


Behaviour = Ok | Hang | Drip | Reset | Status | Flaky
SHORTHANDS: dict[str, Behaviour] = {"ok": Ok(), "hang": Hang(), "drip": Drip(), "reset": Reset(),
                                    "error500": Status(500)}


class FakeBoards:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.connections = 0
        self._boards: dict[str, Behaviour] = {}
        self._received: dict[str, list[Received]] = {}
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._closing = asyncio.Event()

    async def __aenter__(self) -> FakeBoards:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._closing.set()  # hang and drip return, so their connections close
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def url(self, behaviour: Behaviour | str, board_id: str) -> str:
        """Register `board_id` with a behaviour and return its push URL."""
        self._boards[board_id] = SHORTHANDS[behaviour] if isinstance(behaviour, str) else behaviour
        self._received.setdefault(board_id, [])
        return f"http://{self.host}:{self.port}/{board_id}"

    def received(self, board_id: str) -> list[Received]:
        return list(self._received.get(board_id, []))

    def hits(self, board_id: str) -> int:
        return len(self._received.get(board_id, []))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self.connections += 1
        try:
            while not self._closing.is_set():
                request = await _read_request(reader)
                if request is None:
                    return
                board_id = request.path.lstrip("/").split("?", 1)[0]
                behaviour = self._boards.get(board_id)
                if behaviour is None:
                    await _answer(writer, 404)
                    continue
                self._received[board_id].append(request)
                if not await self._behave(behaviour, reader, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self._tasks.discard(task)

    async def _behave(self, behaviour: Behaviour, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must end."""
        match behaviour:
            case Ok(status=status, content_hash=content_hash):
                body = json.dumps({"content_hash": content_hash}).encode() if content_hash is not None else b""
                await _answer(writer, status, body if status != 204 else b"")
            case Status(code=code, location=location):
                await _answer(writer, code, b"", {"Location": location} if location else {})
            case Flaky():
                behaviour.seen += 1
                await _answer(writer, 500 if behaviour.seen <= behaviour.failures else 200)
            case Hang():
                await self._closing.wait()
                return False
            case Drip(interval=interval, length=length):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % length)
                while not self._closing.is_set() and not reader.at_eof():
                    writer.write(b" ")
                    await writer.drain()  # raises once the client has gone, which ends the drip
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._closing.wait(), interval)
                return False
            case Reset():
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return False
        return True


async def _read_request(reader: asyncio.StreamReader) -> Received | None:
    line = await reader.readline()
    if not line:
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Received(method, path, headers, body, time.time())


async def _answer(writer: asyncio.StreamWriter, status: int, body: bytes = b"",
                  extra: dict[str, str] | None = None) -> None:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
    lines += [f"{name}: {value}" for name, value in (extra or {}).items()]
    if body:
        lines.append("Content-Type: application/json")
    if status != 204:
        lines.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()
