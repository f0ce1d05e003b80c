"""Request and response bodies of `/api/v1/slogans`."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from displayd.schemas import Page, StrictModel

SloganStatus = Literal["draft", "approved", "retired"]


class SloganCreate(StrictModel):
    """A new slogan; it starts as a draft."""

    text: str = Field(description="The text; stored NFC-normalised, white space folded; 1..280 characters.")
    number: int | None = Field(None, ge=0, le=100000, description="Item number in the source document.")
    source: str | None = Field(None, max_length=200, description="Source, e.g. `101-HD/BTGTU mục IV`.")
    tags: list[str] = Field(default_factory=list, max_length=20, description="Free labels, each 1..50 characters.")


class SloganUpdate(StrictModel):
    """Changes to a draft; omitted fields stay as they are."""

    text: str | None = Field(None, description="New text (drafts only).")
    number: int | None = Field(None, ge=0, le=100000, description="Item number in the source document.")
    source: str | None = Field(None, max_length=200, description="Where the text comes from.")
    tags: list[str] | None = Field(None, max_length=20, description="Replaces the labels.")


class ApproveRequest(StrictModel):
    """What the approver reviewed, and an optional approval reference."""

    content_hash: str = Field(pattern=r"^sha256:[0-9a-f]{64}$",
                              description="The `content_hash` of the text the approver reviewed "
                                          "(409 `content_changed` if the text changed since).")
    reference: str | None = Field(None, max_length=200, description="Approval reference, e.g. `101-HD/BTGTU`.")


class RetireRequest(StrictModel):
    """Why the slogan is withdrawn; kept in the slogan and the audit log."""

    reason: str = Field(min_length=1, max_length=500, description="Why the slogan is withdrawn.")


class SloganOut(BaseModel):
    """A slogan as stored, with its lifecycle."""

    id: int = Field(description="Slogan id.")
    text: str = Field(description="NFC-normalised text.")
    number: int | None = Field(description="Item number in the source document.")
    source: str | None = Field(description="Where the text comes from.")
    tags: list[str] = Field(description="Free labels.")
    status: SloganStatus = Field(description="`draft`, `approved` or `retired`.")
    content_hash: str = Field(description="`sha256:` of the UTF-8 text.")
    created_by: str = Field(description="Name of the key that created it.")
    edited_by: list[str] = Field(description="Everyone who wrote its text: the creator and every editor "
                                             "of a revision (none of them may approve it).")
    created_at: datetime = Field(description="When it was created (UTC).")
    updated_at: datetime = Field(description="Last change (UTC).")
    approved_by: str | None = Field(description="Who approved it.")
    approved_at: datetime | None = Field(description="When it was approved (UTC).")
    approval_reference: str | None = Field(description="Approval reference (document code for imports).")
    retired_at: datetime | None = Field(description="When it was retired (UTC).")
    retired_by: str | None = Field(description="Who retired it.")
    retire_reason: str | None = Field(description="Why it was retired.")


SloganPage = Page[SloganOut]
