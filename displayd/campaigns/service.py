"""Campaign lifecycle: create, edit (from the next slot), pause, resume, delete (hide).

A campaign names only what exists: approved slogans in its playlist, and boards (not deleted)
or groups (that some such board is in) as its targets, when it is created or its targets are
given anew.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from displayd import changes
from displayd.auth import audit
from displayd.auth.roles import Principal
from displayd.catalog import service as catalog
from displayd.catalog.text import normalise_text
from displayd.db import repository
from displayd.db.models import Board, Campaign
from displayd.errors import Conflict, InvalidInput, ResourceNotFound
from displayd.live.plan import build_spec, spec_fields, switch_time
from displayd.rotation import format_daily_hours, parse_daily_hours
from displayd.schemas import DB_INT_MAX, EARLIEST, LATEST, SPAN

SLUG_MAX = 64
NAMED_MAX = 20  # missing targets named in an error; the rest are counted


def state(campaign: Campaign, now: datetime) -> str:
    if campaign.paused:
        return "paused"
    if now < campaign.starts_at:
        return "scheduled"
    return "running" if now < campaign.ends_at else "ended"


def audit_view(campaign: Campaign) -> dict[str, Any]:
    """The campaign as the audit log keeps it."""
    return {"name": campaign.name, "paused": campaign.paused, **spec_fields(campaign)}


def _targets(raw: dict[str, Any]) -> dict[str, Any]:
    given = {k: v for k, v in raw.items() if v is not None}
    if len(given) != 1:
        raise InvalidInput('targets must be exactly one of {"all": true}, {"groups": [...]}, {"boards": [...]}')
    (kind, value), = given.items()
    if kind == "all":
        if value is not True:
            raise InvalidInput('targets.all must be true (use groups or boards to narrow)')
        return {"all": True}
    names = [normalise_text(v, field=f"targets.{kind}", max_length=SLUG_MAX) for v in value]
    if not names:
        raise InvalidInput(f"targets.{kind} is empty")
    return {kind: sorted(set(names))}


async def _require_targets(session: AsyncSession, targets: dict[str, Any]) -> None:
    """InvalidInput naming the boards or groups in `targets` that no live board answers to."""
    if "boards" in targets:
        kind, wanted = "board", list(targets["boards"])
        found = set(await session.scalars(
            select(Board.id).where(Board.id.in_(wanted), Board.deleted_at.is_(None))))
    elif "groups" in targets:
        # Groups are only a label on boards; a group exists while a board carries it. Reading
        # every live board's groups is one query over a table of hundreds of rows.
        kind, wanted = "group", list(targets["groups"])
        found = set()
        for groups in await session.scalars(select(Board.groups).where(Board.deleted_at.is_(None))):
            found.update(groups or ())
    else:
        return
    missing = [name for name in wanted if name not in found]
    if missing:
        named = ", ".join(missing[:NAMED_MAX]) + (f" and {len(missing) - NAMED_MAX} more"
                                                  if len(missing) > NAMED_MAX else "")
        raise InvalidInput(f"targets.{kind}s: no such {kind}: {named}")


def _require_span(campaign: Campaign, fields: tuple[str, ...] = ("starts_at", "ends_at")) -> None:
    """The window's given ends lie within EARLIEST..LATEST. The API's schemas say so first;
    this holds every other caller (a file import, a script) to the same span."""
    for name in fields:
        if not EARLIEST <= getattr(campaign, name) <= LATEST:
            raise InvalidInput(f"{name}: must lie within {SPAN}")


def _daily_hours(raw: list[dict[str, str]]) -> list[dict[str, str]]:
    try:
        return format_daily_hours(parse_daily_hours(raw))
    except ValueError as exc:
        raise InvalidInput(f"daily_hours: {exc}") from None


async def _playlist(session: AsyncSession, raw: list[dict[str, int]]) -> list[dict[str, int]]:
    ids = [e["slogan_id"] for e in raw]
    if len(set(ids)) != len(ids):
        raise InvalidInput("playlist names a slogan twice; use its weight instead")
    catalog.require_approved(await catalog.approved_ids(session, ids), ids)
    return [{"slogan_id": e["slogan_id"], "weight": e["weight"]} for e in raw]


def _check_plan(campaign: Campaign) -> None:
    """Everything rotation needs holds (window order, time zone); InvalidInput otherwise."""
    try:
        build_spec(campaign.id or 0, spec_fields(campaign), paused=campaign.paused, approved=())
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


async def get(session: AsyncSession, campaign_id: int, *, for_update: bool = False,
              include_deleted: bool = False) -> Campaign:
    if not 0 < campaign_id <= DB_INT_MAX:  # no such row; PostgreSQL would refuse the number itself
        raise ResourceNotFound("campaign", campaign_id)
    return await repository.get_by_id(session, Campaign, campaign_id, for_update=for_update,
                                      include_deleted=include_deleted)


async def list_campaigns(session: AsyncSession, *, limit: int, after_id: int | None = None) -> list[Campaign]:
    return await repository.keyset(session, Campaign, limit=limit, after=after_id)


async def all_live(session: AsyncSession) -> list[Campaign]:
    """Every campaign not deleted (the snapshot filters by time itself)."""
    return list(await session.scalars(select(Campaign).where(Campaign.deleted_at.is_(None)).order_by(Campaign.id)))


async def create(session: AsyncSession, *, actor: Principal, now: datetime, data: dict[str, Any]) -> Campaign:
    campaign = Campaign(
        name=normalise_text(data["name"], field="name", max_length=200),
        starts_at=data["starts_at"], ends_at=data["ends_at"], timezone=data["timezone"],
        daily_hours=_daily_hours(data["daily_hours"]), dwell_seconds=data["dwell_seconds"],
        priority=data["priority"], order=data["order"], playlist=await _playlist(session, data["playlist"]),
        targets=_targets(data["targets"]), paused=data["paused"],
        created_by=actor.name, created_at=now, updated_at=now,
    )
    _require_span(campaign)
    _check_plan(campaign)
    await _require_targets(session, campaign.targets)
    session.add(campaign)
    await session.flush()
    audit.record(session, actor=actor, action="campaign.create", entity_type="campaign",
                 entity_id=campaign.id, after=audit_view(campaign), now=now)
    await changes.touch(session)
    return campaign


async def update(
    session: AsyncSession, campaign_id: int, *, actor: Principal, now: datetime, data: dict[str, Any]
) -> Campaign:
    campaign = await get(session, campaign_id, for_update=True)
    before = audit_view(campaign)
    live_fields = spec_fields(campaign)
    if data.get("name") is not None:
        campaign.name = normalise_text(data["name"], field="name", max_length=200)
    for field in ("starts_at", "ends_at", "timezone", "dwell_seconds", "priority", "order"):
        if data.get(field) is not None:
            setattr(campaign, field, data[field])
    _require_span(campaign, tuple(f for f in ("starts_at", "ends_at") if data.get(f) is not None))
    if data.get("daily_hours") is not None:
        campaign.daily_hours = _daily_hours(data["daily_hours"])
    if data.get("playlist") is not None:
        campaign.playlist = await _playlist(session, data["playlist"])
    if data.get("targets") is not None:
        campaign.targets = _targets(data["targets"])
        await _require_targets(session, campaign.targets)
    _check_plan(campaign)
    if spec_fields(campaign) != live_fields:
        _hold_live_slot(campaign, live_fields, now)
        await changes.touch(session)
    campaign.updated_at = now
    audit.record(session, actor=actor, action="campaign.update", entity_type="campaign",
                 entity_id=campaign.id, before=before, after=audit_view(campaign), now=now)
    return campaign


def _hold_live_slot(campaign: Campaign, live_fields: dict[str, Any], now: datetime) -> None:
    """Keep what is live now until its slot ends (see `displayd.live.plan`)."""
    if campaign.previous is not None and campaign.edited_at is not None:
        pending = build_spec(campaign.id, campaign.previous, paused=False, approved=())
        switch = switch_time(pending, campaign.edited_at)
        if switch is not None and now < switch:
            return  # an earlier edit in this slot already holds it
    live = build_spec(campaign.id, live_fields, paused=False, approved=())
    if switch_time(live, now) is None:
        campaign.previous, campaign.edited_at = None, None
    else:
        campaign.previous, campaign.edited_at = live_fields, now


async def set_paused(
    session: AsyncSession, campaign_id: int, *, actor: Principal, now: datetime, paused: bool
) -> Campaign:
    campaign = await get(session, campaign_id, for_update=True)
    if campaign.paused == paused:
        raise Conflict(f"campaign {campaign.id} is already {'paused' if paused else 'running'}")
    before = audit_view(campaign)
    campaign.paused, campaign.updated_at = paused, now
    audit.record(session, actor=actor, action="campaign.pause" if paused else "campaign.resume",
                 entity_type="campaign", entity_id=campaign.id, before=before, after=audit_view(campaign), now=now)
    await changes.touch(session)
    return campaign


async def delete(session: AsyncSession, campaign_id: int, *, actor: Principal, now: datetime) -> None:
    """Hide the campaign from use at once; its rows stay for the log, reports and audit."""
    campaign = await get(session, campaign_id, for_update=True)
    campaign.deleted_at = campaign.updated_at = now
    audit.record(session, actor=actor, action="campaign.delete", entity_type="campaign",
                 entity_id=campaign.id, before=audit_view(campaign), now=now)
    await changes.touch(session)
