"""`/api/v1/slogans`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from displayd.auth.roles import Permission, Principal
from displayd.catalog import service
from displayd.catalog.schemas import (
    ApproveRequest,
    RetireRequest,
    SloganCreate,
    SloganOut,
    SloganPage,
    SloganStatus,
    SloganUpdate,
)
from displayd.deps import Authorize, Now, Reader, SessionDep
from displayd.http import decode_cursor, keyset_page
from displayd.schemas import CURSOR_DESCRIPTION, DB_INT_MAX, LIMIT_DESCRIPTION

router = APIRouter(prefix="/api/v1/slogans", tags=["slogans"])

Writer = Annotated[Principal, Authorize(Permission.SLOGAN_WRITE)]
Approver = Annotated[Principal, Authorize(Permission.SLOGAN_APPROVE)]


@router.get("", summary="List slogans")
async def list_slogans(
    session: SessionDep,
    _: Reader,
    status: Annotated[SloganStatus | None, Query(description="Only slogans in this state.")] = None,
    q: Annotated[str | None, Query(max_length=280, description="Text contains this (case-insensitive).")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description=LIMIT_DESCRIPTION)] = 100,
    cursor: Annotated[str | None, Query(description=CURSOR_DESCRIPTION)] = None,
) -> SloganPage:
    after_id = decode_cursor(cursor, ("id",), maximum=DB_INT_MAX)["id"] if cursor else None
    rows = await service.list_slogans(session, limit=limit + 1, after_id=after_id, status=status, q=q)
    items, next_cursor = keyset_page(rows, limit)
    return SloganPage(items=[SloganOut.model_validate(r, from_attributes=True) for r in items],
                      next_cursor=next_cursor)


@router.post("", status_code=201, summary="Create a draft slogan")
async def create_slogan(body: SloganCreate, session: SessionDep, who: Writer, now: Now) -> SloganOut:
    slogan = await service.create(session, actor=who, now=now, text=body.text, number=body.number,
                                  source=body.source, tags=body.tags)
    return SloganOut.model_validate(slogan, from_attributes=True)


@router.get("/{slogan_id}", summary="Read a slogan")
async def get_slogan(slogan_id: int, session: SessionDep, _: Reader) -> SloganOut:
    return SloganOut.model_validate(await service.get(session, slogan_id), from_attributes=True)


@router.patch("/{slogan_id}", summary="Edit a draft slogan")
async def update_slogan(
    slogan_id: int, body: SloganUpdate, session: SessionDep, who: Writer, now: Now
) -> SloganOut:
    slogan = await service.update(session, slogan_id, actor=who, now=now,
                                  changes_=body.model_dump(exclude_unset=True))
    return SloganOut.model_validate(slogan, from_attributes=True)


@router.post(
    "/{slogan_id}/approve",
    summary="Approve a draft (four-eyes: not by anyone who wrote its text)",
    description="The body names the `content_hash` the approver reviewed: 409 `content_changed` if the "
                "text changed since, 403 if the approver created or edited the slogan.",
)
async def approve_slogan(
    slogan_id: int, body: ApproveRequest, session: SessionDep, who: Approver, now: Now
) -> SloganOut:
    slogan = await service.approve(session, slogan_id, actor=who, now=now, content_hash=body.content_hash,
                                   reference=body.reference)
    return SloganOut.model_validate(slogan, from_attributes=True)


@router.post("/{slogan_id}/retire", summary="Retire a slogan: no board shows it within seconds")
async def retire_slogan(
    slogan_id: int, body: RetireRequest, session: SessionDep, who: Approver, now: Now
) -> SloganOut:
    slogan = await service.retire(session, slogan_id, actor=who, now=now, reason=body.reason)
    return SloganOut.model_validate(slogan, from_attributes=True)
