"""From stored campaigns to rotation's plain values, and the two rules rotation leaves to us.

- A retirement or a pause takes effect at once: retired slogans are dropped from every
  playlist and paused campaigns are inactive, whatever the time.
- An edit takes effect from the next slot: a campaign edited while live keeps, in
  `previous`, the fields that were live, and until the end of the slot that was running at
  `edited_at` (the *switch*), every process plans with them. A second edit in the same
  slot keeps the first `previous`, so the switch does not move.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from displayd.db.models import Campaign
from displayd.rotation import (
    Assignment,
    BoardSpec,
    CampaignSpec,
    PlaylistEntry,
    Targets,
    assignment_at,
    next_change,
    parse_daily_hours,
    slot_bounds,
    slot_index_at,
    timeline,
)

SPEC_FIELDS = ("starts_at", "ends_at", "timezone", "daily_hours", "dwell_seconds", "priority", "order",
               "playlist", "targets")


def spec_fields(campaign: Campaign) -> dict[str, Any]:
    """The fields that decide what boards show, as JSON (what `previous` stores)."""
    return {
        "starts_at": campaign.starts_at.isoformat(), "ends_at": campaign.ends_at.isoformat(),
        "timezone": campaign.timezone, "daily_hours": campaign.daily_hours,
        "dwell_seconds": campaign.dwell_seconds, "priority": campaign.priority, "order": campaign.order,
        "playlist": campaign.playlist, "targets": campaign.targets,
    }


def build_spec(campaign_id: int, fields: dict[str, Any], *, paused: bool, approved: Collection[int]) -> CampaignSpec:
    """A CampaignSpec; slogans not in `approved` (retired since) are left out of the playlist."""
    starts_at, ends_at = fields["starts_at"], fields["ends_at"]
    targets = fields["targets"]
    return CampaignSpec(
        id=campaign_id,
        starts_at=datetime.fromisoformat(starts_at) if isinstance(starts_at, str) else starts_at,
        ends_at=datetime.fromisoformat(ends_at) if isinstance(ends_at, str) else ends_at,
        timezone=fields["timezone"],
        daily_hours=parse_daily_hours(fields["daily_hours"]),
        dwell_seconds=fields["dwell_seconds"],
        priority=fields["priority"],
        order=fields["order"],
        playlist=tuple(PlaylistEntry(slogan_id=e["slogan_id"], weight=e["weight"])
                       for e in fields["playlist"] if e["slogan_id"] in approved),
        targets=Targets(all=bool(targets.get("all")), groups=frozenset(targets.get("groups") or ()),
                        boards=frozenset(targets.get("boards") or ())),
        paused=paused,
    )


def switch_time(previous: CampaignSpec, edited_at: datetime) -> datetime | None:
    """End of `previous`'s slot that was running at `edited_at`; None if none was."""
    index = slot_index_at(previous, edited_at)
    return None if index is None else slot_bounds(previous, index)[1]


@dataclass(frozen=True, slots=True)
class CampaignVersions:
    """A campaign as planned: `before` until `switch_at`, `current` from then on."""

    current: CampaignSpec
    before: CampaignSpec | None = None
    switch_at: datetime | None = None

    def at(self, t: datetime) -> CampaignSpec:
        if self.before is not None and self.switch_at is not None and t < self.switch_at:
            return self.before
        return self.current


def versions_of(campaign: Campaign, approved: Collection[int]) -> CampaignVersions:
    current = build_spec(campaign.id, spec_fields(campaign), paused=campaign.paused, approved=approved)
    if campaign.previous is None or campaign.edited_at is None:
        return CampaignVersions(current)
    before = build_spec(campaign.id, campaign.previous, paused=campaign.paused, approved=approved)
    switch_at = switch_time(before, campaign.edited_at)
    return CampaignVersions(current, before, switch_at) if switch_at is not None else CampaignVersions(current)


def specs_at(campaigns: Sequence[CampaignVersions], t: datetime) -> list[CampaignSpec]:
    return [c.at(t) for c in campaigns]


def _switches(campaigns: Sequence[CampaignVersions], start: datetime, end: datetime) -> list[datetime]:
    return sorted({c.switch_at for c in campaigns
                   if c.switch_at is not None and c.before is not None and start < c.switch_at < end})


def board_assignment(campaigns: Sequence[CampaignVersions], board: BoardSpec, t: datetime) -> Assignment | None:
    """What the board shows at t, its bounds cut where a pending edit changes it."""
    found = assignment_at(specs_at(campaigns, t), board, t)
    if found is None:
        return None
    starts_at, ends_at = found.starts_at, found.ends_at
    for switch in _switches(campaigns, starts_at, ends_at):
        side = switch - _INSTANT if switch <= t else switch
        other = assignment_at(specs_at(campaigns, side), board, side)
        if other is None or not _same_showing(found, other):
            if switch <= t:
                starts_at = max(starts_at, switch)
            else:
                ends_at = min(ends_at, switch)
    if (starts_at, ends_at) == (found.starts_at, found.ends_at):
        return found
    return replace(found, starts_at=starts_at, ends_at=ends_at)


_INSTANT = timedelta(microseconds=1)


def _same_showing(a: Assignment, b: Assignment) -> bool:
    return (a.campaign_id, a.slot_index, a.slogan_id) == (b.campaign_id, b.slot_index, b.slogan_id)


def board_next_change(campaigns: Sequence[CampaignVersions], board: BoardSpec, t: datetime) -> datetime | None:
    change = next_change(specs_at(campaigns, t), board, t)
    pending = [c.switch_at for c in campaigns if c.switch_at is not None and c.before is not None and c.switch_at > t]
    candidates = [x for x in [change, *pending] if x is not None]
    return min(candidates) if candidates else None


def board_timeline(
    campaigns: Sequence[CampaignVersions], board: BoardSpec, start: datetime, end: datetime
) -> Iterator[Assignment]:
    """The board's assignments over [start, end), honouring pending edits."""
    bounds = [start, *_switches(campaigns, start, end), end]
    held: Assignment | None = None
    for piece_start, piece_end in itertools.pairwise(bounds):
        specs = specs_at(campaigns, piece_start)
        for item in timeline(specs, board, piece_start, piece_end):
            # Clip to the piece: the specs differ on the other side of a switch.
            item = _clip(item, piece_start, piece_end, first=piece_start == start, last=piece_end == end)
            if held is not None and _continues(held, item):
                # The slot may have other bounds on this side of the switch (a new dwell): the
                # joined showing runs from the first one's slot start to the last one's end.
                held = replace(held, ends_at=item.ends_at, slot_ends_at=item.slot_ends_at)
                continue
            if held is not None:
                yield held
            held = item
    if held is not None:
        yield held


def _continues(a: Assignment, b: Assignment) -> bool:
    """`b` is the same showing as `a`, cut only by a switch that changed nothing for it."""
    return _same_showing(a, b) and a.ends_at == b.starts_at


def _clip(item: Assignment, start: datetime, end: datetime, *, first: bool, last: bool) -> Assignment:
    starts_at = item.starts_at if first else max(item.starts_at, start)
    ends_at = item.ends_at if last else min(item.ends_at, end)
    if starts_at == item.starts_at and ends_at == item.ends_at:
        return item
    return replace(item, starts_at=starts_at, ends_at=ends_at)
