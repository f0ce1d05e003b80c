"""The audit log: one row for every change, written in the change's own transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from displayd.auth.roles import Principal
from displayd.db.models import AuditEvent


def record(
    session: AsyncSession,
    *,
    actor: Principal,
    action: str,
    entity_type: str,
    entity_id: object,
    now: datetime,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    detail: str | None = None,
) -> None:
    session.add(AuditEvent(
        at=now, actor=actor.name, role=actor.role, action=action, entity_type=entity_type,
        entity_id=str(entity_id), before=before, after=after, detail=detail,
    ))


async def list_events(
    session: AsyncSession,
    *,
    limit: int,
    before_id: int | None = None,
    entity_type: str | None = None,
    entity_id: str | None = None,
    actor: str | None = None,
) -> list[AuditEvent]:
    """Newest first, keyset-paginated by id."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    if entity_type is not None:
        query = query.where(AuditEvent.entity_type == entity_type)
    if entity_id is not None:
        query = query.where(AuditEvent.entity_id == entity_id)
    if actor is not None:
        query = query.where(AuditEvent.actor == actor)
    return list(await session.scalars(query))
