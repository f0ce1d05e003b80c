"""Delivery: pushing slot content to boards over HTTP.

    client = make_client(networks=settings.board_networks)       # one per process, closed in the lifespan
    results = await Pusher(client).push_all(requests)

`signing` makes the Standard Webhooks headers, `transport` is the guarded httpx-on-aiohttp client,
`push` holds the attempt, retry and deadline rules.
"""

from __future__ import annotations

from displayd.delivery.push import Pusher, PushRequest, PushResult
from displayd.delivery.signing import headers, sign
from displayd.delivery.transport import (
    AiohttpTransport,
    GuardedResolver,
    RefusedAddressError,
    ResponseTooLarge,
    make_client,
)

__all__ = [
    "AiohttpTransport",
    "GuardedResolver",
    "PushRequest",
    "PushResult",
    "Pusher",
    "RefusedAddressError",
    "ResponseTooLarge",
    "headers",
    "make_client",
    "sign",
]
