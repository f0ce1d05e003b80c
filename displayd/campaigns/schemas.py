"""Request and response bodies of `/api/v1/campaigns`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

from displayd import rotation
from displayd.schemas import DB_INT_MAX, SPAN, BoundedUTCDatetime, Page, StrictModel

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
# The characters of IANA names (`America/Argentina/Buenos_Aires`, `Etc/GMT+7`); anything else,
# a NUL byte above all (PostgreSQL refuses to store one), is not a time zone.
TIMEZONE_NAME = r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*$"


def _iana(name: str) -> str:
    rotation.zone(name)  # ValueError for `localtime`, `Factory`, `posixrules` and unknown names
    return name


# An IANA tz database name; checked by pattern first, so nothing odd reaches the file system.
TimeZoneName = Annotated[str, Field(pattern=TIMEZONE_NAME, max_length=64), AfterValidator(_iana)]


class DailyHours(StrictModel):
    """A daily range in the campaign's local time; `end` is exclusive, may be `24:00`, and
    a range whose end is before its start runs past midnight."""

    start: str = Field(description="Local start, `HH:MM`.", examples=["06:00"])
    end: str = Field(description="Local end (exclusive), `HH:MM` or `24:00`.", examples=["22:00"])


class PlaylistItem(StrictModel):
    """An approved slogan and how many times it appears per cycle."""

    slogan_id: int = Field(ge=1, le=DB_INT_MAX, description="An approved slogan's id.")
    weight: int = Field(1, ge=1, le=10, description="Appearances per cycle, 1..10.")


class Targets(StrictModel):
    """Exactly one of: `{"all": true}`, `{"groups": [...]}`, `{"boards": [...]}`."""

    all: bool | None = Field(None, description="Every board.")
    groups: list[str] | None = Field(None, max_length=200, description="Boards in any of these groups.")
    boards: list[str] | None = Field(None, max_length=10000, description="These boards, by id.")


class CampaignCreate(StrictModel):
    """A new campaign."""

    name: str = Field(description="Name, 1..200 characters.")
    starts_at: BoundedUTCDatetime = Field(description=f"Window start (inclusive), ISO 8601 with offset, within {SPAN}.")
    ends_at: BoundedUTCDatetime = Field(description=f"Window end (exclusive), after `starts_at`, within {SPAN}.")
    timezone: TimeZoneName = Field(DEFAULT_TIMEZONE, description="IANA time zone of `daily_hours` and schedules shown.")
    daily_hours: list[DailyHours] = Field(default_factory=list, max_length=24,
                                          description="Local time ranges; empty means the whole day.")
    dwell_seconds: int = Field(30, ge=5, le=3600, description="Seconds each slot lasts, 5..3600.")
    priority: int = Field(100, ge=0, le=1000, description="Higher wins where campaigns overlap, 0..1000.")
    order: Literal["sequential", "shuffle"] = Field("sequential", description="Cycle order.")
    playlist: list[PlaylistItem] = Field(default_factory=list, max_length=500,
                                         description="Approved slogans with weights.")
    targets: Targets = Field(description="Which boards run it.")
    paused: bool = Field(False, description="Create it paused.")


class CampaignUpdate(StrictModel):
    """Changes to a campaign; omitted fields stay. Takes effect from the next slot."""

    name: str | None = Field(None, description="Name.")
    starts_at: BoundedUTCDatetime | None = Field(None, description=f"Window start, within {SPAN}.")
    ends_at: BoundedUTCDatetime | None = Field(None, description=f"Window end, within {SPAN}.")
    timezone: TimeZoneName | None = Field(None, description="IANA time zone.")
    daily_hours: list[DailyHours] | None = Field(None, max_length=24, description="Local time ranges.")
    dwell_seconds: int | None = Field(None, ge=5, le=3600, description="Seconds per slot.")
    priority: int | None = Field(None, ge=0, le=1000, description="Priority.")
    order: Literal["sequential", "shuffle"] | None = Field(None, description="Cycle order.")
    playlist: list[PlaylistItem] | None = Field(None, max_length=500, description="Replaces the playlist.")
    targets: Targets | None = Field(None, description="Replaces the targets.")


class CampaignOut(BaseModel):
    """A campaign as stored, with its state now."""

    id: int = Field(description="Campaign id.")
    name: str = Field(description="Name.")
    starts_at: datetime = Field(description="Window start (UTC).")
    ends_at: datetime = Field(description="Window end, exclusive (UTC).")
    timezone: str = Field(description="IANA time zone.")
    daily_hours: list[DailyHours] = Field(description="Local time ranges; empty means the whole day.")
    dwell_seconds: int = Field(description="Seconds per slot.")
    priority: int = Field(description="Priority.")
    order: str = Field(description="`sequential` or `shuffle`.")
    playlist: list[PlaylistItem] = Field(description="Slogans and weights.")
    targets: dict[str, object] = Field(description="Which boards run it.")
    paused: bool = Field(description="Paused campaigns show nowhere.")
    state: Literal["scheduled", "running", "paused", "ended"] = Field(
        description="`scheduled` (window not started), `running`, `paused` or `ended`.")
    created_by: str = Field(description="Who created it.")
    created_at: datetime = Field(description="Created (UTC).")
    updated_at: datetime = Field(description="Last change (UTC).")


CampaignPage = Page[CampaignOut]
