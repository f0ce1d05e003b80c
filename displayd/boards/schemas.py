"""Request and response bodies of `/api/v1/boards`.

A board's `delivery` says how content reaches it: `push` (displayd POSTs to its
`endpoint_url`), `poll` (it asks `/current`), `stream` (it holds `/events` open) or `both`
(push and poll). `push` and `both` need an `endpoint_url`; a `stream` board is never pushed
to and must have none (`BoardUpdate` says what that means for a change).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from displayd.schemas import Page, StrictModel

Delivery = Literal["push", "poll", "stream", "both"]
Charset = Literal["utf-8", "ascii"]
SLUG = r"^[a-z0-9][a-z0-9-]{0,63}$"
MAX_LEAD_SECONDS = 300
DELIVERY_DESCRIPTION = "`push`, `poll`, `stream` or `both` (push and poll)."
LEAD_DESCRIPTION = (f"Seconds before a slot starts that its content is sent (pushed, streamed, offered as a poll's "
                    f"`next`), 0..{MAX_LEAD_SECONDS}; 0 means at the start (a stream board gets it at least 2 s "
                    f"ahead).")


class BoardCreate(StrictModel):
    """A new board. Its token and secret are in the response, once."""

    id: str = Field(pattern=SLUG, description="Slug: lower-case letters, digits and `-`, up to 64.")
    name: str = Field(description="Name, 1..200 characters.")
    location: str | None = Field(None, description="Where it hangs.")
    groups: list[str] = Field(default_factory=list, max_length=50, description="Group slugs campaigns target.")
    delivery: Delivery = Field("push", description=DELIVERY_DESCRIPTION)
    endpoint_url: str | None = Field(None, max_length=500, description="Push URL (http/https); needed for `push` "
                                     "and `both`, refused for `stream`.")
    charset: Charset = Field("utf-8", description="`ascii` shows Vietnamese without diacritics.")
    max_chars: int = Field(40, ge=1, le=1000, description="Characters per line.")
    lines: int = Field(2, ge=1, le=50, description="Lines per page.")
    offset: int = Field(0, ge=0, le=1_000_000, description="Shifts the board's place in the cycle.")
    lead_seconds: int = Field(0, ge=0, le=MAX_LEAD_SECONDS, description=LEAD_DESCRIPTION)
    enabled: bool = Field(True, description="Disabled boards are given nothing.")


class BoardImport(StrictModel):
    """Boards to create or update in one change, all or nothing."""

    boards: list[dict[str, Any]] = Field(max_length=10_000, description="Boards as `POST /boards` takes them; "
                                         "an existing id is updated with these fields (its credentials stay).")


class NewCredentials(BaseModel):
    """A new board's token and secret, shown once."""

    id: str = Field(description="Board id.")
    token: str = Field(description="Poll token.")
    secret: str = Field(description="Push signing secret (`whsec_…`).")


class BoardImportResult(BaseModel):
    """What an import did."""

    created: list[NewCredentials] = Field(description="New boards with their credentials (shown only here).")
    updated: list[str] = Field(description="Ids of existing boards updated.")


class BoardUpdate(StrictModel):
    """Changes to a board; omitted fields stay. The board as changed must be valid as a new one.

    A `stream` board has no `endpoint_url` (it is never pushed to), and a change never drops
    one silently: turning a board that has a URL into a `stream` board clears the URL in the
    same change, `{"delivery": "stream", "endpoint_url": null}`; `{"delivery": "stream"}`
    alone is refused (422) while the URL is there. The same rule holds on create and import.
    """

    name: str | None = Field(None, description="Name.")
    location: str | None = Field(None, description="Where it hangs.")
    groups: list[str] | None = Field(None, max_length=50, description="Replaces the groups.")
    delivery: Delivery | None = Field(None, description=DELIVERY_DESCRIPTION)
    endpoint_url: str | None = Field(None, max_length=500, description="Push URL; null clears it (as a change to "
                                     "`stream` must).")
    charset: Charset | None = Field(None, description="`utf-8` or `ascii`.")
    max_chars: int | None = Field(None, ge=1, le=1000, description="Characters per line.")
    lines: int | None = Field(None, ge=1, le=50, description="Lines per page.")
    offset: int | None = Field(None, ge=0, le=1_000_000, description="Cycle offset.")
    lead_seconds: int | None = Field(None, ge=0, le=MAX_LEAD_SECONDS, description=LEAD_DESCRIPTION)
    enabled: bool | None = Field(None, description="Enable or disable.")


class BoardHealth(BaseModel):
    """How delivery to and polling by the board are going."""

    last_push_at: datetime | None = Field(None, description="Last push attempt (UTC).")
    last_push_status: str | None = Field(None, description="Outcome of the last push.")
    last_poll_at: datetime | None = Field(None, description="Last poll seen by this process (UTC).")
    consecutive_failures: int = Field(0, description="Slots failed in a row.")
    last_push_error: str | None = Field(None, description="Why the last push failed.")
    reachable: bool = Field(True, description="False after 5 failed slots in a row, until it answers again.")
    unreachable_since: datetime | None = Field(None, description="When it became unreachable (UTC).")
    integrity_incidents: int = Field(0, description="Times it reported content displayd never issued.")
    last_incident_at: datetime | None = Field(None, description="Last integrity incident (UTC).")
    plan_error: str | None = Field(None, description="Why (part of) the board's plan cannot be computed; the "
                                                     "campaign at fault is left out, or the board is idle.")


class BoardOut(BaseModel):
    """A board, what it shows now and its health."""

    id: str = Field(description="Board id (slug).")
    name: str = Field(description="Name.")
    location: str | None = Field(description="Where it hangs.")
    groups: list[str] = Field(description="Groups.")
    delivery: str = Field(description=DELIVERY_DESCRIPTION)
    endpoint_url: str | None = Field(description="Push URL (always null for a stream board).")
    charset: str = Field(description="`utf-8` or `ascii`.")
    max_chars: int = Field(description="Characters per line.")
    lines: int = Field(description="Lines per page.")
    offset: int = Field(description="Cycle offset.")
    lead_seconds: int = Field(description=LEAD_DESCRIPTION)
    enabled: bool = Field(description="Whether it is given content.")
    created_at: datetime = Field(description="Created (UTC).")
    updated_at: datetime = Field(description="Last change (UTC).")
    current: dict[str, Any] | None = Field(None, description="What it shows now, as `/current` answers.")
    health: BoardHealth = Field(description="Delivery and polling health.")


class BoardCreated(BoardOut):
    """A new board with its credentials, shown only this once."""

    token: str = Field(description="Poll token (`Authorization: Bearer`). Shown once.")
    secret: str = Field(description="Push signing secret (`whsec_…`). Shown once.")


class Credentials(BaseModel):
    """New credentials; the old ones stop working at once."""

    board_id: str = Field(description="Board id.")
    token: str = Field(description="Poll token. Shown once.")
    secret: str = Field(description="Push signing secret. Shown once.")


BoardPage = Page[BoardOut]


class PlannedSlot(BaseModel):
    """One planned showing, exactly as the board will be given it."""

    starts_at: datetime = Field(description="When the board starts showing it (UTC).")
    ends_at: datetime = Field(description="When it stops (UTC).")
    local_starts_at: str = Field(description="`starts_at` in the campaign's time zone.")
    local_ends_at: str = Field(description="`ends_at` in the campaign's time zone.")
    campaign_id: int = Field(description="Campaign.")
    campaign_name: str = Field(description="Campaign name.")
    slot_index: int = Field(description="Slot number within the campaign.")
    slogan_id: int = Field(description="Slogan.")
    text: str = Field(description="Text as the board gets it (in its charset).")
    pages: list[list[str]] = Field(description="Pages of lines as the board gets them.")
    content_hash: str = Field(description="Hash of the content the board gets.")


class Schedule(BaseModel):
    """A board's planned slots over a range."""

    board_id: str = Field(description="Board id.")
    items: list[PlannedSlot] = Field(description="Planned slots in time order; idle gaps omitted.")
    next_cursor: str | None = Field(None, description="Always null: the whole range is listed.")
