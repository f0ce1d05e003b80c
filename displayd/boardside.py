"""A board's side of the protocol: what to do with the documents displayd sends (DESIGN "Push",
"Stream"), for the demo's simulated boards and as the reference a board maker can copy.

    board = BoardSide()
    board.receive(document, now)        # each push or stream event, once its signature is checked
    board.showing(now)                  # the `show` to display at `now`, or None (blank)

The rules, in full:
- A board holds slots, keyed by (campaign, index), each at the highest revision it received;
  a lower or equal revision of a slot it holds is a duplicate or a stale retry: ignored.
- A `show` is held until its `slot.starts_at`, shown from then, by the board's own (NTP)
  clock, until `valid_until`. A `blank` carrying a slot takes that slot back.
- Of the slots that have begun and not ended and are not taken back, the board shows the one
  that began last (a higher-priority campaign starting mid-slot wins by starting later).
- A `blank` without a slot ends whatever has begun; slots that have not begun stay held.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["BoardSide"]


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True)
class Held:
    revision: int
    starts_at: datetime
    ends_at: datetime
    document: dict[str, Any] | None  # the show; None once a blank revision took the slot back


class BoardSide:
    def __init__(self) -> None:
        self.slots: dict[tuple[int, int], Held] = {}

    def receive(self, document: dict[str, Any], now: datetime) -> bool:
        """Take one document; False when it changes nothing (a duplicate, a stale revision)."""
        slot = document.get("slot")
        if slot is None:  # idle: what has begun ends now
            ended = [key for key, held in self.slots.items() if held.starts_at <= now]
            for key in ended:
                del self.slots[key]
            return bool(ended)
        key = (int(slot["campaign_id"]), int(slot["index"]))
        revision = int(document.get("revision", 0))
        held = self.slots.get(key)
        if held is not None and held.revision >= revision:
            return False
        show = document["type"] == "show"
        ends_at = _instant(document["valid_until"] if show else slot["ends_at"])
        self.slots[key] = Held(revision, _instant(slot["starts_at"]), ends_at, document if show else None)
        return True

    def showing(self, now: datetime) -> dict[str, Any] | None:
        """The `show` on screen at `now` (None: blank); forgets slots that have ended."""
        for key in [key for key, held in self.slots.items() if held.ends_at <= now]:
            del self.slots[key]
        begun = [held for held in self.slots.values()
                 if held.starts_at <= now and held.document is not None]
        if not begun:
            return None
        return max(begun, key=lambda held: held.starts_at).document
