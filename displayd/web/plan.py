"""A week's plan per campaign: pure arithmetic over campaign rows, no I/O.

    week_plans(campaigns, slogans, now)                         # this week
    week_plans(campaigns, slogans, now, day=date(2024, 5, 7))   # the week holding 07/5/2024

For every campaign that runs during the week (Monday–Sunday on the campaign's own wall
clock; this week: running or starting, not already over), the office sees its settings,
the cycle as boards will walk it, and per day the local hours it runs and roughly how many
slots that makes. It is computed from the campaign
fields alone (window, daily hours, dwell), so it costs nothing per board; it does not
account for higher-priority campaigns pre-empting it on a particular board — the per-board
`/schedule` is the exact answer for that.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from displayd import rotation
from displayd.rotation import DailyRange, PlaylistEntry, parse_daily_hours, weighted_cycle

WEEKDAYS = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ Nhật")
WHOLE_DAY = (DailyRange(0, 1440),)


class CampaignLike(Protocol):
    """The campaign fields the plan reads (the ORM row has them)."""

    id: int
    name: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    daily_hours: list[dict[str, str]]
    dwell_seconds: int
    priority: int
    order: str
    playlist: list[dict[str, int]]
    targets: dict[str, Any]
    paused: bool


@dataclass(frozen=True)
class DayPlan:
    label: str            # "Thứ Ba 07/05"
    hours: list[str]      # local "06:00–22:00" runs, clipped to the window
    slots: int            # about this many slots (seconds run / dwell)
    today: bool


@dataclass(frozen=True)
class CycleEntry:
    slogan_id: int
    text: str
    weight: int


@dataclass(frozen=True)
class CampaignWeek:
    id: int
    name: str
    state: str            # "running" | "scheduled" | "paused" | "ended"
    timezone: str
    window: str           # local, "01/03/2024 00:00 → 01/06/2024 00:00"
    daily_hours: str      # "06:00–22:00" or "cả ngày"
    dwell_seconds: int
    priority: int
    order: str
    targets: str
    playlist: list[CycleEntry]
    cycle: list[int]      # slogan ids in the order a board walks them (sequential order)
    days: list[DayPlan]
    week: str             # "06/05 – 12/05/2024"


def _fmt(t: datetime) -> str:
    return t.strftime("%d/%m/%Y %H:%M")


def _hhmm(t: datetime, day: date) -> str:
    # A run ending at the next midnight reads "24:00", as the office writes daily hours.
    return "24:00" if t.date() > day and t.time() == time(0) else t.strftime("%H:%M")


def describe_targets(targets: Mapping[str, Any]) -> str:
    if targets.get("all"):
        return "Tất cả bảng"
    if targets.get("groups"):
        return "Nhóm: " + ", ".join(str(g) for g in targets["groups"])
    if targets.get("boards"):
        return "Bảng: " + ", ".join(str(b) for b in targets["boards"])
    return "—"


def _day_plan(campaign: CampaignLike, zone: ZoneInfo, day: date, ranges: Sequence[DailyRange],
              today: date) -> DayPlan:
    midnight = datetime.combine(day, time(0), tzinfo=zone)
    hours: list[str] = []
    seconds = 0.0
    for r in ranges:
        # Wall-clock arithmetic on an aware datetime, then to UTC: DST-correct enough for a plan.
        end_minute = r.end_minute if r.end_minute > r.start_minute else r.end_minute + 1440
        start = max((midnight + timedelta(minutes=r.start_minute)).astimezone(UTC), campaign.starts_at)
        end = min((midnight + timedelta(minutes=end_minute)).astimezone(UTC), campaign.ends_at)
        if end <= start:
            continue
        seconds += (end - start).total_seconds()
        local_start, local_end = start.astimezone(zone), end.astimezone(zone)
        hours.append(f"{_hhmm(local_start, day)}–{_hhmm(local_end, day)}")
    slots = 0 if campaign.paused else int(seconds // campaign.dwell_seconds)
    return DayPlan(label=f"{WEEKDAYS[day.weekday()]} {day:%d/%m}", hours=hours, slots=slots, today=day == today)


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def week_plan(campaign: CampaignLike, slogans: Mapping[int, str], now: datetime,
              day: date | None = None) -> CampaignWeek | None:
    """The campaign's plan for the week holding `day` (default: today) on its wall clock; None
    if it does not run that week (this week: also None once it is over)."""
    zone = rotation.zone(campaign.timezone)
    today = now.astimezone(zone).date()
    monday = monday_of(day or today)
    week_start = datetime.combine(monday, time(0), tzinfo=zone).astimezone(UTC)
    week_end = datetime.combine(monday + timedelta(days=7), time(0), tzinfo=zone).astimezone(UTC)
    shown_from = week_start if day is not None else max(week_start, now)
    if campaign.ends_at <= shown_from or campaign.starts_at >= week_end:
        return None  # not that week (or, this week, over already)
    try:
        ranges = parse_daily_hours(campaign.daily_hours) or WHOLE_DAY
    except ValueError:
        ranges = WHOLE_DAY
    entries = [PlaylistEntry(slogan_id=int(p["slogan_id"]), weight=int(p.get("weight", 1)))
               for p in campaign.playlist]
    state = ("paused" if campaign.paused else "ended" if campaign.ends_at <= now
             else "running" if campaign.starts_at <= now else "scheduled")
    return CampaignWeek(
        id=campaign.id, name=campaign.name, state=state, timezone=campaign.timezone,
        window=f"{_fmt(campaign.starts_at.astimezone(zone))} → {_fmt(campaign.ends_at.astimezone(zone))}",
        daily_hours=", ".join(f"{r.start_minute // 60:02d}:{r.start_minute % 60:02d}–"
                              f"{r.end_minute // 60:02d}:{r.end_minute % 60:02d}" for r in ranges)
        if ranges != WHOLE_DAY else "cả ngày",
        dwell_seconds=campaign.dwell_seconds, priority=campaign.priority, order=campaign.order,
        targets=describe_targets(campaign.targets),
        playlist=[CycleEntry(e.slogan_id, slogans.get(e.slogan_id, f"(khẩu hiệu #{e.slogan_id} không còn hiệu lực)"),
                             e.weight) for e in entries],
        cycle=list(weighted_cycle(entries)) if entries else [],
        days=[_day_plan(campaign, zone, monday + timedelta(days=n), ranges, today) for n in range(7)],
        week=f"{monday:%d/%m} – {monday + timedelta(days=6):%d/%m/%Y}",
    )


def week_plans(campaigns: Sequence[CampaignLike], slogans: Mapping[int, str], now: datetime,
               on_error: Callable[[int, Exception], None] | None = None,
               day: date | None = None) -> list[CampaignWeek]:
    """Running first (by priority, highest first), then upcoming ones by start. A campaign whose
    plan raises is left out and handed to `on_error`: the others are still shown."""
    plans: list[CampaignWeek] = []
    for campaign in campaigns:
        try:
            plan = week_plan(campaign, slogans, now, day)
        except Exception as exc:
            if on_error is None:
                raise
            on_error(campaign.id, exc)
            continue
        if plan is not None:
            plans.append(plan)
    starts = {c.id: c.starts_at for c in campaigns}
    return sorted(plans, key=lambda p: (p.state != "running", -p.priority, starts[p.id], p.id))
