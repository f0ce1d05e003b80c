"""`/api/v1/campaigns`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from displayd.auth.roles import Permission, Principal
from displayd.campaigns import service
from displayd.campaigns.schemas import CampaignCreate, CampaignOut, CampaignPage, CampaignUpdate
from displayd.db.models import Campaign
from displayd.deps import Authorize, Now, Reader, SessionDep
from displayd.http import decode_cursor, keyset_page
from displayd.schemas import CURSOR_DESCRIPTION, DB_INT_MAX, LIMIT_DESCRIPTION

router = APIRouter(prefix="/api/v1/campaigns", tags=["campaigns"])

Writer = Annotated[Principal, Authorize(Permission.CAMPAIGN_WRITE)]


def _out(campaign: Campaign, now: object) -> CampaignOut:
    return CampaignOut.model_validate({
        "id": campaign.id, "name": campaign.name, "starts_at": campaign.starts_at, "ends_at": campaign.ends_at,
        "timezone": campaign.timezone, "daily_hours": campaign.daily_hours,
        "dwell_seconds": campaign.dwell_seconds, "priority": campaign.priority, "order": campaign.order,
        "playlist": campaign.playlist, "targets": campaign.targets, "paused": campaign.paused,
        "state": service.state(campaign, now),  # type: ignore[arg-type]
        "created_by": campaign.created_by, "created_at": campaign.created_at, "updated_at": campaign.updated_at,
    })


@router.get("", summary="List campaigns")
async def list_campaigns(
    session: SessionDep, _: Reader, now: Now,
    limit: Annotated[int, Query(ge=1, le=1000, description=LIMIT_DESCRIPTION)] = 100,
    cursor: Annotated[str | None, Query(description=CURSOR_DESCRIPTION)] = None,
) -> CampaignPage:
    after_id = decode_cursor(cursor, ("id",), maximum=DB_INT_MAX)["id"] if cursor else None
    rows = await service.list_campaigns(session, limit=limit + 1, after_id=after_id)
    items, next_cursor = keyset_page(rows, limit)
    return CampaignPage(items=[_out(c, now) for c in items], next_cursor=next_cursor)


@router.post("", status_code=201, summary="Create a campaign")
async def create_campaign(body: CampaignCreate, session: SessionDep, who: Writer, now: Now) -> CampaignOut:
    campaign = await service.create(session, actor=who, now=now, data=body.model_dump())
    return _out(campaign, now)


@router.get("/{campaign_id}", summary="Read a campaign")
async def get_campaign(campaign_id: int, session: SessionDep, _: Reader, now: Now) -> CampaignOut:
    return _out(await service.get(session, campaign_id), now)


@router.patch("/{campaign_id}", summary="Edit a campaign (takes effect from the next slot)")
async def update_campaign(
    campaign_id: int, body: CampaignUpdate, session: SessionDep, who: Writer, now: Now
) -> CampaignOut:
    data = body.model_dump(exclude_unset=True)
    campaign = await service.update(session, campaign_id, actor=who, now=now, data=data)
    return _out(campaign, now)


@router.delete("/{campaign_id}", status_code=204, summary="Delete a campaign (hidden, kept for the log)")
async def delete_campaign(campaign_id: int, session: SessionDep, who: Writer, now: Now) -> Response:
    await service.delete(session, campaign_id, actor=who, now=now)
    return Response(status_code=204)


@router.post("/{campaign_id}/pause", summary="Pause a campaign (at once)")
async def pause_campaign(campaign_id: int, session: SessionDep, who: Writer, now: Now) -> CampaignOut:
    return _out(await service.set_paused(session, campaign_id, actor=who, now=now, paused=True), now)


@router.post("/{campaign_id}/resume", summary="Resume a paused campaign")
async def resume_campaign(campaign_id: int, session: SessionDep, who: Writer, now: Now) -> CampaignOut:
    return _out(await service.set_paused(session, campaign_id, actor=who, now=now, paused=False), now)
