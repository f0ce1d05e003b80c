"""Signing of pushes, the Standard Webhooks way (https://www.standardwebhooks.com/).

    >>> headers("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "so-sanh-chinh:3:1234", 1715040000, b'{"type":"show"}')
    {'webhook-id': 'so-sanh-chinh:3:1234', 'webhook-timestamp': '1715040000', 'webhook-signature': 'v1,…', ...}

The signed content is `"{webhook_id}.{timestamp}." + body`; the key is the base64 part of the
board's `whsec_…` secret (`displayd.keyring.secret_bytes`). A board recomputes the HMAC, compares in
constant time and rejects timestamps far from its clock, so a captured push cannot be replayed later.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from displayd.keyring import secret_bytes

__all__ = ["headers", "sign"]


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
