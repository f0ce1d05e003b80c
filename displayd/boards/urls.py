"""Which board endpoint URLs displayd may ever request.

    await check_endpoint("http://192.168.1.20/show", networks)   # InvalidInput if refused

The URL must be http(s), carry no credentials, and every address its host resolves to must
lie inside the allowed networks. Link-local and cloud metadata addresses are refused even
when a network allows them. The push engine checks again before connecting, so a name that
later resolves elsewhere (DNS rebinding) is refused there too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from displayd.errors import InvalidInput

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "168.63.129.16",
))


def refused_reason(address: Address, networks: Sequence[Network]) -> str | None:
    """Why displayd must not connect to `address`, or None if it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return f"{address} is a cloud metadata address"
    if address.is_link_local:
        return f"{address} is link-local"
    if address.is_unspecified or address.is_multicast:
        return f"{address} is not a host address"
    if not any(address in network for network in networks):
        return f"{address} is outside allowed_board_networks"
    return None


def split_endpoint(url: str) -> tuple[str, int]:
    """(host, port) of an acceptable URL's syntax; InvalidInput otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"endpoint_url is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput("endpoint_url must be http or https")
    if not parts.hostname:
        raise InvalidInput("endpoint_url has no host")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("endpoint_url must not carry credentials")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


async def resolve(host: str, port: int) -> list[Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout=5)
    except (OSError, TimeoutError):
        raise InvalidInput(f"endpoint_url host {host!r} does not resolve") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


async def check_endpoint(url: str, networks: Sequence[Network]) -> list[Address]:
    """The addresses `url` may be requested at; InvalidInput if any is refused."""
    host, port = split_endpoint(url)
    addresses = await resolve(host, port)
    for address in addresses:
        reason = refused_reason(address, networks)
        if reason is not None:
            raise InvalidInput(f"endpoint_url refused: {host} resolves to {reason}")
    return addresses
