"""Slogan lifecycle: draft → approved → retired.

Four-eyes: whoever writes a slogan's text (its creator, and everyone who edited a revision
of the draft) is kept in `edited_by`, and none of them may approve it; the approver names
the `content_hash` they reviewed, so an edit made while they read is never approved unseen.

Services take the session first and keyword arguments after; they never commit (the request
or the command owns the transaction) and raise `DisplaydError`s.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from displayd import changes
from displayd.auth import audit
from displayd.auth.roles import Principal
from displayd.catalog.text import normalise_text
from displayd.db import repository
from displayd.db.models import Slogan
from displayd.errors import Conflict, ContentChanged, InvalidInput, NotPermitted, ResourceNotFound
from displayd.rotation import text_hash
from displayd.schemas import DB_INT_MAX

DRAFT, APPROVED, RETIRED = "draft", "approved", "retired"

log = logging.getLogger("displayd.catalog")


def audit_view(slogan: Slogan) -> dict[str, Any]:
    """The slogan as the audit log keeps it."""
    return {
        "text": slogan.text, "number": slogan.number, "source": slogan.source,
        "tags": list(slogan.tags), "status": slogan.status, "edited_by": list(slogan.edited_by),
        "approved_by": slogan.approved_by, "approval_reference": slogan.approval_reference,
        "retire_reason": slogan.retire_reason,
    }


def normalise_tags(tags: Sequence[str]) -> list[str]:
    result: list[str] = []
    for tag in tags:
        tag = normalise_text(tag, field="tag", max_length=50)
        if tag not in result:
            result.append(tag)
    return result


def _optional_text(value: str | None, field: str, max_length: int) -> str | None:
    return None if value is None else normalise_text(value, field=field, max_length=max_length)


async def get(session: AsyncSession, slogan_id: int, *, for_update: bool = False) -> Slogan:
    if not 0 < slogan_id <= DB_INT_MAX:  # no such row; PostgreSQL would refuse the number itself
        raise ResourceNotFound("slogan", slogan_id)
    return await repository.get_by_id(session, Slogan, slogan_id, for_update=for_update)


async def find_by_text(session: AsyncSession, text: str) -> Slogan | None:
    return await session.scalar(select(Slogan).where(Slogan.text == text))


async def list_slogans(
    session: AsyncSession, *, limit: int, after_id: int | None = None,
    status: str | None = None, q: str | None = None,
) -> list[Slogan]:
    where: list[ColumnElement[bool]] = []
    if status is not None:
        where.append(Slogan.status == status)
    if q:
        needle = normalise_text(q, field="q", max_length=280).lower()
        # lower() of Vietnamese works in Python and PostgreSQL; SQLite's lower() is ASCII-only,
        # so match both the lowered and the original spelling there.
        # autoescape: `%`, `_` and `\` in q are text to find, not LIKE wildcards or an escape.
        where.append(func.lower(Slogan.text).contains(needle, autoescape=True)
                     | Slogan.text.contains(q.strip(), autoescape=True))
    return await repository.keyset(session, Slogan, limit=limit, after=after_id, where=where)


async def _ensure_unique(session: AsyncSession, text: str, *, except_id: int | None = None) -> None:
    existing = await find_by_text(session, text)
    if existing is not None and existing.id != except_id:
        raise Conflict(f"slogan {existing.id} already has this text ({existing.status})")


async def _flush_unique(session: AsyncSession) -> None:
    # Two requests racing past _ensure_unique meet the unique index here.
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("a slogan with this text already exists") from None


async def create(
    session: AsyncSession, *, actor: Principal, now: datetime, text: str,
    number: int | None = None, source: str | None = None, tags: Sequence[str] = (),
    status: str = DRAFT, approval_reference: str | None = None, action: str = "slogan.create",
) -> Slogan:
    text = normalise_text(text)
    await _ensure_unique(session, text)
    slogan = Slogan(
        text=text, number=number, source=_optional_text(source, "source", 200),
        tags=normalise_tags(tags), status=status, content_hash=text_hash(text),
        created_by=actor.name, created_at=now, updated_at=now, edited_by=[actor.name],
    )
    if status == APPROVED:
        slogan.approved_by, slogan.approved_at = actor.name, now
        slogan.approval_reference = approval_reference
    session.add(slogan)
    await _flush_unique(session)
    audit.record(session, actor=actor, action=action, entity_type="slogan",
                 entity_id=slogan.id, after=audit_view(slogan), now=now)
    return slogan


async def update(
    session: AsyncSession, slogan_id: int, *, actor: Principal, now: datetime, changes_: dict[str, Any]
) -> Slogan:
    slogan = await get(session, slogan_id, for_update=True)
    if slogan.status != DRAFT:
        raise Conflict(f"slogan {slogan.id} is {slogan.status}; only drafts can be edited "
                       "(a correction is a new slogan)")
    before = audit_view(slogan)
    if changes_.get("text") is not None:
        text = normalise_text(changes_["text"])
        if text != slogan.text:
            await _ensure_unique(session, text, except_id=slogan.id)
            slogan.text, slogan.content_hash = text, text_hash(text)
            if actor.name not in slogan.edited_by:
                # A new list, so the JSON column is seen as changed.
                slogan.edited_by = [*slogan.edited_by, actor.name]
    if "number" in changes_:
        slogan.number = changes_["number"]
    if "source" in changes_:
        slogan.source = _optional_text(changes_["source"], "source", 200)
    if changes_.get("tags") is not None:
        slogan.tags = normalise_tags(changes_["tags"])
    slogan.updated_at = now
    await _flush_unique(session)
    audit.record(session, actor=actor, action="slogan.update", entity_type="slogan",
                 entity_id=slogan.id, before=before, after=audit_view(slogan), now=now)
    return slogan


def writers(slogan: Slogan) -> set[str]:
    """Everyone who wrote any of the slogan's text: its creator and every editor of a revision."""
    return {slogan.created_by, *slogan.edited_by}


async def approve(
    session: AsyncSession, slogan_id: int, *, actor: Principal, now: datetime, content_hash: str,
    reference: str | None = None,
) -> Slogan:
    """Approve the draft whose text hashes to `content_hash` (what the approver reviewed).

    The row is locked first, so an edit racing the approval either lands before it (and the
    hash no longer matches) or waits and then finds the slogan approved. An admin is held to
    four-eyes like anyone else.
    """
    slogan = await get(session, slogan_id, for_update=True)
    if slogan.status != DRAFT:
        raise Conflict(f"slogan {slogan.id} is {slogan.status}; only drafts can be approved")
    if actor.name in writers(slogan):
        raise NotPermitted("four-eyes rule: a person who wrote any of a slogan's text (its author or an "
                           "editor of a revision) may not approve it")
    if content_hash != slogan.content_hash:
        raise ContentChanged(f"slogan {slogan.id} changed since it was reviewed: its content_hash is now "
                             f"{slogan.content_hash}; read it again before approving")
    before = audit_view(slogan)
    slogan.status, slogan.approved_by, slogan.approved_at = APPROVED, actor.name, now
    slogan.approval_reference = _optional_text(reference, "reference", 200)
    slogan.updated_at = now
    audit.record(session, actor=actor, action="slogan.approve", entity_type="slogan",
                 entity_id=slogan.id, before=before, after=audit_view(slogan), now=now)
    return slogan


async def retire(
    session: AsyncSession, slogan_id: int, *, actor: Principal, now: datetime, reason: str
) -> Slogan:
    """Withdraw a slogan at once; boards stop showing it within seconds (see `changes`)."""
    slogan = await get(session, slogan_id, for_update=True)
    if slogan.status == RETIRED:
        raise Conflict(f"slogan {slogan.id} is already retired")
    reason = normalise_text(reason, field="reason", max_length=500)
    before = audit_view(slogan)
    slogan.status, slogan.retired_by, slogan.retired_at = RETIRED, actor.name, now
    slogan.retire_reason = reason
    slogan.updated_at = now
    audit.record(session, actor=actor, action="slogan.retire", entity_type="slogan",
                 entity_id=slogan.id, before=before, after=audit_view(slogan), now=now)
    await changes.touch(session)
    log.info("slogan %d retired by %s", slogan.id, actor.name, extra={
        "event": "retirement", "slogan_id": slogan.id, "actor": actor.name, "reason": reason})
    return slogan


async def approved_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, str]:
    """Status of each of `ids` that exists."""
    if not ids:
        return {}
    rows = await session.execute(select(Slogan.id, Slogan.status).where(Slogan.id.in_(set(ids))))
    return {row.id: row.status for row in rows}


def require_approved(statuses: dict[int, str], ids: Sequence[int]) -> None:
    for slogan_id in ids:
        status = statuses.get(slogan_id)
        if status is None:
            raise InvalidInput(f"slogan {slogan_id} does not exist")
        if status != APPROVED:
            raise InvalidInput(f"slogan {slogan_id} is {status}; only approved slogans can be shown")
