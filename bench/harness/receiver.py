"""Fake boards on loopback: one asyncio server in a child process of its own, three behaviours.

    child, base = start_receiver(run, "fast")                        # 204 to every push, a new connection each
    child, base = start_receiver(run, "faulty", "--secret", secret)  # /ok/<i> /hang/<i> /drip/<i> /reset/<i> …
    child, base = start_receiver(run, "recording")                   # 200, keep-alive; GET /dump lists arrivals

- `fast` answers `204` at once, with `Connection: close` unless `--keepalive`: each board is a
  host of its own in production and gets one push per slot, so nothing is reused within a slot.
- `faulty`: the path names the behaviour. `ok` checks the Standard Webhooks signature with
  `--secret` (an independent check, not displayd's code) and answers 204, or 401; `hang` reads
  the request and never answers; `drip` sends a status line and headers, then one body byte a
  second; `reset` answers with a TCP RST (SO_LINGER 0); `error500` answers 500. Always closes.
- `recording` answers 200 to every POST and keeps the arrival time (`time.time()` when the
  request's last bytes were read), the path, the webhook-id, the user-agent and the body;
  `GET /dump` returns them as JSON lines, with the document's `type`, `slot.starts_at` and
  `slot.index`; `GET /senders?since=<time.time()>` counts the pushes that arrived since then by
  user-agent (which displayd process sent them: its pid is in the header), without the dump.

Every behaviour answers `GET /stats` with its counters as JSON (the readiness check too). The
server runs on uvloop when it is installed, in its own process so it shares no event loop or
CPU accounting with what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import signal
import socket
import struct
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import httpx

from bench.harness.processes import LOOPBACK, BenchError, Child, free_port, module_argv, python_env, wait_ready
from bench.harness.running import Run

FAULTS = ("hang", "drip", "reset", "error500")


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Whether `webhook-signature` holds a v1 HMAC-SHA256 of "{id}.{timestamp}.{body}" under `secret`."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers.get('webhook-id', '')}.{headers.get('webhook-timestamp', '')}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, given) for given in headers.get("webhook-signature", "").split())


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    arrival: float


def _answer(status: str, body: bytes = b"", *, close: bool, kind: bytes = b"application/json") -> bytes:
    head = f"HTTP/1.1 {status}\r\n".encode()
    if body:
        head += b"Content-Type: %s\r\nContent-Length: %d\r\n" % (kind, len(body))
    elif not status.startswith("204"):
        head += b"Content-Length: 0\r\n"
    return head + (b"Connection: close\r\n" if close else b"") + b"\r\n" + body


class Connection(asyncio.Protocol):
    """HTTP/1.1 framing (Content-Length bodies, pipelining); each complete request goes to `boards.handle`."""

    def __init__(self, boards: Boards) -> None:
        self.boards = boards
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.done = False  # no more requests read on this connection
        self.dripping: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def connection_lost(self, exc: Exception | None) -> None:
        if self.dripping is not None:
            self.dripping.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        arrival = time.time()
        self.buffer += data
        while not self.done and (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            lines = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {name.strip().lower(): value.strip()
                       for name, _, value in (line.partition(":") for line in lines[1:])}
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            body, self.buffer = self.buffer[end + 4:end + 4 + length], self.buffer[end + 4 + length:]
            method, path = [*lines[0].split(" "), "", ""][:2]
            self.boards.handle(self, Request(method, path, headers, body, arrival))

    def send(self, answer: bytes, *, close: bool) -> None:
        if self.transport is None:
            return
        self.transport.write(answer)
        if close:
            self.done = True
            self.transport.close()

    def hang(self) -> None:
        self.done = True  # read, never answer; the connection ends when the client gives up

    def drip(self) -> None:
        self.done = True
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(b" ")
        self.dripping = asyncio.get_running_loop().call_later(1.0, self.drip)

    def reset(self) -> None:
        self.done = True
        if self.transport is not None:
            sock = self.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()


@dataclass
class Boards:
    """What every behaviour shares: counters, and GET /stats."""

    stats: Counter[str] = field(default_factory=Counter)

    def handle(self, connection: Connection, request: Request) -> None:
        if request.method == "GET" and request.path == "/stats":
            connection.send(_answer("200 OK", json.dumps(self.stats).encode(), close=True), close=True)
        else:
            self.push(connection, request)

    def push(self, connection: Connection, request: Request) -> None:
        raise NotImplementedError


@dataclass
class FastBoards(Boards):
    keepalive: bool = False

    def push(self, connection: Connection, request: Request) -> None:
        self.stats["received"] += 1
        connection.send(_answer("204 No Content", close=not self.keepalive), close=not self.keepalive)


@dataclass
class FaultyBoards(Boards):
    secret: str = ""

    def push(self, connection: Connection, request: Request) -> None:
        kind = request.path.split("/")[1] if request.path.startswith("/") else ""
        self.stats[kind if kind in ("ok", *FAULTS) else "unknown"] += 1
        if kind == "ok":
            if verify(self.secret, request.headers, request.body):
                connection.send(_answer("204 No Content", close=True), close=True)
            else:
                self.stats["bad signature"] += 1
                connection.send(_answer("401 Unauthorized", close=True), close=True)
        elif kind == "error500":
            connection.send(_answer("500 Internal Server Error", close=True), close=True)
        elif kind == "hang":
            connection.hang()
        elif kind == "drip":
            connection.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n"
                            b"Connection: close\r\n\r\n", close=False)
            connection.drip()
        elif kind == "reset":
            connection.reset()
        else:
            connection.send(_answer("404 Not Found", close=True), close=True)


@dataclass
class RecordingBoards(Boards):
    records: list[Request] = field(default_factory=list)

    def push(self, connection: Connection, request: Request) -> None:
        if request.method == "GET" and request.path == "/dump":
            connection.send(_answer("200 OK", self.dump(), close=False, kind=b"application/x-ndjson"), close=False)
            return
        if request.method == "GET" and urlsplit(request.path).path == "/senders":
            connection.send(_answer("200 OK", self.senders(request.path), close=False), close=False)
            return
        if request.method == "POST":
            self.records.append(request)
            self.stats["received"] += 1
        connection.send(_answer("200 OK", close=False), close=False)

    def dump(self) -> bytes:
        lines = []
        for record in self.records:
            try:
                document = json.loads(record.body)
            except ValueError:
                document = {}
            slot = document.get("slot") or {}
            lines.append(json.dumps({"arrival": record.arrival, "board": record.path.lstrip("/"),
                                     "webhook_id": record.headers.get("webhook-id", ""), "type": document.get("type"),
                                     "user_agent": record.headers.get("user-agent", ""),
                                     "starts_at": slot.get("starts_at"), "slot_index": slot.get("index")}))
        return "".join(line + "\n" for line in lines).encode()

    def senders(self, path: str) -> bytes:
        since = float(parse_qs(urlsplit(path).query).get("since", ["0"])[0])
        counts = Counter(r.headers.get("user-agent", "") for r in self.records if r.arrival >= since)
        return json.dumps(counts).encode()


async def serve(boards: Boards, port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = await loop.create_server(lambda: Connection(boards), LOOPBACK, port, backlog=4096)
    print(f"{type(boards).__name__} listening on {LOOPBACK}:{port}", flush=True)
    async with server:
        await stop.wait()


def start_receiver(run: Run, kind: str, *options: str, name: str = "boards",
                   cpus: set[int] | None = None) -> tuple[Child, str]:
    """Start fake boards of `kind` (fast | faulty | recording) on a free port; (child, base URL) once ready."""
    port = free_port()
    child = run.procs.start(name, module_argv(__name__, kind, "--port", str(port), *options), env=python_env(),
                            cwd=run.workdir, log_path=run.workdir / f"{name}.log", cpus=cpus)
    base = f"http://{LOOPBACK}:{port}"
    wait_ready(child, f"{base}/stats", timeout=20)
    return child, base


def received(base: str) -> int:
    """How many pushes the fake boards at `base` have received so far (fast and recording)."""
    return int(httpx.get(f"{base}/stats", timeout=10).json().get("received", 0))


def wait_received(base: str, at_least: int, *, sender: Child, timeout: float) -> float:
    """Wait until the boards at `base` have received `at_least` pushes from `sender`; seconds waited."""
    started = time.monotonic()
    while received(base) < at_least:
        sender.check_alive()
        if time.monotonic() - started > timeout:
            raise BenchError(f"{sender.name} pushed {received(base)} of {at_least} in {timeout:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - started


def records(base: str) -> list[dict[str, Any]]:
    """What the recording boards at `base` saw, in arrival order (see the module's docstring)."""
    response = httpx.get(f"{base}/dump", timeout=60)
    response.raise_for_status()
    return [json.loads(line) for line in response.text.splitlines() if line]


def senders(base: str, since: float = 0.0) -> dict[str, int]:
    """Pushes the recording boards at `base` received at or after `since` (time.time()), by user-agent."""
    response = httpx.get(f"{base}/senders", params={"since": repr(since)}, timeout=30)
    response.raise_for_status()
    return {str(agent): int(count) for agent, count in response.json().items()}


def main() -> None:
    parser = argparse.ArgumentParser(description="fake boards on loopback (started by the benchmarks)")
    parser.add_argument("kind", choices=("fast", "faulty", "recording"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--keepalive", action="store_true", help="fast: keep connections open")
    parser.add_argument("--secret", default="", help="faulty: the whsec_ secret pushes are signed with")
    args = parser.parse_args()
    boards: Boards = (FastBoards(keepalive=args.keepalive) if args.kind == "fast"
                      else FaultyBoards(secret=args.secret) if args.kind == "faulty" else RecordingBoards())
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(boards, args.port))
    else:
        uvloop.run(serve(boards, args.port))


if __name__ == "__main__":
    main()
