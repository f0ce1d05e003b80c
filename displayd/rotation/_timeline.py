"""Timelines: what a board shows over an interval, and when that next changes.

This module owns the walk from change point to change point. The board's content can only
change at a slot boundary of the campaign it shows, at a window start or end of any
campaign targeting it, or where some campaign's daily hours begin or end; between those
instants it is constant. So the cost of a timeline is proportional to the number of
assignments and change points in it, never to its length in seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta

from ._hours import in_daily_hours, next_hours_change
from ._model import Assignment, BoardSpec, CampaignSpec, require_aware
from ._precedence import can_show, precedence_key
from ._slots import slogan_for_slot

__all__ = [
    "assignment_at",
    "next_change",
    "timeline",
]

# The smallest step a datetime can take: [t, t + _TICK) is "the instant t".
_TICK = timedelta(microseconds=1)

# (index into the relevant campaigns or None when idle, slot index, start, end)
_Run = tuple[int | None, int, datetime, datetime | None]


def _relevant(campaigns: Iterable[CampaignSpec], board: BoardSpec) -> list[CampaignSpec]:
    return [c for c in campaigns if can_show(c) and c.targets.includes(board)]


def _activity(campaign: CampaignSpec, t: datetime) -> tuple[bool, datetime | None]:
    """Whether the campaign is active at ``t`` and the first later instant that may change."""
    if t < campaign.starts_at:
        return False, campaign.starts_at
    if t >= campaign.ends_at:
        return False, None
    hours_change = next_hours_change(campaign.daily_hours, campaign.timezone, t)
    until = campaign.ends_at if hours_change is None else min(campaign.ends_at, hours_change)
    return in_daily_hours(campaign.daily_hours, campaign.timezone, t), until


def _pieces(relevant: Sequence[CampaignSpec], t0: datetime) -> Iterator[_Run]:
    """Contiguous pieces from ``t0`` on, each with one winner and one slot; neighbours may
    repeat the same (winner, slot) when a change point turned out not to matter."""
    states = [_activity(c, t0) for c in relevant]
    current = t0
    while True:
        for i, (_, until) in enumerate(states):
            if until is not None and until <= current:
                states[i] = _activity(relevant[i], current)
        horizon = min((until for _, until in states if until is not None), default=None)
        best: int | None = None
        for i, (active, _) in enumerate(states):
            if active and (best is None or precedence_key(relevant[i]) > precedence_key(relevant[best])):
                best = i
        if best is None:
            yield (None, 0, current, horizon)
            if horizon is None:
                return
            current = horizon
            continue
        # An active campaign's window end is in the states, so horizon is set here.
        assert horizon is not None
        campaign = relevant[best]
        dwell = timedelta(seconds=campaign.dwell_seconds)
        k = (current - campaign.starts_at) // dwell
        # Nothing but this campaign's own slot boundaries can change before horizon, so
        # walk its slots without re-reading the other campaigns.
        while current < horizon:
            end = min(campaign.starts_at + (k + 1) * dwell, horizon)
            yield (best, k, current, end)
            current = end
            k += 1


def _runs(relevant: Sequence[CampaignSpec], t0: datetime) -> Iterator[_Run]:
    """Maximal runs of one (winner, slot), or of idleness, from ``t0`` on."""
    pending: _Run | None = None
    for piece in _pieces(relevant, t0):
        if pending is not None and pending[:2] == piece[:2] and pending[3] == piece[2]:
            pending = (pending[0], pending[1], pending[2], piece[3])
            continue
        if pending is not None:
            yield pending
        pending = piece
    if pending is not None:
        yield pending


def _assignments(
    relevant: Sequence[CampaignSpec], board: BoardSpec, start: datetime, end: datetime
) -> Iterator[Assignment]:
    scan_from = start
    first = max((c for c in relevant if _activity(c, start)[0]), key=precedence_key, default=None)
    if first is not None:
        # Start from the slot's beginning so the first assignment carries its true start,
        # which may lie before the queried range.
        dwell = timedelta(seconds=first.dwell_seconds)
        scan_from = first.starts_at + ((start - first.starts_at) // dwell) * dwell
    for index, k, run_start, run_end in _runs(relevant, scan_from):
        if run_start >= end:
            return
        if index is None or (run_end is not None and run_end <= start):
            continue
        assert run_end is not None
        campaign = relevant[index]
        dwell = timedelta(seconds=campaign.dwell_seconds)
        slot_start = campaign.starts_at + k * dwell
        yield Assignment(
            campaign_id=campaign.id,
            slot_index=k,
            slogan_id=slogan_for_slot(campaign, k, board.offset),
            starts_at=run_start,
            ends_at=run_end,
            slot_starts_at=slot_start,
            slot_ends_at=min(slot_start + dwell, campaign.ends_at),
        )


def timeline(
    campaigns: Iterable[CampaignSpec], board: BoardSpec, start: datetime, end: datetime
) -> Iterator[Assignment]:
    """The board's assignments overlapping ``[start, end)``, in order, idle gaps omitted.

    Each Assignment's ``starts_at``/``ends_at`` is the exact interval in which the board
    shows that (campaign, slot); the first and last may reach outside ``[start, end)``.
    A slot interrupted by a higher campaign shorter than one dwell and resumed within the
    same slot yields a second Assignment with the same ``key`` (campaign_id, slot_index);
    the delivery layer de-duplicates on that key. ``end <= start`` gives nothing.

    ``list(timeline(campaigns, board, day, day + timedelta(days=1)))`` is a day's plan.
    """
    start = require_aware(start, "start")
    end = require_aware(end, "end")
    relevant = _relevant(campaigns, board)
    if end <= start or not relevant:
        return iter(())
    return _assignments(relevant, board, start, end)


def assignment_at(campaigns: Iterable[CampaignSpec], board: BoardSpec, t: datetime) -> Assignment | None:
    """What the board shows at ``t`` (with the exact interval it shows it), or None if idle."""
    t = require_aware(t, "t")
    return next(timeline(campaigns, board, t, t + _TICK), None)


def next_change(campaigns: Iterable[CampaignSpec], board: BoardSpec, t: datetime) -> datetime | None:
    """The earliest instant after ``t`` at which :func:`assignment_at` differs, or None.

    While showing, that is the end of the current assignment; while idle, the start of the
    next one (None when no targeting campaign will ever be active again).
    """
    t = require_aware(t, "t")
    relevant = _relevant(campaigns, board)
    current = next(iter(_assignments(relevant, board, t, t + _TICK)), None) if relevant else None
    if current is not None:
        return current.ends_at
    for index, _, run_start, _ in _runs(relevant, t):
        if index is not None:
            return run_start
    return None
