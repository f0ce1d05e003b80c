"""`GET /api/v1/reports/campaigns/{id}`: the campaign report (`displayd.logbook.report`) as JSON.

The same figures as the printable page `/ui/reports/{id}`, for scripts and spreadsheets.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from displayd.deps import Now, Reader, SessionDep
from displayd.errors import InvalidInput
from displayd.logbook.report import CampaignReport, campaign_report
from displayd.schemas import UTCDatetime

router = APIRouter(prefix="/api/v1", tags=["rotation log"])


@router.get("/reports/campaigns/{campaign_id}", summary="A campaign's results over a period")
async def campaign_report_json(
    session: SessionDep, _: Reader, now: Now,
    campaign_id: Annotated[int, Path(description="The campaign (deleted ones too).")],
    from_: Annotated[UTCDatetime | None, Query(
        alias="from", description="Slots starting at or after (ISO 8601); default the campaign's start.")] = None,
    to: Annotated[UTCDatetime | None, Query(
        description="Slots starting before (ISO 8601); default the campaign's end or now, whichever is first.")
    ] = None,
) -> CampaignReport:
    """Airtime per slogan, board and local day, delivery and poll ratios, missed time, integrity
    incidents and who ran the campaign. The period is the campaign's window clipped to now,
    narrowed by `from` and `to`."""
    if from_ is not None and to is not None and to <= from_:
        raise InvalidInput("`to` must be after `from`")
    return await campaign_report(session, campaign_id, start=from_, end=to, now=now)
