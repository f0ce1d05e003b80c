"""The plain values rotation works on: campaigns, boards, playlists, targets, assignments.

This module owns their invariants. The domain services build these from database rows;
rotation never sees a row, a session or a request. Datetimes are timezone-aware and are
normalised to UTC on the way in; a naive datetime is a ValueError.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from ._hours import DailyRange
from ._zones import zone

__all__ = [
    "Assignment",
    "BoardSpec",
    "CampaignSpec",
    "PlaylistEntry",
    "Targets",
    "require_aware",
]

ORDERS = ("sequential", "shuffle")
# Rotation steps a little past a window's ends (the slot after the last, a day, a zone's
# offset of up to a day), so a window must keep clear of datetime's years 1 and 9999. The API
# accepts far less (2000..2100); this guards rows written any other way.
_FIRST_YEAR, _LAST_YEAR = 2, 9998


def require_aware(value: datetime, name: str = "datetime") -> datetime:
    """``value`` as UTC; ValueError if it is naive (no tzinfo) or not a datetime."""
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _require_int(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an int, got {value!r}")
    return value


def _strings(values: Iterable[str], name: str) -> frozenset[str]:
    if isinstance(values, str):
        # A bare string would silently become a set of its letters.
        raise ValueError(f"{name} must be a collection of strings, not a string")
    result = frozenset(values)
    for value in result:
        if not isinstance(value, str):
            raise ValueError(f"{name} must hold strings, got {value!r}")
    return result


@dataclass(frozen=True, slots=True)
class PlaylistEntry:
    """``PlaylistEntry(slogan_id=12, weight=2)``: slogan 12 twice per cycle."""

    slogan_id: int
    weight: int

    def __post_init__(self) -> None:
        _require_int(self.slogan_id, "slogan_id")
        if not 1 <= _require_int(self.weight, "weight") <= 10:
            raise ValueError(f"weight must be 1..10, got {self.weight}")


@dataclass(frozen=True, slots=True)
class BoardSpec:
    """``BoardSpec("so-sanh-chinh", groups=frozenset({"so-tttt"}), offset=0)``."""

    id: str
    groups: frozenset[str] = frozenset()
    offset: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", _strings(self.groups, "groups"))
        _require_int(self.offset, "offset")


@dataclass(frozen=True, slots=True)
class Targets:
    """Which boards a campaign runs on: ``Targets(all=True)``, ``Targets(groups=frozenset({"x"}))``."""

    all: bool = False
    groups: frozenset[str] = frozenset()
    boards: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", _strings(self.groups, "groups"))
        object.__setattr__(self, "boards", _strings(self.boards, "boards"))

    def includes(self, board: BoardSpec) -> bool:
        return self.all or board.id in self.boards or not self.groups.isdisjoint(board.groups)


@dataclass(frozen=True, slots=True)
class CampaignSpec:
    """One campaign as rotation sees it; the window ``[starts_at, ends_at)`` is half-open."""

    id: int
    starts_at: datetime
    ends_at: datetime
    timezone: str
    daily_hours: tuple[DailyRange, ...]
    dwell_seconds: int
    priority: int
    order: str
    playlist: tuple[PlaylistEntry, ...]
    targets: Targets
    paused: bool = False

    def __post_init__(self) -> None:
        _require_int(self.id, "id")
        starts_at = require_aware(self.starts_at, "starts_at")
        ends_at = require_aware(self.ends_at, "ends_at")
        if ends_at <= starts_at:
            raise ValueError("ends_at must be after starts_at")
        for name, value in (("starts_at", starts_at), ("ends_at", ends_at)):
            if not _FIRST_YEAR <= value.year <= _LAST_YEAR:
                raise ValueError(f"{name} {value.isoformat()} is outside the years {_FIRST_YEAR}..{_LAST_YEAR} "
                                 "rotation can plan")
        object.__setattr__(self, "starts_at", starts_at)
        object.__setattr__(self, "ends_at", ends_at)
        zone(self.timezone)
        # Lists are accepted for convenience; tuples keep the spec hashable, which the
        # cycle caches rely on.
        object.__setattr__(self, "daily_hours", tuple(self.daily_hours))
        for item in self.daily_hours:
            if not isinstance(item, DailyRange):
                raise ValueError(f"daily_hours must hold DailyRange values, got {item!r}")
        if _require_int(self.dwell_seconds, "dwell_seconds") < 1:
            raise ValueError(f"dwell_seconds must be at least 1, got {self.dwell_seconds}")
        _require_int(self.priority, "priority")
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {self.order!r}")
        object.__setattr__(self, "playlist", tuple(self.playlist))
        for entry in self.playlist:
            if not isinstance(entry, PlaylistEntry):
                raise ValueError(f"playlist must hold PlaylistEntry values, got {entry!r}")
        if not isinstance(self.targets, Targets):
            raise ValueError(f"targets must be Targets, got {self.targets!r}")
        if not isinstance(self.paused, bool):
            raise ValueError(f"paused must be a bool, got {self.paused!r}")


@dataclass(frozen=True, slots=True)
class Assignment:
    """One entry of a board's timeline.

    ``starts_at``/``ends_at`` is the exact interval in which this board shows slot
    ``slot_index`` of the campaign (the slot clipped by the window, daily hours and higher
    campaigns); ``slot_starts_at``/``slot_ends_at`` are the campaign's unclipped slot bounds.
    """

    campaign_id: int
    slot_index: int
    slogan_id: int
    starts_at: datetime
    ends_at: datetime
    slot_starts_at: datetime
    slot_ends_at: datetime

    @property
    def key(self) -> tuple[int, int]:
        """``(campaign_id, slot_index)``: what the delivery layer de-duplicates on."""
        return (self.campaign_id, self.slot_index)
