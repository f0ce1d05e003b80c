"""Schemas every domain shares: the error body, list pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


# An instant given with any offset, kept in UTC; a time without an offset is refused.
UTCDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


class ErrorResponse(BaseModel):
    """Every error: a stable machine-readable code and a sentence for people."""

    error: str = Field(description="Machine-readable code, e.g. `invalid_input`, `conflict`.")
    detail: str = Field(description="What went wrong, for a person.")


class StrictModel(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


LIMIT_DESCRIPTION = "Items per page, 1..1000 (default 100)."
CURSOR_DESCRIPTION = "`next_cursor` of the previous page."
