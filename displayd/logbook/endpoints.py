"""`/api/v1/rotations` and `/api/v1/reports/airtime`, as JSON or CSV.

CSV is asked for with `Accept: text/csv` or `?format=csv` (a link in the dashboard cannot
set headers). It is UTF-8 with a byte-order mark, so spreadsheet programs show Vietnamese
correctly, safe to open (`displayd.exports`), and streamed in batches from its own session:
exporting a year of log holds one batch in memory, not the year. Beside the ids, both CSVs
name what they stand for (`board_name`, `campaign_name`, `slogan_text`), looked up once per
batch, not per row.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from displayd import rotation
from displayd.campaigns import service as campaigns
from displayd.campaigns.schemas import DEFAULT_TIMEZONE
from displayd.deps import Reader, SessionDep
from displayd.errors import InvalidInput
from displayd.exports import csv_download, csv_lines
from displayd.http import decode_cursor, keyset_page
from displayd.logbook import queries
from displayd.logbook.schemas import AirtimeReport, AirtimeRow, PushStatus, RotationOut, RotationPage
from displayd.runtime import runtime_of
from displayd.schemas import CURSOR_DESCRIPTION, DB_INT_MAX, LIMIT_DESCRIPTION, NO_CONTROLS, SPAN, BoundedUTCDatetime

router = APIRouter(prefix="/api/v1", tags=["rotation log"])

# No control characters in a text filter: PostgreSQL refuses a NUL byte with an error, not "no rows".

# Scripts may rely on the CSV's column order, so no column ever moves: the API's columns as
# the CSV first had them, then what the ids stand for (for a person reading it), then the
# API's columns added since, in the order they were added.
LATER_COLUMNS = ["revisions"]
ROTATION_COLUMNS = [c for c in RotationOut.model_fields if c not in LATER_COLUMNS]
NAME_COLUMNS = ["board_name", "campaign_name", "slogan_text"]
CSV_COLUMNS = ROTATION_COLUMNS + NAME_COLUMNS + LATER_COLUMNS
CSV_RESPONSE = {"content": {"text/csv": {"schema": {"type": "string"}}},
                "description": "With `Accept: text/csv` or `format=csv`: UTF-8 CSV with a byte-order mark."}


def wants_csv(request: Request, fmt: str | None) -> bool:
    if fmt is not None:
        return fmt == "csv"
    return "text/csv" in request.headers.get("accept", "")


def _range(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and end <= start:
        raise InvalidInput("`to` must be after `from`")


Format = Annotated[Literal["json", "csv"] | None, Query(description="`csv` for a CSV download (or Accept: text/csv).")]
From = Annotated[BoundedUTCDatetime | None, Query(
    alias="from", description=f"Slots starting at or after (ISO 8601, within {SPAN}).")]
To = Annotated[BoundedUTCDatetime | None, Query(description=f"Slots starting before (ISO 8601, within {SPAN}).")]


@router.get("/rotations", summary="The rotation log (JSON pages or a CSV download)",
            responses={200: CSV_RESPONSE})
async def list_rotations(
    request: Request, session: SessionDep, _: Reader,
    board_id: Annotated[str | None, Query(max_length=64, pattern=NO_CONTROLS, description="Only this board.")] = None,
    campaign_id: Annotated[int | None, Query(ge=1, le=DB_INT_MAX, description="Only this campaign.")] = None,
    slogan_id: Annotated[int | None, Query(ge=1, le=DB_INT_MAX, description="Only this slogan.")] = None,
    status: Annotated[PushStatus | None, Query(description="Only this push status.")] = None,
    from_: From = None,
    to: To = None,
    limit: Annotated[int, Query(ge=1, le=1000, description=LIMIT_DESCRIPTION)] = 100,
    cursor: Annotated[str | None, Query(description=CURSOR_DESCRIPTION)] = None,
    format: Format = None,
) -> Any:
    _range(from_, to)
    where = queries.RotationFilter(board_id=board_id, campaign_id=campaign_id, slogan_id=slogan_id, status=status,
                                   starts_from=from_, starts_before=to)
    if wants_csv(request, format):
        return csv_download(_rotation_csv(request, where), "nhat-ky-luan-phien.csv")
    after_id = decode_cursor(cursor, ("id",))["id"] if cursor else None
    rows = await queries.page(session, where, limit=limit + 1, after_id=after_id)
    items, next_cursor = keyset_page(rows, limit)
    return RotationPage(items=[RotationOut.model_validate(r, from_attributes=True) for r in items],
                        next_cursor=next_cursor)


async def _rotation_csv(request: Request, where: queries.RotationFilter) -> AsyncIterator[str]:
    yield csv_lines([CSV_COLUMNS])
    names = queries.Names()
    async with runtime_of(request.app).sessionmaker() as session:
        async for batch in queries.stream(session, where):
            await names.learn(session, batch)
            yield csv_lines([*(getattr(row, c) for c in ROTATION_COLUMNS), *names.of(row),
                             *(getattr(row, c) for c in LATER_COLUMNS)] for row in batch)


@router.get("/reports/airtime", summary="Airtime by slogan, board or day (JSON or CSV)",
            responses={200: CSV_RESPONSE})
async def airtime_report(
    request: Request, session: SessionDep, _: Reader,
    by: Annotated[Literal["slogan", "board", "day"], Query(description="Group by slogan, board or day.")] = "slogan",
    campaign_id: Annotated[int | None, Query(ge=1, le=DB_INT_MAX,
                                             description="Only this campaign (its time zone sets the days).")] = None,
    from_: From = None,
    to: To = None,
    format: Format = None,
) -> Any:
    _range(from_, to)
    timezone, campaign_name = DEFAULT_TIMEZONE, None
    if campaign_id is not None:
        campaign = await campaigns.get(session, campaign_id, include_deleted=True)
        campaign_name = campaign.name
        # A row from before zones were checked may name one no longer accepted (`localtime`):
        # its days are then the office's, and the report says so in `timezone`.
        if campaign.timezone in rotation.timezone_names():
            timezone = campaign.timezone
    where = queries.RotationFilter(campaign_id=campaign_id, starts_from=from_, starts_before=to)
    items = await queries.airtime(session, where, by=by)
    report = AirtimeReport(by=by, campaign_id=campaign_id, timezone=timezone, starts_at=from_, ends_at=to,
                           items=items)
    if wants_csv(request, format):
        # The report's campaign, and what the label is, named as in the rotation CSV.
        named = {"slogan": ["slogan_text"], "board": ["board_name"], "day": []}[by]
        columns = [*AirtimeRow.model_fields, "campaign_id", "campaign_name", *named]
        rows = [[*(getattr(i, c) for c in AirtimeRow.model_fields), campaign_id, campaign_name,
                 *([i.label] if named else [])] for i in items]

        async def lines() -> AsyncIterator[str]:
            yield csv_lines([columns, *rows])

        return csv_download(lines(), f"thoi-luong-phat-theo-{by}.csv")
    return report
