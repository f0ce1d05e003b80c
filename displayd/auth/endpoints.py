"""`/api/v1/audit`: the change history; `/api/v1/keys`: the staff keys. Both for admins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from displayd.auth import audit
from displayd.auth import keys as key_service
from displayd.auth.roles import Permission, Principal
from displayd.db.models import ApiKey
from displayd.deps import Authorize, Now, SessionDep
from displayd.http import decode_cursor, keyset_page
from displayd.schemas import CURSOR_DESCRIPTION, DB_INT_MAX, LIMIT_DESCRIPTION, NO_CONTROLS, Page, StrictModel

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
keys_router = APIRouter(prefix="/api/v1/keys", tags=["keys"])

KeyAdmin = Annotated[Principal, Authorize(Permission.KEY_MANAGE)]


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


AuditPage = Page[AuditEventOut]


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


class KeyOut(BaseModel):
    """A staff key as listed: never the key itself nor its hash."""

    id: int = Field(description="Key id (for `displayd keys revoke ID` and `/keys/{id}/revoke`).")
    name: str = Field(description="Whose key it is (the name in the audit log and for four-eyes).")
    role: Literal["admin", "editor", "approver", "operator"] = Field(description="What the key may do.")
    created_at: datetime = Field(description="When it was made (UTC).")
    last_used_at: datetime | None = Field(description="When it was last used (UTC; updated at most once a minute).")
    revoked_at: datetime | None = Field(description="When it was revoked (UTC); null while it works.")


class KeyCreated(KeyOut):
    """The new key, with the key itself: shown only here, never again."""

    key: str = Field(description="The key, for `Authorization: Bearer`. Store it now; only its hash is kept.")


class KeyCreate(StrictModel):
    """A new staff key."""

    name: str = Field(min_length=1, max_length=400, description="Whose key it is: 1..100 characters once "
                      "white space is folded (NFC; no control, zero-width or bidirectional characters).")
    role: Literal["admin", "editor", "approver", "operator"] = Field(description="What the key may do.")


KeyPage = Page[KeyOut]


def _out(row: ApiKey) -> KeyOut:
    return KeyOut.model_validate(row, from_attributes=True)


@keys_router.get("", summary="List the staff keys (admin; never the keys themselves)")
async def list_keys(
    session: SessionDep,
    _: KeyAdmin,
    limit: Annotated[int, Query(ge=1, le=1000, description=LIMIT_DESCRIPTION)] = 100,
    cursor: Annotated[str | None, Query(description=CURSOR_DESCRIPTION)] = None,
) -> KeyPage:
    after_id = decode_cursor(cursor, ("id",), maximum=DB_INT_MAX)["id"] if cursor else None
    rows = await key_service.list_keys(session, limit=limit + 1, after_id=after_id)
    items, next_cursor = keyset_page(rows, limit)
    return KeyPage(items=[_out(r) for r in items], next_cursor=next_cursor)


@keys_router.post("", status_code=201, summary="Create a staff key (admin; the key is shown only here)")
async def create_key(body: KeyCreate, session: SessionDep, who: KeyAdmin, now: Now) -> KeyCreated:
    row, key = await key_service.create_key(session, actor=who, role=body.role, name=body.name, now=now)
    return KeyCreated.model_validate({**_out(row).model_dump(), "key": key})


@keys_router.post(
    "/{key_id}/revoke",
    summary="Revoke a staff key (admin)",
    description="The key and every dashboard session opened with it stop working at once on this "
                "process and within `change_poll_seconds` on every other. 409 if it was already revoked.",
)
async def revoke_key(key_id: int, session: SessionDep, who: KeyAdmin, now: Now) -> KeyOut:
    return _out(await key_service.revoke_key(session, key_id, actor=who, now=now))
