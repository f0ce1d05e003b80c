"""How `displayd serve` and the demo listen: uvicorn, with limits on what a connection may hold.

Stock uvicorn lets a client keep a connection open with half a request head forever, send a
head of any size, and open connections until the process runs out of file descriptors; a
few hundred such sockets from one careless script would be enough to starve the boards'
polls. `LimitedHttpProtocol` (uvicorn's httptools protocol, subclassed) bounds each of these:

- a request head (request line and headers) over `max_header_bytes` gets 431, and the
  connection closes;
- a connection that has not sent a whole head within `header_timeout_seconds` (of opening,
  or of the first byte of its next request) gets 408, and closes;
- a keep-alive connection idle for `keep_alive_seconds` closes (uvicorn's own timer);
- at most `max_connections` are open: one more closes the oldest idle keep-alive connection,
  or, when none is idle, is answered 503 and closed.

    server = Server(uvicorn_config(app, settings, host="127.0.0.1", port=8000),
                    before_shutdown=lambda: close_streams(app))

Polls and pushes are unaffected: a board's request head is a few hundred bytes, sent at once.

`Server` is uvicorn's server with one step added to its shutdown: the app's open event streams
(`displayd.live.stream`) are ended first. uvicorn waits for every connection to close before
it runs the lifespan's shutdown, and a stream would never close by itself.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from displayd.config import Settings

__all__ = ["HttpLimits", "LimitedHttpProtocol", "Server", "protocol_for", "raise_open_file_limit", "uvicorn_config"]

log = logging.getLogger("displayd.serving")

# Called directly rather than through super() in the per-request callbacks: a poll's whole
# answer takes a few tens of microseconds, and each super() costs a little of it.
_Base = HttpToolsProtocol

# File descriptors beyond the connections: the database, the log, outgoing pushes.
FD_HEADROOM = 256


@dataclass(frozen=True)
class HttpLimits:
    """`HttpLimits(max_header_bytes=16384, header_timeout_seconds=10, keep_alive_seconds=15)`"""

    max_header_bytes: int = 16 * 1024
    header_timeout_seconds: float = 10.0
    keep_alive_seconds: int = 15
    max_connections: int = 4096

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpLimits:
        return cls(max_header_bytes=settings.max_header_bytes, header_timeout_seconds=settings.header_timeout_seconds,
                   keep_alive_seconds=settings.keep_alive_seconds, max_connections=settings.max_connections)


class LimitedHttpProtocol(HttpToolsProtocol):
    """One HTTP/1.1 connection, with the limits of `limits` (see the module docstring).

    `protocol_for(limits)` makes the subclass a server uses: the limits and the book of idle
    connections are the server's, shared by its connections.
    """

    limits: ClassVar[HttpLimits] = HttpLimits()
    # Connections waiting for their next request, the longest-waiting first (a dict keeps
    # insertion order): the ones to close when the cap is reached (they cost their client
    # only a reconnect).
    idle: ClassVar[dict[LimitedHttpProtocol, None]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_open = False  # between the first byte of a request and the end of its head
        self._head_raw = 0  # bytes of the head under way received before the current read
        self._read = 0  # bytes in the current read
        self._heads_begun = 0
        self._in_message = False  # between a request's first byte and the end of its body
        self._head_deadline: asyncio.TimerHandle | None = None
        self._refused = False  # answered 408/431/503: every further byte is ignored
        self._idle = False  # in `idle`

    # Connection events

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections and not self._evict_idle():
            self._refuse(503, "Too many connections; try again shortly.")
            return
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._not_idle()
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._idle:
            self._not_idle()
        self._read = len(data)
        heads_begun, between_messages = self._heads_begun, not self._in_message
        _Base.data_received(self, data)
        if self._refused:
            return
        if self._head_open:
            # The head is still incomplete, and the parser keeps a header in its own buffer
            # until the header ends: count here, or one endless header would fill memory.
            # These bytes are all head if it began before them, or began them; if they also
            # end an earlier request (pipelined), count what the parser passed on.
            begun = self._heads_begun - heads_begun
            if begun == 0:
                self._head_raw += len(data)
            elif begun == 1 and between_messages:
                self._head_raw = len(data)
            else:
                self._head_raw = self._parsed_head_bytes()
            if self._head_raw > self.limits.max_header_bytes:
                self._refuse(431, "Request header fields too large.")
                return
        # A deadline runs while a head is incomplete, and while nothing else (a request under
        # way, uvicorn's keep-alive timer) would end a connection that sends only line breaks.
        # A head that arrives whole in one read, the usual case, never needs a timer.
        if self._head_deadline is None and (
                self._head_open or (not self._in_request() and self.timeout_keep_alive_task is None)):
            self._arm_head_deadline()

    def on_response_complete(self) -> None:
        _Base.on_response_complete(self)
        if self.timeout_keep_alive_task is not None:  # uvicorn now waits for the next request
            self.idle[self] = None
            self._idle = True

    # Parser callbacks

    def on_message_begin(self) -> None:
        if self._refused:
            return
        _Base.on_message_begin(self)
        self._head_open = self._in_message = True
        self._head_raw = 0
        self._heads_begun += 1

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._head_open = False
        # The head is at most what came of it before this read, plus this read: only a large
        # read needs the headers counted.
        if self._head_raw + self._read > self.limits.max_header_bytes and \
                self._parsed_head_bytes() > self.limits.max_header_bytes:
            self._refuse(431, "Request header fields too large.")
            return
        self._disarm_head_deadline()
        _Base.on_headers_complete(self)

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            _Base.on_body(self, body)

    def on_message_complete(self) -> None:
        self._in_message = False
        if not self._refused:
            _Base.on_message_complete(self)

    # Limits

    def _in_request(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _parsed_head_bytes(self) -> int:
        """The head so far as the parser passed it on: the target and the whole headers."""
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)  # ": ", CRLF

    def _arm_head_deadline(self) -> None:
        self._disarm_head_deadline()
        self._head_deadline = self.loop.call_later(self.limits.header_timeout_seconds, self._head_timed_out)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if not self._refused and not self.transport.is_closing():
            self._refuse(408, "The request head did not arrive in time.")

    def _not_idle(self) -> None:
        if self._idle:
            self._idle = False
            del self.idle[self]

    def _evict_idle(self) -> bool:
        """Close the connection idle the longest, if there is one."""
        while self.idle:
            victim = next(iter(self.idle))
            victim._not_idle()
            if not victim.transport.is_closing():
                victim.transport.close()
                self.connections.discard(victim)  # counted out now, not when the loop gets to it
                return True
        return False

    def _refuse(self, status: int, reason: str) -> None:
        """Answer `status` and close; while a response is under way (a pipelined request's head
        failed), let that response finish and close after it instead."""
        self._refused = True
        self._head_open = False
        self._disarm_head_deadline()
        self._not_idle()
        if self._in_request():
            self.cycle.keep_alive = False
            self.flow.pause_reading()
            return
        body = reason.encode("ascii")
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [b"content-type: text/plain; charset=utf-8\r\n",
                 b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                 b"connection: close\r\n\r\n"]
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def protocol_for(limits: HttpLimits) -> type[LimitedHttpProtocol]:
    """The protocol class for one server: its limits, and its own book of idle connections."""

    class ServerProtocol(LimitedHttpProtocol):
        pass

    ServerProtocol.limits = limits
    ServerProtocol.idle = {}
    return ServerProtocol


def uvicorn_config(app: ASGIApp, settings: Settings, *, host: str, port: int, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for displayd: the limits from `settings`, displayd's own logging."""
    limits = HttpLimits.from_settings(settings)
    defaults: dict[str, Any] = {
        "log_config": None,  # displayd.logs configures the root logger; uvicorn's records go there
        "access_log": False,  # displayd logs its own events; an access line per poll is noise
        "server_header": False,
        "ws": "none",  # displayd speaks no WebSocket: no upgrade path to keep safe
        "lifespan": "on",
        # Only these proxies may say who the client is (X-Forwarded-For): behind nginx the failed
        # sign-in limit must hold the guesser, not the proxy every office user comes through.
        "proxy_headers": True,
        "forwarded_allow_ips": ",".join(settings.trusted_proxies),
    }
    return uvicorn.Config(app, host=host, port=port, http=protocol_for(limits),
                          timeout_keep_alive=limits.keep_alive_seconds, **{**defaults, **options})


class Server(uvicorn.Server):
    """`Server(config, before_shutdown=...)`: uvicorn's server, awaiting `before_shutdown()` (ending
    the open event streams) before its own shutdown waits for the connections to close."""

    def __init__(self, config: uvicorn.Config, *, before_shutdown: Callable[[], Awaitable[None]] | None = None) -> None:
        super().__init__(config)
        self.before_shutdown = before_shutdown

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.before_shutdown is not None:
            try:
                await self.before_shutdown()
            except Exception:  # the shutdown goes on: the connections are closed in any case
                log.exception("ending the open event streams failed")
        await super().shutdown(sockets)


def raise_open_file_limit(settings: Settings) -> int:
    """Raise this process's open-file limit to its hard limit (a shell's default soft limit,
    often 1024, is lower than `max_connections`); the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # An unlimited hard limit is still capped by the kernel (fs.nr_open): try large, then less.
    for target in [hard] if hard != resource.RLIM_INFINITY else [1 << 20, 1 << 16]:
        if target <= soft:
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            continue
        soft = target
        break
    if soft < settings.max_connections + FD_HEADROOM:
        log.warning("the open-file limit (%d) is below max_connections (%d) + %d: the kernel refuses "
                    "connections beyond it; raise the hard limit (ulimit -Hn, LimitNOFILE=)",
                    soft, settings.max_connections, FD_HEADROOM,
                    extra={"event": "open_file_limit", "limit": soft, "max_connections": settings.max_connections})
    return soft
