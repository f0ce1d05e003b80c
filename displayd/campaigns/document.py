"""`displayd campaigns import FILE`: the document's own plan as campaigns.

A slogans file (such as `slogans/huong-dan-101-muc-IV.yaml`) carries, beside its slogans, the
plan the document sets out:

    campaign:
      name: "Kỷ niệm 70 năm Chiến thắng Điện Biên Phủ"
      theme: "CHIẾN THẮNG ĐIỆN BIÊN PHỦ - SỨC MẠNH VIỆT NAM - TẦM VÓC THỜI ĐẠI"
      window: {starts_on: 2024-01-01, ends_on: 2024-12-31}
      peak: {starts_on: 2024-03-01, ends_on: 2024-05-31}
      anniversary: 2024-05-07
      timezone: "Asia/Ho_Chi_Minh"

It implies three campaigns on every board, each over the section's approved slogans, that
precedence stacks (the highest priority running wins):

| campaign | window (local days, inclusive) | priority | weights |
|---|---|---|---|
| `<name>` | `window` | 100 | 1 each |
| `<name> — cao điểm` | `peak` | 200 | 1 each, the theme 2 |
| `<name> — ngày kỷ niệm <dd/m>` | the anniversary day | 300 | 1 each, the theme and slogan 1: 3 |

The file's slogans are imported first (as `displayd slogans import` does). A campaign whose
name already exists is left as it is, so running the command twice changes nothing; an
office that edited the imported campaigns keeps its edits.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from displayd.auth.roles import Principal
from displayd.campaigns import service
from displayd.catalog import importer
from displayd.catalog import service as catalog
from displayd.db.models import Campaign
from displayd.errors import InvalidInput
from displayd.rotation import zone

__all__ = ["PlanImport", "PlannedCampaign", "import_plan", "planned_campaigns"]

BASE_PRIORITY, PEAK_PRIORITY, ANNIVERSARY_PRIORITY = 100, 200, 300
PEAK_THEME_WEIGHT, ANNIVERSARY_WEIGHT = 2, 3
DWELL_SECONDS = 30


@dataclass(frozen=True)
class PlannedCampaign:
    name: str
    starts_on: dt.date
    ends_on: dt.date  # inclusive, as the document writes it
    priority: int
    weighted: dict[str, int]  # slogan text -> weight where not 1


@dataclass
class PlanImport:
    created: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    slogans: importer.ImportResult = field(default_factory=importer.ImportResult)


def _date(value: Any, where: str) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise InvalidInput(f"{where} must be a date (YYYY-MM-DD)")


def _span(raw: Any, where: str) -> tuple[dt.date, dt.date]:
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where} must be {{starts_on, ends_on}}")
    starts, ends = _date(raw.get("starts_on"), f"{where}.starts_on"), _date(raw.get("ends_on"), f"{where}.ends_on")
    if ends < starts:
        raise InvalidInput(f"{where} ends before it starts")
    return starts, ends


def planned_campaigns(path: Path) -> tuple[str, list[PlannedCampaign]]:
    """(time zone, campaigns) the file's `campaign:` block implies; InvalidInput names the problem."""
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InvalidInput(f"{path}: cannot read: {exc}") from None
    plan = data.get("campaign") if isinstance(data, dict) else None
    if not isinstance(plan, dict):
        raise InvalidInput(f"{path}: no `campaign:` block")
    name = plan.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"{path}: campaign.name is missing")
    name = name.strip()
    timezone = plan.get("timezone", "Asia/Ho_Chi_Minh")
    try:
        zone(timezone)
    except (TypeError, ValueError):
        raise InvalidInput(f"{path}: campaign.timezone {timezone!r} is not an IANA time zone") from None
    window = _span(plan.get("window"), f"{path}: campaign.window")
    _, _, items = importer.parse_document(path)
    theme = [item.text for item in items if "theme" in item.tags]
    first = [item.text for item in items if item.number == 1]
    campaigns = [PlannedCampaign(name, *window, BASE_PRIORITY, {})]
    if plan.get("peak") is not None:
        peak = _span(plan["peak"], f"{path}: campaign.peak")
        if not (window[0] <= peak[0] and peak[1] <= window[1]):
            raise InvalidInput(f"{path}: campaign.peak must lie within campaign.window")
        campaigns.append(PlannedCampaign(f"{name} — cao điểm", *peak, PEAK_PRIORITY,
                                         dict.fromkeys(theme, PEAK_THEME_WEIGHT)))
    if plan.get("anniversary") is not None:
        day = _date(plan["anniversary"], f"{path}: campaign.anniversary")
        if not window[0] <= day <= window[1]:
            raise InvalidInput(f"{path}: campaign.anniversary must lie within campaign.window")
        campaigns.append(PlannedCampaign(f"{name} — ngày kỷ niệm {day.day:02d}/{day.month}", day, day,
                                         ANNIVERSARY_PRIORITY, dict.fromkeys(theme + first, ANNIVERSARY_WEIGHT)))
    return timezone, campaigns


def _local_midnight(day: dt.date, timezone: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), zone(timezone)).astimezone(dt.UTC)


async def import_plan(session: AsyncSession, path: Path, *, actor: Principal, now: dt.datetime) -> PlanImport:
    """Import the file's slogans, then create the campaigns its plan implies that do not exist."""
    timezone, planned = planned_campaigns(path)
    result = PlanImport(slogans=await importer.import_file(session, path, actor=actor, now=now))
    _, _, items = importer.parse_document(path)
    slogans: dict[str, int] = {}
    for item in items:
        slogan = await catalog.find_by_text(session, item.text)
        if slogan is not None and slogan.status == catalog.APPROVED:
            slogans[item.text] = slogan.id
    if not slogans:
        raise InvalidInput(f"{path}: none of the file's slogans is approved in the catalog")
    for campaign in planned:
        existing = await session.scalar(select(Campaign.id).where(Campaign.name == campaign.name,
                                                                  Campaign.deleted_at.is_(None)))
        if existing is not None:
            result.unchanged.append(existing)
            continue
        made = await service.create(session, actor=actor, now=now, data={
            "name": campaign.name,
            "starts_at": _local_midnight(campaign.starts_on, timezone),
            "ends_at": _local_midnight(campaign.ends_on + dt.timedelta(days=1), timezone),
            "timezone": timezone, "daily_hours": [], "dwell_seconds": DWELL_SECONDS,
            "priority": campaign.priority, "order": "sequential", "paused": False,
            "playlist": [{"slogan_id": slogan_id, "weight": campaign.weighted.get(text, 1)}
                         for text, slogan_id in slogans.items()],
            "targets": {"all": True},
        })
        result.created.append(made.id)
    return result
