"""A TCP proxy on loopback in front of PostgreSQL that a test can cut, so that tests see the
database go away and come back without ever stopping the machine's server.

    async with CuttableProxy() as proxy:
        url = proxy.url(database)          # postgresql+asyncpg://…@127.0.0.1:<proxy port>/database
        await proxy.cut()                  # every connection through it closed, new ones refused
        await proxy.cut(server_sees=False) # … but the server keeps its side (a network cut)
        await proxy.restore()              # new connections go through again

`cut()` closes both sides of each connection, so the server ends those sessions (and frees
their advisory locks) at once; with `server_sees=False` only the client's side closes and
the server's sessions live on, as they do when a network fails without a word.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from urllib.parse import urlsplit

from tests.conftest import PG_SERVER


class CuttableProxy:
    def __init__(self, upstream: str = PG_SERVER) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 5432
        self.user = parts.username or "postgres"
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter, list[asyncio.Task[None]]]] = []
        self._orphans: list[asyncio.StreamWriter] = []  # server sides kept open by `cut(server_sees=False)`

    async def __aenter__(self) -> CuttableProxy:
        await self.restore()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.cut()
        for writer in self._orphans:
            writer.transport.abort()
        self._orphans.clear()

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{self.user}@127.0.0.1:{self.port}/{database}"

    async def restore(self) -> None:
        """Listen (on the same port as before, once there was one) and forward again."""
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)
            self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self, *, server_sees: bool = True) -> None:
        """Stop listening (a new connection is refused) and end every connection through it."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        pairs, self._pairs = self._pairs, []
        for client, upstream, pumps in pairs:
            for pump in pumps:
                pump.cancel()
            client.transport.abort()
            if server_sees:
                upstream.transport.abort()
            else:
                self._orphans.append(upstream)
        for _, _, pumps in pairs:
            for pump in pumps:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pump

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        pumps = [asyncio.create_task(self._pump(reader, up_writer)), asyncio.create_task(self._pump(up_reader, writer))]
        self._pairs.append((writer, up_writer, pumps))

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        # One side ended: end the other. (Not when cancelled by `cut`, which decides that itself.)
        writer.transport.abort()
