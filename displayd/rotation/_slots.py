"""Slots: the dwell intervals a campaign's window is cut into, and which slogan each shows.

This module owns the arithmetic ``slot k = [starts_at + k·dwell, starts_at + (k+1)·dwell)``
(the last slot clipped at ``ends_at``) and the mapping of slot k on a board with an offset
to an entry of a cycle.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ._cycles import cycle, weighted_cycle
from ._model import CampaignSpec, require_aware

__all__ = [
    "slogan_for_slot",
    "slot_bounds",
    "slot_index_at",
]


def _dwell(campaign: CampaignSpec) -> timedelta:
    return timedelta(seconds=campaign.dwell_seconds)


def slot_index_at(campaign: CampaignSpec, t: datetime) -> int | None:
    """The k whose slot contains ``t``, or None outside ``[starts_at, ends_at)``.

    Ignores daily hours and pausing: slots are numbered through the whole window so a
    slot index means the same instant whether or not the campaign was on air.
    """
    t = require_aware(t, "t")
    if not campaign.starts_at <= t < campaign.ends_at:
        return None
    return (t - campaign.starts_at) // _dwell(campaign)


def slot_bounds(campaign: CampaignSpec, k: int) -> tuple[datetime, datetime]:
    """``(starts_at + k·dwell, min(starts_at + (k+1)·dwell, ends_at))``; ValueError for a
    k outside the window."""
    dwell = _dwell(campaign)
    # Compared as a count before any arithmetic: `starts_at + k·dwell` for a k far outside the
    # window would overflow datetime (OverflowError) rather than say what is wrong.
    slots = -(-(campaign.ends_at - campaign.starts_at) // dwell)
    if not 0 <= k < slots:
        raise ValueError(f"slot {k} is outside campaign {campaign.id}'s window")
    start = campaign.starts_at + k * dwell
    return start, min(start + dwell, campaign.ends_at)


def slogan_for_slot(campaign: CampaignSpec, k: int, board_offset: int) -> int:
    """The slogan id a board with ``board_offset`` shows in slot ``k``.

    Position ``p = k + board_offset`` in the endless sequence of cycles: entry ``p mod L``
    of cycle ``p // L`` (floor division, so a negative offset reads earlier cycles).
    """
    length = len(weighted_cycle(campaign.playlist))
    if length == 0:
        raise ValueError(f"campaign {campaign.id} has an empty playlist")
    cycle_number, entry = divmod(k + board_offset, length)
    return cycle(campaign, cycle_number)[entry]
