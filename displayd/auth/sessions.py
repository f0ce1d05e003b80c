"""Dashboard sessions: a signed, HttpOnly cookie naming a staff key by its hash.

    value = issue(master, key_hash, now)            # set as the `displayd_session` cookie
    key_hash = verify(master, value, now)           # None if forged, tampered or expired

The cookie never holds the key itself, and it only opens safe (read-only) requests, so a
page on another site cannot act with it (no CSRF on writes: writes need the header).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, timedelta

COOKIE = "displayd_session"
LIFETIME = timedelta(hours=12)


def _sign(master: bytes, payload: bytes) -> str:
    digest = hmac.new(master, b"session:" + payload, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def issue(master: bytes, key_hash: str, now: datetime) -> str:
    payload = json.dumps({"k": key_hash, "e": int((now + LIFETIME).timestamp())}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + _sign(master, payload)


def verify(master: bytes, value: str, now: datetime) -> str | None:
    encoded, _, signature = value.partition(".")
    try:
        payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not hmac.compare_digest(signature, _sign(master, payload)):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("k"), str) or not isinstance(data.get("e"), int):
        return None
    return data["k"] if data["e"] > now.timestamp() else None
