"""A TCP proxy on loopback, in front of PostgreSQL (or anything), that a test can cut and restore:
the database goes away and comes back without the machine's server ever being stopped.

    async with NetCut() as proxy:              # in front of PG_SERVER; or NetCut(any URL with host:port)
        url = proxy.url(database)              # postgresql+asyncpg://…@127.0.0.1:<proxy port>/database
        await proxy.cut()                      # every connection through it closed, new ones refused
        await proxy.cut(server_sees=False)     # … but the server keeps its side (a network cut)
        proxy.blackhole()                      # or: bytes stop flowing, both ways, and nothing is closed
        await proxy.restore()                  # new connections go through again, on the same port
                                               # (stalled ones are reset first: their peers learn at once)

Refused means refused: while cut, nothing listens on the port, so a client's connect fails
at once (ECONNREFUSED), as it does when a database server is stopped. `cut()` resets both sides
of each connection, so the server ends those sessions (and frees their advisory locks) at once;
with `server_sees=False` only the client's side is reset and the server's sessions live on, as
they do when a network fails without a word (until the proxy is left). A blackhole is a network
that drops packets: connections open and stay open, and nothing ever answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from types import TracebackType

from sqlalchemy.engine import make_url

from tests.conftest import PG_SERVER

__all__ = ["NetCut"]

Link = tuple[asyncio.StreamWriter, asyncio.StreamWriter, list[asyncio.Task[None]]]  # client, upstream, pipes


class NetCut:
    def __init__(self, upstream: str = PG_SERVER, *, host: str = "127.0.0.1") -> None:
        self.upstream = make_url(upstream)
        self.host = host
        self.port = 0  # chosen at the first listen, kept for every restore
        self.connections = 0  # accepted since the start, for tests that must see traffic
        self._server: asyncio.Server | None = None
        self._links: list[Link] = []
        self._orphans: list[asyncio.StreamWriter] = []  # server sides kept open by `cut(server_sees=False)`
        self._flowing = asyncio.Event()
        self._flowing.set()

    async def __aenter__(self) -> NetCut:
        await self.restore()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.cut()
        for writer in self._orphans:
            _reset(writer)
        self._orphans.clear()

    @property
    def is_cut(self) -> bool:
        return self._server is None

    def url(self, database: str) -> str:
        """The upstream's user (and password) on `database`, through the proxy, for asyncpg."""
        url = self.upstream.set(drivername="postgresql+asyncpg", host=self.host, port=self.port,
                                database=database, query={})
        return url.render_as_string(hide_password=False)

    def blackhole(self) -> None:
        self._flowing.clear()

    async def restore(self) -> None:
        """Listen (on the same port as before, once there was one, so URLs handed out stay good)
        and forward again."""
        if not self._flowing.is_set():
            await self.cut()  # what stalled is reset
            self._flowing.set()
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, self.host, self.port, reuse_address=True)
            self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self, *, server_sees: bool = True) -> None:
        """Stop listening (a new connection is refused) and end every connection through it."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        links, self._links = self._links, []
        for client, upstream, pipes in links:
            for pipe in pipes:
                pipe.cancel()
            _reset(client)
            if server_sees:
                _reset(upstream)
            else:
                self._orphans.append(upstream)  # referenced, or its socket would close when collected
        await asyncio.gather(*(pipe for _, _, pipes in links for pipe in pipes), return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                self.upstream.host or "127.0.0.1", self.upstream.port or 5432)
        except OSError:
            _reset(writer)
            return
        if self._server is None:  # cut while connecting: `cut` did not see this one
            _reset(writer)
            _reset(upstream_writer)
            return
        self.connections += 1
        pipes = [asyncio.create_task(self._pipe(reader, upstream_writer)),
                 asyncio.create_task(self._pipe(upstream_reader, writer))]
        self._links.append((writer, upstream_writer, pipes))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        # One side ended: end the other, after what it was sent (a server's last error reaches its
        # client). Not when cancelled by `cut`, which decides that itself.
        writer.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a reset, not a polite FIN: the peer learns at once, even one that only writes."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError):  # (already closed)
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
