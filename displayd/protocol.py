"""What credentials and boards look like on the wire, in one place.

    bearer_token("Bearer dk_…")          # "dk_…"; None for anything else
    token.startswith(BOARD_TOKEN_PREFIX)  # a board's poll token, never a staff key

Staff keys start `dk_`, board poll tokens `bt_`, push signing secrets `whsec_` (the Standard
Webhooks convention), so a credential says what it is before any lookup. A board's delivery
is `push`, `poll`, `stream` (content over a connection the board holds open) or `both`
(push and poll).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["BOARD_TOKEN_PREFIX", "DELIVERIES", "KEY_PREFIX", "POLLED", "PUSHED", "SECRET_PREFIX", "STREAMED",
           "STREAM_LEAD", "bearer_token", "document_json"]

KEY_PREFIX = "dk_"
BOARD_TOKEN_PREFIX = "bt_"
SECRET_PREFIX = "whsec_"

DELIVERIES = ("push", "poll", "stream", "both")
PUSHED = ("push", "both")  # boards displayd sends to
POLLED = ("poll", "both")  # boards that ask displayd

STREAMED = "stream"  # boards that hold a connection open and are sent their content over it
STREAM_LEAD = 2  # seconds: a stream board's content is sent at least this long before its slot

# One encoder for every document a board is given (`json.dumps` with options builds a new one per call).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def document_json(value: Any) -> str:
    """A document as boards get it (pushed, polled, streamed): UTF-8 text as is, no spaces,
    every line break escaped."""
    return _ENCODER.encode(value)


def bearer_token(authorization: str | None) -> str | None:
    """The credential of an `Authorization: Bearer <token>` header value, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token
