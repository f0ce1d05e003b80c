"""Precedence: which campaign a board shows at an instant.

This module owns "active" (window, daily hours, not paused, something to show) and the
order among active campaigns: highest priority, then the later ``starts_at``, then the
higher id.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ._hours import in_daily_hours
from ._model import BoardSpec, CampaignSpec, require_aware

__all__ = [
    "is_active",
    "precedence_key",
    "winner",
]


def precedence_key(campaign: CampaignSpec) -> tuple[int, datetime, int]:
    """Larger wins: ``max(active, key=precedence_key)``."""
    return (campaign.priority, campaign.starts_at, campaign.id)


def can_show(campaign: CampaignSpec) -> bool:
    """Whether the campaign could ever be active (not paused, non-empty playlist)."""
    return not campaign.paused and bool(campaign.playlist)


def is_active(campaign: CampaignSpec, t: datetime) -> bool:
    """Window ``[starts_at, ends_at)`` and the daily hours (local wall clock of
    ``campaign.timezone``) contain ``t``, the campaign is not paused and has a playlist."""
    t = require_aware(t, "t")
    return (
        can_show(campaign)
        and campaign.starts_at <= t < campaign.ends_at
        and in_daily_hours(campaign.daily_hours, campaign.timezone, t)
    )


def winner(campaigns: Iterable[CampaignSpec], board: BoardSpec, t: datetime) -> CampaignSpec | None:
    """The campaign ``board`` shows at ``t``, or None when the board is idle."""
    t = require_aware(t, "t")
    active = [c for c in campaigns if c.targets.includes(board) and is_active(c, t)]
    return max(active, key=precedence_key, default=None)
