"""A TCP proxy on loopback that a test can cut and restore: a database (or anything) going away
and coming back, without touching the real server.

    async with NetCut("127.0.0.1", 5432) as proxy:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{proxy.port}/test"
        ...
        await proxy.cut()        # every open connection is closed; new ones are refused
        ...
        await proxy.restore()    # new connections are accepted again, on the same port
        proxy.blackhole()        # or: bytes stop flowing, both ways, and nothing is closed
        await proxy.restore()    # (the stalled connections are reset: their peers learn at once)

Refused means refused: while cut, nothing listens on the port, so a client's connect fails
at once (ECONNREFUSED), as it does when a database server is stopped. A blackhole is a
network that drops packets: connections open and stay open, and nothing ever answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from types import TracebackType

__all__ = ["NetCut"]


class NetCut:
    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = 0
        self.connections = 0  # accepted since the start, for tests that must see traffic
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    async def __aenter__(self) -> NetCut:
        if self.port == 0:
            with socket.socket() as probe:  # a free port, kept for every restore
                probe.bind((self.host, 0))
                self.port = probe.getsockname()[1]
        await self.restore()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.cut()

    @property
    def is_cut(self) -> bool:
        return self._server is None

    def blackhole(self) -> None:
        self._flowing.clear()

    async def restore(self) -> None:
        if not self._flowing.is_set():
            await self.cut()  # what stalled is reset
            self._flowing.set()
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, self.host, self.port, reuse_address=True)

    async def cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                sock = writer.get_extra_info("socket")
                if sock is not None:  # a reset, not a polite close: the peer learns at once
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                writer.close()
        self._writers.clear()
        for task in list(self._pipes):
            task.cancel()
        if self._pipes:
            await asyncio.gather(*self._pipes, return_exceptions=True)
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._server is None:
            writer.close()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.connections += 1
        self._writers |= {writer, upstream_writer}
        pipes = [asyncio.create_task(self._pipe(reader, upstream_writer)),
                 asyncio.create_task(self._pipe(upstream_reader, writer))]
        self._pipes.update(pipes)
        for pipe in pipes:
            pipe.add_done_callback(self._pipes.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()
