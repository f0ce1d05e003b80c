"""Signing of pushes, the Standard Webhooks way (https://www.standardwebhooks.com/).

    >>> headers("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "so-sanh-chinh:3:1234", 1715040000, b'{"type":"show"}')
    {'webhook-id': 'so-sanh-chinh:3:1234', 'webhook-timestamp': '1715040000', 'webhook-signature': 'v1,…', ...}

The signed content is `"{webhook_id}.{timestamp}." + body`; the key is the base64 part of the
board's `whsec_…` secret (`displayd.keyring.secret_bytes`). A board recomputes the HMAC, compares in
constant time and rejects timestamps far from its clock, so a captured push cannot be replayed later:

    verify(secret, request.headers, body, now=time.time())   # raises BadSignature("…why…")

Signing and verifying live side by side, verify built on sign, so the two cannot drift; the
demo's boards verify with this module (the tests keep an independent verifier on purpose).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from displayd.keyring import secret_bytes

__all__ = ["TIMESTAMP_TOLERANCE", "BadSignature", "headers", "sign", "verify"]

TIMESTAMP_TOLERANCE = 300  # seconds either side of the receiver's clock, as Standard Webhooks advises


class BadSignature(ValueError):
    """A push that must not be believed; the message says why (never the secret)."""


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value for one attempt.

        sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "b1:3:1234", 1715040000, b"{}")   # "v1,…"
    """
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The four headers every push attempt carries; `timestamp` is unix seconds, fresh per attempt."""
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, webhook_id, timestamp, body),
        "content-type": "application/json",
    }


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, now: float,
           tolerance: int = TIMESTAMP_TOLERANCE) -> str:
    """The `webhook-id` of a push whose signature is good; `BadSignature` otherwise.

    `headers` is any case-insensitive mapping (aiohttp's, httpx's, Starlette's). Any one of
    the space-separated `v1,…` signatures matching is enough, so a sender may rotate secrets.
    """
    webhook_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (webhook_id and timestamp and signatures):
        raise BadSignature("webhook headers missing")
    try:
        sent = int(timestamp)
    except ValueError:
        raise BadSignature("timestamp is not a number") from None
    if abs(now - sent) > tolerance:
        raise BadSignature("timestamp too far from now")
    expected = sign(secret, webhook_id, sent, body)
    if not any(hmac.compare_digest(candidate, expected) for candidate in signatures.split()):
        raise BadSignature("signature does not match the board's secret")
    return webhook_id
