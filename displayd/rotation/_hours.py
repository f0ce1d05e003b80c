"""Daily hours: parsing the API's ``{"start", "end"}`` ranges and judging local wall-clock time.

This module owns what "inside the campaign's daily hours" means. A board follows the wall
clock of the campaign's timezone: an instant is inside when the local time of day it shows
falls in one of the ranges. Across a DST change that means a range starting inside the
skipped hour begins when the clock jumps past it, and in the repeated hour the clock is
judged each time it is read.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from ._zones import zone

__all__ = [
    "DailyRange",
    "format_daily_hours",
    "parse_daily_hours",
]

MINUTES_PER_DAY = 1440
_HHMM = re.compile(r"([0-9]{2}):([0-9]{2})")
_KEYS = frozenset({"start", "end"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class DailyRange:
    """Local minutes ``[start_minute, end_minute)``; ``DailyRange(1320, 120)`` is 22:00–02:00.

    ``end_minute == 1440`` is "24:00"; an end before the start runs past midnight.
    """

    start_minute: int
    end_minute: int

    def __post_init__(self) -> None:
        for name in ("start_minute", "end_minute"):
            value = getattr(self, name)
            # bool is an int subclass; True as a minute is a caller bug, not 1.
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{name} must be an int, got {value!r}")
        if not 0 <= self.start_minute < MINUTES_PER_DAY:
            raise ValueError(f"start_minute must be 0..1439, got {self.start_minute}")
        if not 0 <= self.end_minute <= MINUTES_PER_DAY:
            raise ValueError(f"end_minute must be 0..1440, got {self.end_minute}")
        if self.start_minute == self.end_minute:
            raise ValueError("a daily range must not start and end at the same time")


def _parse_hhmm(value: object, *, field: str, index: int, allow_24: bool) -> int:
    if not isinstance(value, str):
        raise ValueError(f"daily_hours[{index}].{field} must be a string 'HH:MM', got {value!r}")
    match = _HHMM.fullmatch(value)
    if match is None:
        raise ValueError(f"daily_hours[{index}].{field} must look like 'HH:MM', got {value!r}")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if allow_24 and hours == 24 and minutes == 0:
        return MINUTES_PER_DAY
    if hours > 23 or minutes > 59:
        raise ValueError(f"daily_hours[{index}].{field} is not a time of day: {value!r}")
    return hours * 60 + minutes


def parse_daily_hours(items: Sequence[Any]) -> tuple[DailyRange, ...]:
    """``parse_daily_hours([{"start": "06:00", "end": "22:00"}])`` -> ``(DailyRange(360, 1320),)``.

    An empty list means the whole day and gives ``()``. Raises ValueError naming the bad item.
    """
    if not isinstance(items, (list, tuple)):
        raise ValueError(f"daily_hours must be a list, got {type(items).__name__}")
    ranges: list[DailyRange] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"daily_hours[{index}] must be an object with 'start' and 'end'")
        keys = set(item)
        if keys != _KEYS:
            missing = sorted(_KEYS - keys)
            extra = sorted(str(k) for k in keys - _KEYS)
            parts = []
            if missing:
                parts.append(f"missing {', '.join(missing)}")
            if extra:
                parts.append(f"unexpected {', '.join(extra)}")
            raise ValueError(f"daily_hours[{index}]: {'; '.join(parts)}")
        start = _parse_hhmm(item["start"], field="start", index=index, allow_24=False)
        end = _parse_hhmm(item["end"], field="end", index=index, allow_24=True)
        if start == end:
            raise ValueError(f"daily_hours[{index}]: start and end are both {item['start']!r}")
        ranges.append(DailyRange(start, end))
    return tuple(ranges)


def _format_minute(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def format_daily_hours(ranges: Iterable[DailyRange]) -> list[dict[str, str]]:
    """Inverse of :func:`parse_daily_hours`: ``[{"start": "06:00", "end": "24:00"}]``."""
    return [{"start": _format_minute(r.start_minute), "end": _format_minute(r.end_minute)} for r in ranges]


@lru_cache(maxsize=256)
def _minute_table(ranges: tuple[DailyRange, ...]) -> tuple[bool, ...]:
    # Ranges may overlap or wrap; a per-minute table makes their union trivial to read and
    # lets boundaries that two ranges share (23:00-24:00 + 00:00-01:00) disappear.
    table = [False] * MINUTES_PER_DAY
    for r in ranges:
        if r.start_minute < r.end_minute:
            spans = [(r.start_minute, r.end_minute)]
        else:
            spans = [(r.start_minute, MINUTES_PER_DAY), (0, r.end_minute)]
        for lo, hi in spans:
            for minute in range(lo, hi):
                table[minute] = True
    return tuple(table)


@lru_cache(maxsize=256)
def _boundary_minutes(ranges: tuple[DailyRange, ...]) -> tuple[int, ...]:
    table = _minute_table(ranges)
    return tuple(m for m in range(MINUTES_PER_DAY) if table[m] != table[m - 1])


def _local(t: datetime, tz: str) -> datetime:
    return t.astimezone(zone(tz))


def in_daily_hours(ranges: tuple[DailyRange, ...], tz: str, t: datetime) -> bool:
    """Whether the wall clock of ``tz`` at instant ``t`` reads a time inside ``ranges``."""
    if not ranges:
        return True
    local = _local(t, tz)
    return _minute_table(ranges)[local.hour * 60 + local.minute]


def _whole_seconds(t: datetime) -> int:
    return (t - _EPOCH) // _SECOND


def _first_offset_change(tz: str, lo: datetime, hi: datetime) -> datetime:
    """The first whole second in ``(lo, hi]`` whose UTC offset differs from ``lo``'s.

    The caller knows the offsets at ``lo`` and ``hi`` differ; zoneinfo has no public list of
    transitions, and tzdata transitions fall on whole seconds, so bisect on seconds.
    """
    offset = _local(lo, tz).utcoffset()
    lo_s, hi_s = _whole_seconds(lo), -(-(hi - _EPOCH) // _SECOND)
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if _local(_EPOCH + mid * _SECOND, tz).utcoffset() == offset:
            lo_s = mid
        else:
            hi_s = mid
    return _EPOCH + hi_s * _SECOND


def next_hours_change(ranges: tuple[DailyRange, ...], tz: str, t: datetime) -> datetime | None:
    """The first instant after ``t`` at which :func:`in_daily_hours` changes, or None if never.

    Between two UTC-offset changes the wall clock runs linearly, so the next change is where
    it next reads a boundary minute, unless a DST jump comes first and moves the clock
    across a boundary (or into a different range) by itself.
    """
    boundaries = _boundary_minutes(ranges)
    if not boundaries:
        return None
    inside = in_daily_hours(ranges, tz, t)
    current = t
    # Each pass either returns or steps over one offset change; two suffice in any real
    # zone, the bound only guards against a pathological tz database.
    for _ in range(16):
        local = _local(current, tz)
        offset = local.utcoffset()
        assert offset is not None
        wall = local.replace(tzinfo=None)
        minute_of_day = wall.hour * 60 + wall.minute
        index = bisect_right(boundaries, minute_of_day)
        midnight = wall.replace(hour=0, minute=0, second=0, microsecond=0)
        if index < len(boundaries):
            target_wall = midnight + timedelta(minutes=boundaries[index])
        else:
            target_wall = midnight + timedelta(days=1, minutes=boundaries[0])
        candidate = (target_wall - offset).replace(tzinfo=UTC)
        if _local(candidate, tz).utcoffset() == offset:
            return candidate
        jump = _first_offset_change(tz, current, candidate)
        if in_daily_hours(ranges, tz, jump) != inside:
            return jump
        current = jump
    raise RuntimeError(f"no daily-hours change found after {t.isoformat()} in {tz}")
