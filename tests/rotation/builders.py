"""Small builders shared by the rotation tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from displayd.rotation import BoardSpec, CampaignSpec, DailyRange, PlaylistEntry, Targets

SLOGANS = (
    "Nhiệt liệt chào mừng 70 năm Chiến thắng Điện Biên Phủ (07/5/1954 - 07/5/2024)!",
    "Chiến thắng Điện Biên Phủ - Lừng lẫy năm châu, chấn động địa cầu!",
    "Chín năm làm một Điện Biên - Nên vành hoa đỏ, nên thiên sử vàng!",
)

BOARD = BoardSpec("so-sanh-chinh", groups=frozenset({"so-tttt"}))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def playlist(*weights: int, first_id: int = 1) -> tuple[PlaylistEntry, ...]:
    return tuple(PlaylistEntry(first_id + i, w) for i, w in enumerate(weights))


def campaign(
    id: int = 1,
    *,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    tz: str = "Asia/Ho_Chi_Minh",
    daily_hours: Sequence[DailyRange] = (),
    dwell: int = 30,
    priority: int = 100,
    order: str = "sequential",
    weights: Sequence[int] = (1, 1, 1),
    entries: Sequence[PlaylistEntry] | None = None,
    targets: Targets | None = None,
    paused: bool = False,
) -> CampaignSpec:
    return CampaignSpec(
        id=id,
        starts_at=starts_at or utc(2024, 5, 1),
        ends_at=ends_at or utc(2024, 6, 1),
        timezone=tz,
        daily_hours=tuple(daily_hours),
        dwell_seconds=dwell,
        priority=priority,
        order=order,
        playlist=tuple(entries) if entries is not None else playlist(*weights, first_id=10 * id),
        targets=targets or Targets(all=True),
        paused=paused,
    )
