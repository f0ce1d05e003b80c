"""Response bodies of the rotation log and the airtime report."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from displayd.schemas import Page

PushStatus = Literal["pending", "delivered", "failed", "skipped", "missed", "not_pushed"]


class RotationOut(BaseModel):
    """One row of the rotation log: what a board was given for one slot, and how it went."""

    id: int = Field(description="Row id; rows are listed in the order they were recorded.")
    board_id: str = Field(description="Board.")
    campaign_id: int = Field(description="Campaign.")
    slot_index: int = Field(description="Slot number within the campaign.")
    slogan_id: int = Field(description="Slogan given.")
    content_hash: str = Field(description="Hash of the content given.")
    starts_at: datetime = Field(description="When the board was to start showing it (UTC).")
    ends_at: datetime = Field(description="When it was to stop (UTC).")
    push_status: PushStatus = Field(description="pending, delivered, failed, skipped, missed or not_pushed.")
    attempts: int = Field(description="Push attempts made.")
    http_status: int | None = Field(description="HTTP status of the last attempt.")
    latency_ms: int | None = Field(description="Duration of the last attempt.")
    error: str | None = Field(description="Why delivery failed, or a note.")
    delivered_at: datetime | None = Field(description="When the board accepted the push (UTC).")
    first_polled_at: datetime | None = Field(description="When the board first polled this content (UTC).")
    revisions: int = Field(description="The highest revision of the slot sent: 0 when only the first send went "
                                       "out, one more for each change sent within the slot (a retirement, a "
                                       "pause, an edit, the emergency stop, a resumption).")


RotationPage = Page[RotationOut]


class AirtimeRow(BaseModel):
    """Airtime of one slogan, board or day."""

    key: str = Field(description="Slogan id, board id or local date (YYYY-MM-DD).")
    label: str = Field(description="Slogan text, board name or the date.")
    slots: int = Field(description="Slots given (missed ones excluded).")
    seconds: float = Field(description="Seconds shown (the slots' durations).")
    missed: int = Field(description="Slots that passed while displayd was down.")
    delivered_ratio: float | None = Field(description="Delivered pushes / slots meant for push; null if none.")
    polled_ratio: float | None = Field(description="Slots polled at least once / slots of polling boards.")


class AirtimeReport(BaseModel):
    """Airtime grouped by slogan, board or day."""

    by: Literal["slogan", "board", "day"] = Field(description="The grouping.")
    campaign_id: int | None = Field(description="The campaign reported on, or null for all.")
    timezone: str = Field(description="The campaign's time zone, whose local days `by=day` lists (without a "
                                      "campaign, each slot's day is in its own campaign's zone; this names the "
                                      "default).")
    starts_at: datetime | None = Field(description="Range start (UTC), if given.")
    ends_at: datetime | None = Field(description="Range end (UTC), if given.")
    items: list[AirtimeRow] = Field(description="One row per slogan, board or day.")
