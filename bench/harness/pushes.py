"""Pushes as displayd's dispatcher makes them: documents of the real shape, signed requests, the client.

    requests = signed_requests(urls, [document(i) for i in range(len(urls))], secret=SECRET,
                               deadline=loop.time() + 30, slot=1234)
    async with push_client(concurrency=1024) as client:
        results = await Pusher(client).push_all(requests, concurrency=1024)
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence

import httpx

from bench.harness.processes import LOOPBACK_NETWORKS
from displayd.delivery import PushRequest, make_client

CAMPAIGN = 3


def secret(seed: bytes) -> str:
    """A board's `whsec_…` signing secret made from 32 bytes of `seed`."""
    return "whsec_" + base64.b64encode(seed[:32].ljust(32, b"0")).decode()


def board_id(i: int) -> str:
    return f"bang-{i:05d}"


def document(board: int) -> bytes:
    """A push document of the real shape, about 400 bytes."""
    return json.dumps({
        "type": "show", "board_id": board_id(board),
        "slot": {"campaign_id": CAMPAIGN, "index": 1234, "starts_at": "2024-05-07T00:00:00Z",
                 "ends_at": "2024-05-07T00:00:30Z"},
        "content": {"slogan_id": 7, "text": "An toàn giao thông là hạnh phúc của mọi nhà",
                    "pages": [["An toan giao thong", "la hanh phuc cua moi nha"]], "charset": "utf-8"},
        "content_hash": "sha256:9f2c1e7a5b3d4c6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6",
        "valid_until": "2024-05-07T00:00:30Z"}, ensure_ascii=False).encode()


def signed_requests(urls: Sequence[str], bodies: Sequence[bytes], *, secret: str, deadline: float,
                    slot: int) -> list[PushRequest]:
    """Board i gets bodies[i] at urls[i], webhook-id "<board>:<campaign>:<slot>", all due by `deadline`."""
    return [PushRequest(board_id=board_id(i), url=url, body=bodies[i], webhook_id=f"{board_id(i)}:{CAMPAIGN}:{slot}",
                        secret=secret, deadline=deadline) for i, url in enumerate(urls)]


def push_client(*, concurrency: int = 1024) -> httpx.AsyncClient:
    """displayd's push client (`make_client`), allowed to reach loopback boards."""
    return make_client(networks=LOOPBACK_NETWORKS, max_connections=concurrency)
