"""The HTTP client pushes go out through: httpx's API on aiohttp's connection pool, guarded.

    client = make_client(networks=settings.board_networks, max_connections=1024)
    response = await client.post(url, content=body, headers=headers)   # httpx.Response
    await client.aclose()

Why not stock httpx: its pool collapses under fan-out (about 455 req/s against aiohttp's ~10k at
64 in flight, ReadErrors at 256); `bench/fanout.py` measures the three side by side. Callers still
write httpx and only ever see httpx exceptions:

    httpx.TransportError
    ├── httpx.ConnectError ─────── RefusedAddressError   the address is not one displayd may reach
    ├── httpx.ReadError                                  reset or broken while reading
    ├── httpx.RemoteProtocolError ─ ResponseTooLarge    body over the cap (64 KiB)
    ├── httpx.UnsupportedProtocol                       not an http(s) URL aiohttp accepts
    └── httpx.TimeoutException (ConnectTimeout, ReadTimeout)   only when httpx timeouts are set

This module owns the connect-time address guard. `GuardedResolver` drops every resolved address that
`refused_reason` rejects, and the connector's socket factory checks the exact address once more just
before `connect()` (aiohttp skips the resolver for IP literals). A refused, link-local or metadata
address is therefore never connected to, even when a name that passed `check_endpoint` re-resolves
elsewhere later (DNS rebinding).
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from displayd.boards.urls import Address, Network, refused_reason

__all__ = [
    "MAX_RESPONSE_BYTES",
    "AiohttpTransport",
    "GuardedResolver",
    "RefusedAddress",
    "RefusedAddressError",
    "ResponseTooLarge",
    "make_client",
]

MAX_RESPONSE_BYTES = 64 * 1024


class RefusedAddress(OSError):
    """Raised inside the connector (resolver, socket factory): aiohttp wraps OSErrors from both."""


class RefusedAddressError(httpx.ConnectError):
    """The board's address is outside `allowed_board_networks`, link-local or metadata: never retried."""


class ResponseTooLarge(httpx.RemoteProtocolError):
    """The board answered more than `MAX_RESPONSE_BYTES`; displayd never reads an unbounded body."""


def _networks(networks: Iterable[Network | str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) if isinstance(n, str) else n for n in networks)


@functools.lru_cache(maxsize=8192)
def _check(address: str, networks: tuple[Network, ...]) -> str | None:
    """`refused_reason` for an address as a resolver or a sockaddr spells it ("fe80::1%eth0" included).

    Cached: parsing the same board address on every connect costs more than the connect's bookkeeping.
    """
    try:
        parsed: Address = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    return refused_reason(parsed, networks)


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, then keeps only addresses displayd may connect to.

        connector = aiohttp.TCPConnector(resolver=GuardedResolver(["10.0.0.0/8"]))

    Raises `RefusedAddress` ("refused address: …") when nothing is left.
    """

    def __init__(self, networks: Iterable[Network | str], resolver: AbstractResolver | None = None) -> None:
        self.networks = _networks(networks)
        self._resolver = resolver

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
                      ) -> list[ResolveResult]:
        literal = _literal(host)
        if literal is not None:
            hosts: list[ResolveResult] = [{"hostname": host, "host": str(literal), "port": port,
                                           "family": socket.AF_INET6 if literal.version == 6 else socket.AF_INET,
                                           "proto": 0, "flags": socket.AI_NUMERICHOST}]
        else:
            if self._resolver is None:  # made lazily: the default resolver wants a running loop
                self._resolver = DefaultResolver()
            hosts = await self._resolver.resolve(host, port, family)
        kept, reasons = [], []
        for result in hosts:
            reason = _check(result["host"], self.networks)
            if reason is None:
                kept.append(result)
            else:
                reasons.append(reason)
        if not kept:
            raise RefusedAddress(f"refused address: {host} resolves to {'; '.join(reasons) or 'nothing'}")
        return kept

    async def close(self) -> None:
        if self._resolver is not None:
            await self._resolver.close()


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _guarded_socket_factory(networks: tuple[Network, ...]) -> Any:
    """The last check, on the exact sockaddr about to be connected (covers IP literals too)."""

    def factory(addr_info: tuple[int, int, int, str, tuple[Any, ...]]) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        reason = _check(str(sockaddr[0]), networks)
        if reason is not None:
            raise RefusedAddress(f"refused address: {reason}")
        return socket.socket(family=family, type=type_, proto=proto)

    return factory


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport on one `aiohttp.ClientSession`: httpx.Request in, httpx.Response out.

        client = httpx.AsyncClient(transport=AiohttpTransport(networks=["10.0.0.0/8"]), follow_redirects=False)

    Never follows redirects, reads at most `max_response_bytes` of a body (decompressed, so the
    answer's `content-encoding`/`content-length` headers are dropped), and turns every aiohttp error
    into the httpx exception httpx's own transport would raise. httpx timeouts in the request's
    extensions map to aiohttp's socket timeouts; the pusher uses `asyncio.timeout` instead.
    """

    def __init__(self, *, networks: Iterable[Network | str], max_connections: int = 1024,
                 max_response_bytes: int = MAX_RESPONSE_BYTES, keepalive_timeout: float = 15.0) -> None:
        self.networks = _networks(networks)
        self.max_connections = max_connections
        self.max_response_bytes = max_response_bytes
        self.keepalive_timeout = keepalive_timeout
        self._session: aiohttp.ClientSession | None = None
        self._no_timeout = aiohttp.ClientTimeout(total=None, sock_connect=None, sock_read=None)

    def _open(self) -> aiohttp.ClientSession:
        # Opened on first use, inside the running loop: aiohttp binds a session to its loop.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections, limit_per_host=0, resolver=GuardedResolver(self.networks),
                socket_factory=_guarded_socket_factory(self.networks), keepalive_timeout=self.keepalive_timeout,
                ttl_dns_cache=10)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._no_timeout, cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=True, trust_env=False)
        return self._session

    def _timeout(self, request: httpx.Request) -> aiohttp.ClientTimeout:
        spec = request.extensions.get("timeout") or {}
        connect, read = spec.get("connect"), spec.get("read")
        if connect is None and read is None:
            return self._no_timeout
        return aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._open()
        body = await request.aread()
        try:
            async with session.request(
                    request.method, str(request.url), headers=request.headers.multi_items(),
                    data=body or None, allow_redirects=False, timeout=self._timeout(request)) as answer:
                content = await self._read(answer, request)
                headers = [(k, v) for k, v in answer.raw_headers
                           if k.lower() not in (b"content-encoding", b"content-length", b"transfer-encoding")]
                version = answer.version or aiohttp.HttpVersion11
                return httpx.Response(
                    answer.status, headers=headers, content=content, request=request,
                    extensions={"http_version": f"HTTP/{version.major}.{version.minor}".encode(),
                                "reason_phrase": (answer.reason or "").encode()})
        except aiohttp.ClientError as exc:
            raise _as_httpx(exc, request) from exc

    async def _read(self, answer: aiohttp.ClientResponse, request: httpx.Request) -> bytes:
        cap = self.max_response_bytes
        if answer.content_length is not None and answer.content_length > cap:
            raise ResponseTooLarge(f"response of {answer.content_length} bytes is over {cap}", request=request)
        chunks, size = [], 0
        while chunk := await answer.content.read(cap + 1 - size):
            size += len(chunk)
            if size > cap:
                raise ResponseTooLarge(f"response is over {cap} bytes", request=request)
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _refused(exc: BaseException | None) -> RefusedAddress | None:
    while exc is not None:
        if isinstance(exc, RefusedAddress):
            return exc
        if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, RefusedAddress):
            return exc.os_error
        exc = exc.__cause__
    return None


def _as_httpx(exc: aiohttp.ClientError, request: httpx.Request) -> httpx.TransportError:
    """The httpx exception for an aiohttp one; most specific aiohttp classes first."""
    if (refused := _refused(exc)) is not None:
        return RefusedAddressError(str(refused), request=request)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(str(exc) or "connect timed out", request=request)
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(str(exc) or "read timed out", request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(str(exc.os_error.strerror or exc.os_error), request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError("server disconnected without sending a complete response", request=request)
    if isinstance(exc, aiohttp.ClientConnectionError):
        return httpx.ReadError(str(exc) or type(exc).__name__, request=request)
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return httpx.UnsupportedProtocol(str(exc), request=request)
    # ClientPayloadError, ClientResponseError (a malformed status line or headers) and the rest.
    return httpx.RemoteProtocolError(str(exc) or type(exc).__name__, request=request)


class _NoCookies(httpx.Cookies):
    """A client's cookies that never learn from a response: a board's `Set-Cookie` is not kept.

    Stock httpx parses every response into the client's jar, building urllib stand-ins for the
    request and the response each time (10-20 µs a push), for cookies a push never sends; aiohttp's
    side already drops them (`DummyCookieJar`). Cookies set on the client explicitly still work.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class _PushClient(httpx.AsyncClient):
    """`httpx.AsyncClient` for pushes: the same API, less work per request.

    - `cookies` is a `_NoCookies`: no per-response cookie parsing.
    - `send` of a request as pushes send it (read whole, no auth, redirects not followed, no
      event hooks) goes straight to the transport: httpx's auth flow, redirect loop and
      stream wrapper cost ~45 µs a push under fan-out (bench/fanout.py). Anything else takes
      httpx's own path.
    """

    def __init__(self, *, transport: httpx.AsyncBaseTransport, **kwargs: Any) -> None:
        self._push_cookies: httpx.Cookies = _NoCookies()
        self._push_transport = transport
        super().__init__(transport=transport, **kwargs)

    async def send(self, request: httpx.Request, *, stream: bool = False, auth: Any = httpx.USE_CLIENT_DEFAULT,
                   follow_redirects: Any = httpx.USE_CLIENT_DEFAULT) -> httpx.Response:
        plain = (not stream and auth is httpx.USE_CLIENT_DEFAULT and self.auth is None and not self.is_closed
                 and not self.follow_redirects and follow_redirects in (httpx.USE_CLIENT_DEFAULT, False)
                 and not any(self.event_hooks.values()))
        if not plain:
            return await super().send(request, stream=stream, auth=auth, follow_redirects=follow_redirects)
        response = await self._push_transport.handle_async_request(request)
        response.request = request
        try:
            await response.aread()  # closes the stream too
        except BaseException:
            await response.aclose()
            raise
        return response

    @property
    def cookies(self) -> httpx.Cookies:
        return self._push_cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._push_cookies = _NoCookies(cookies)


def make_client(*, networks: Iterable[Network | str], max_connections: int = 1024) -> httpx.AsyncClient:
    """The one push client per process; close it with `await client.aclose()`.

        client = make_client(networks=["10.0.0.0/8", "192.168.0.0/16"])

    No httpx timeouts (the pusher bounds each attempt with `asyncio.timeout`), no redirects, no
    proxies or netrc from the environment, and no cookies learnt from boards' answers (`_NoCookies`).
    """
    return _PushClient(transport=AiohttpTransport(networks=networks, max_connections=max_connections),
                       follow_redirects=False, timeout=None, trust_env=False)
