"""The campaign report: the figures an office hands in for one campaign over a period.

    report = await campaign_report(session, 3, start=None, end=None, now=now)

Airtime, delivery and polling come from the rotation log through `queries` (`airtime`,
`summary`), so wherever those answer from, the report answers the same numbers as
`/api/v1/reports/airtime`. Integrity incidents are those reported against the campaign's
slots (`integrity_incident.slot_key` is `"{campaign_id}:{slot}"`); who ran the campaign is
read from the campaign, its audit events and its slogans' approvals.

The period is the campaign's window clipped to `now` (a report never speaks of the
future), narrowed by `start` and `end` when given; slots count by where they start.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from displayd.campaigns import service as campaigns
from displayd.db.models import AuditEvent, Board, Campaign, IntegrityIncident, Slogan
from displayd.logbook import queries

INCIDENTS_LISTED = 100  # the newest; the count covers them all


class SloganAirtime(BaseModel):
    """One slogan of the campaign: how long boards showed it."""

    slogan_id: int = Field(description="Slogan id.")
    number: int | None = Field(description="Its number in the source document, if any.")
    text: str = Field(description="The slogan's text.")
    slots: int = Field(description="Slots given (missed ones excluded).")
    seconds: float = Field(description="Seconds shown, summed over boards.")
    missed: int = Field(description="Its slots that passed while displayd was down.")
    share: float | None = Field(description="Its part of all seconds shown (0..1); null when nothing was shown.")


class BoardDelivery(BaseModel):
    """One board that was given the campaign: airtime, delivery and polling."""

    board_id: str = Field(description="Board id.")
    name: str = Field(description="Board name (the id if the board is gone).")
    location: str | None = Field(description="Where the board is.")
    delivery: str | None = Field(description="push, poll, stream or both; null if the board is gone.")
    slots: int = Field(description="Slots given (missed ones excluded).")
    seconds: float = Field(description="Seconds shown.")
    missed: int = Field(description="Slots that passed while displayd was down.")
    delivered_ratio: float | None = Field(description="Delivered pushes / slots meant for push; null if none.")
    polled_ratio: float | None = Field(description="Slots polled at least once / slots of a polling board.")
    incidents: int = Field(description="Integrity incidents on this board in the campaign's slots.")


class DayAirtime(BaseModel):
    """Airtime of one local day (in the campaign's time zone, by the hour a slot starts in)."""

    date: str = Field(description="Local date, YYYY-MM-DD.")
    slots: int = Field(description="Slots given (missed ones excluded).")
    seconds: float = Field(description="Seconds shown, summed over boards.")
    missed: int = Field(description="Slots missed that day.")


class IncidentOut(BaseModel):
    """A board that showed content displayd never issued to it, during one of the campaign's slots."""

    board_id: str = Field(description="Board id.")
    board_name: str = Field(description="Board name (the id if the board is gone).")
    at: datetime = Field(description="When it was reported (UTC).")
    source: str = Field(description="`push` (the board's answer) or `poll` (its If-None-Match).")
    reported_hash: str = Field(description="The content hash the board reported.")
    detail: str | None = Field(description="What was seen.")


class Actor(BaseModel):
    """A person who changed the campaign (from the audit log)."""

    name: str = Field(description="The key's name: the person.")
    roles: list[str] = Field(description="Roles of the keys they used.")
    actions: list[str] = Field(description="What they did: `campaign.create`, `campaign.update`, …")
    first_at: datetime = Field(description="Their first change (UTC).")
    last_at: datetime = Field(description="Their last change (UTC).")


class Approver(BaseModel):
    """A person who approved slogans of the campaign."""

    name: str = Field(description="The approver (for imported slogans, who ran the import).")
    references: list[str] = Field(description="Approval references given (document codes).")
    slogan_ids: list[int] = Field(description="The slogans they approved.")


class ReportTotals(BaseModel):
    """The whole campaign over the period."""

    slots: int = Field(description="Slots given to boards (missed ones excluded).")
    seconds: float = Field(description="Seconds shown, summed over boards.")
    missed: int = Field(description="Slots that passed while displayd was down.")
    missed_seconds: float = Field(description="Their seconds, summed over boards.")
    delivered_ratio: float | None = Field(description="Delivered pushes / slots meant for push; null if none.")
    polled_ratio: float | None = Field(description="Slots polled at least once / slots of polling boards.")
    boards: int = Field(description="Boards given at least one slot.")
    slogans: int = Field(description="Slogans shown at least once.")
    incidents: int = Field(description="Integrity incidents in the campaign's slots.")


class CampaignReport(BaseModel):
    """The campaign's results over a period: what was shown where, how delivery went, who ran it."""

    campaign_id: int = Field(description="Campaign id.")
    name: str = Field(description="Campaign name.")
    timezone: str = Field(description="The campaign's time zone: days and dates are local to it.")
    campaign_starts_at: datetime = Field(description="Start of the campaign's window (UTC).")
    campaign_ends_at: datetime = Field(description="End of the campaign's window (UTC, exclusive).")
    starts_at: datetime = Field(description="Start of the period reported (UTC): slots starting at or after.")
    ends_at: datetime = Field(description="End of the period reported (UTC): slots starting before.")
    generated_at: datetime = Field(description="When the report was made (UTC).")
    dwell_seconds: int = Field(description="Seconds per slot.")
    daily_hours: list[dict[str, str]] = Field(description="Local daily hours; empty for the whole day.")
    priority: int = Field(description="Priority.")
    targets: dict[str, Any] = Field(description="Target boards as the campaign names them.")
    paused: bool = Field(description="Whether the campaign is paused now.")
    deleted: bool = Field(description="Whether the campaign has been deleted (its history stays).")
    totals: ReportTotals = Field(description="Totals of the campaign over the period, every board together.")
    slogans: list[SloganAirtime] = Field(description="Its slogans (shown or in the playlist), by number then id.")
    boards: list[BoardDelivery] = Field(description="Boards given the campaign in the period, by id.")
    days: list[DayAirtime] = Field(description="Local days with slots, in order.")
    incidents: list[IncidentOut] = Field(description=f"The newest {INCIDENTS_LISTED} integrity incidents.")
    created_by: str = Field(description="Who created the campaign.")
    actors: list[Actor] = Field(description="Everyone who changed the campaign, by first change.")
    approvers: list[Approver] = Field(description="Everyone who approved its slogans, by name.")


def report_period(campaign: Campaign, *, start: datetime | None, end: datetime | None,
                  now: datetime) -> tuple[datetime, datetime]:
    """The campaign's window ∩ [start, end) ∩ (-∞, now]; empty (start == end) if they do not meet."""
    since = max(campaign.starts_at, start) if start is not None else campaign.starts_at
    until = min(campaign.ends_at, now, *([end] if end is not None else []))
    return since, max(since, until)


async def campaign_report(session: AsyncSession, campaign_id: int, *, start: datetime | None,
                          end: datetime | None, now: datetime) -> CampaignReport:
    """The report of one campaign (deleted ones too); ResourceNotFound if there is no such campaign."""
    campaign = await campaigns.get(session, campaign_id, include_deleted=True)
    since, until = report_period(campaign, start=start, end=end, now=now)
    where = queries.RotationFilter(campaign_id=campaign.id, starts_from=since, starts_before=until)
    summary = await queries.summary(session, where)
    by_slogan = await queries.airtime(session, where, by="slogan")
    by_board = await queries.airtime(session, where, by="board")
    by_day = await queries.airtime(session, where, by="day")

    incidents, incident_count, per_board = await _incidents(session, campaign.id, since, until)
    slogan_ids = [int(row.key) for row in by_slogan]
    slogan_ids += [int(p["slogan_id"]) for p in campaign.playlist if int(p["slogan_id"]) not in slogan_ids]
    slogan_rows = {s.id: s for s in await session.scalars(select(Slogan).where(Slogan.id.in_(slogan_ids)))}
    board_ids = {row.key for row in by_board} | {i.board_id for i in incidents}
    board_rows = {b.id: b for b in await session.scalars(select(Board).where(Board.id.in_(board_ids)))}

    shown = {int(row.key): row for row in by_slogan}
    slogans = []
    for slogan_id in slogan_ids:
        row, slogan = shown.get(slogan_id), slogan_rows.get(slogan_id)
        seconds = row.seconds if row else 0.0
        slogans.append(SloganAirtime(
            slogan_id=slogan_id, number=slogan.number if slogan else None,
            text=slogan.text if slogan else f"#{slogan_id}", slots=row.slots if row else 0, seconds=seconds,
            missed=row.missed if row else 0,
            share=round(seconds / summary.seconds, 4) if summary.seconds else None))
    slogans.sort(key=lambda s: (s.number is None, s.number or 0, s.slogan_id))

    boards = []
    for row in sorted(by_board, key=lambda r: r.key):
        board = board_rows.get(row.key)
        boards.append(BoardDelivery(
            board_id=row.key, name=board.name if board else row.key, location=board.location if board else None,
            delivery=board.delivery if board else None, slots=row.slots, seconds=row.seconds, missed=row.missed,
            delivered_ratio=row.delivered_ratio, polled_ratio=row.polled_ratio,
            incidents=per_board.get(row.key, 0)))

    return CampaignReport(
        campaign_id=campaign.id, name=campaign.name, timezone=campaign.timezone,
        campaign_starts_at=campaign.starts_at, campaign_ends_at=campaign.ends_at, starts_at=since, ends_at=until,
        generated_at=now, dwell_seconds=campaign.dwell_seconds, daily_hours=list(campaign.daily_hours),
        priority=campaign.priority, targets=dict(campaign.targets), paused=campaign.paused,
        deleted=campaign.deleted_at is not None,
        totals=ReportTotals(
            slots=summary.slots, seconds=summary.seconds, missed=summary.missed,
            missed_seconds=summary.missed_seconds, delivered_ratio=summary.delivered_ratio,
            polled_ratio=summary.polled_ratio, boards=len(boards), slogans=sum(1 for s in slogans if s.slots),
            incidents=incident_count),
        slogans=slogans, boards=boards,
        days=[DayAirtime(date=row.key, slots=row.slots, seconds=row.seconds, missed=row.missed) for row in by_day],
        incidents=[IncidentOut(board_id=i.board_id, board_name=board_rows[i.board_id].name
                               if i.board_id in board_rows else i.board_id, at=i.at, source=i.source,
                               reported_hash=i.reported_hash, detail=i.detail) for i in incidents],
        created_by=campaign.created_by,
        actors=await _actors(session, campaign.id),
        approvers=_approvers(slogan_rows.values()),
    )


async def _incidents(session: AsyncSession, campaign_id: int, since: datetime,
                     until: datetime) -> tuple[list[IntegrityIncident], int, dict[str, int]]:
    """The newest incidents in the campaign's slots, their count, and the count per board."""
    in_campaign = (IntegrityIncident.slot_key.like(f"{campaign_id}:%"), IntegrityIncident.at >= since,
                   IntegrityIncident.at < until)
    newest = await session.scalars(select(IntegrityIncident).where(*in_campaign)
                                   .order_by(IntegrityIncident.at.desc(), IntegrityIncident.id.desc())
                                   .limit(INCIDENTS_LISTED))
    counts = await session.execute(select(IntegrityIncident.board_id, func.count())
                                   .where(*in_campaign).group_by(IntegrityIncident.board_id))
    per_board = {board_id: int(n) for board_id, n in counts}
    return list(newest), sum(per_board.values()), per_board


async def _actors(session: AsyncSession, campaign_id: int) -> list[Actor]:
    rows = await session.execute(
        select(AuditEvent.actor, AuditEvent.role, AuditEvent.action, func.min(AuditEvent.at), func.max(AuditEvent.at))
        .where(AuditEvent.entity_type == "campaign", AuditEvent.entity_id == str(campaign_id))
        .group_by(AuditEvent.actor, AuditEvent.role, AuditEvent.action))
    seen: dict[str, dict[str, Any]] = {}
    for name, role, action, first, last in rows:
        entry = seen.setdefault(name, {"roles": set(), "actions": set(), "first": first, "last": last})
        entry["roles"].add(role)
        entry["actions"].add(action)
        entry["first"], entry["last"] = min(entry["first"], first), max(entry["last"], last)
    actors = [Actor(name=name, roles=sorted(e["roles"]), actions=sorted(e["actions"]), first_at=e["first"],
                    last_at=e["last"]) for name, e in seen.items()]
    return sorted(actors, key=lambda a: (a.first_at, a.name))


def _approvers(slogans: Iterable[Slogan]) -> list[Approver]:
    found: dict[str, tuple[set[str], list[int]]] = defaultdict(lambda: (set(), []))
    for slogan in slogans:
        if slogan.approved_by:
            references, ids = found[slogan.approved_by]
            if slogan.approval_reference:
                references.add(slogan.approval_reference)
            ids.append(slogan.id)
    return [Approver(name=name, references=sorted(refs), slogan_ids=sorted(ids))
            for name, (refs, ids) in sorted(found.items())]
