"""Rotation: the pure core of displayd.

Given campaigns, a board and an instant (always passed in, timezone-aware), rotation says
which slogan the board shows, for exactly how long, and what it is given to show it. It
does no I/O, imports nothing else of displayd and no framework, and gives the same answer
in every process.

- ``_model``: the values (CampaignSpec, BoardSpec, PlaylistEntry, Targets, Assignment)
- ``_zones``: the IANA time zone names accepted, and their ZoneInfo
- ``_hours``: daily hours, parsed and judged on the campaign's local wall clock
- ``_cycles``: weighted cycles, shuffling, no adjacent repeats
- ``_slots``: slot arithmetic and the slogan of a slot
- ``_precedence``: active campaigns and the winner
- ``_timeline``: a board's timeline and its next change
- ``_content``: paging, ASCII folding, content hashes
"""

from __future__ import annotations

from ._content import content_hash, fold_ascii, page_text, render_content, text_hash
from ._cycles import cycle, weighted_cycle
from ._hours import DailyRange, format_daily_hours, parse_daily_hours
from ._model import Assignment, BoardSpec, CampaignSpec, PlaylistEntry, Targets
from ._precedence import is_active, winner
from ._slots import slogan_for_slot, slot_bounds, slot_index_at
from ._timeline import assignment_at, next_change, timeline
from ._zones import timezone_names, zone

__all__ = [
    "Assignment",
    "BoardSpec",
    "CampaignSpec",
    "DailyRange",
    "PlaylistEntry",
    "Targets",
    "assignment_at",
    "content_hash",
    "cycle",
    "fold_ascii",
    "format_daily_hours",
    "is_active",
    "next_change",
    "page_text",
    "parse_daily_hours",
    "render_content",
    "slogan_for_slot",
    "slot_bounds",
    "slot_index_at",
    "text_hash",
    "timeline",
    "timezone_names",
    "weighted_cycle",
    "winner",
    "zone",
]
