"""`/api/v1/audit`: the change history, for admins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from displayd.auth import audit
from displayd.auth.roles import Permission, Principal
from displayd.deps import Authorize, SessionDep
from displayd.http import decode_cursor, keyset_page
from displayd.schemas import CURSOR_DESCRIPTION, LIMIT_DESCRIPTION, NO_CONTROLS

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


class AuditEventOut(BaseModel):
    """One change: who did what to which entity, and the entity before and after."""

    id: int = Field(description="Event id (increasing).")
    at: datetime = Field(description="When (UTC).")
    actor: str = Field(description="Name of the key, or `cli:<user>` for the command line.")
    role: str = Field(description="The actor's role.")
    action: str = Field(description="What was done, e.g. `slogan.approve`.")
    entity_type: str = Field(description="`slogan`, `campaign`, `board`, `api_key`…")
    entity_id: str = Field(description="The entity's id.")
    before: dict[str, Any] | None = Field(description="The entity before the change.")
    after: dict[str, Any] | None = Field(description="The entity after the change.")
    detail: str | None = Field(description="Free text, e.g. a retirement reason.")


class AuditPage(BaseModel):
    """One page of audit events, newest first."""

    items: list[AuditEventOut] = Field(description="Events, newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for older events; null at the end.")


def Filter(max_length: int, description: str) -> Any:  # noqa: N802 - used like Query
    return Query(pattern=NO_CONTROLS, max_length=max_length, description=description)


@router.get("", summary="Read the audit log (admin)")
async def list_audit(
    session: SessionDep,
    _: Annotated[Principal, Authorize(Permission.AUDIT_READ)],
    entity_type: Annotated[str | None, Filter(30, "Only this kind of entity.")] = None,
    entity_id: Annotated[str | None, Filter(100, "Only this entity.")] = None,
    actor: Annotated[str | None, Filter(100, "Only this actor.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description=LIMIT_DESCRIPTION)] = 100,
    cursor: Annotated[str | None, Query(description=CURSOR_DESCRIPTION)] = None,
) -> AuditPage:
    before_id = decode_cursor(cursor, ("id",))["id"] if cursor else None
    rows = await audit.list_events(session, limit=limit + 1, before_id=before_id,
                                   entity_type=entity_type, entity_id=entity_id, actor=actor)
    items, next_cursor = keyset_page(rows, limit)
    return AuditPage(items=[AuditEventOut.model_validate(r, from_attributes=True) for r in items],
                     next_cursor=next_cursor)
