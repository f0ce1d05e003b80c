"""Schemas every domain shares: the error body, list pages."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ErrorResponse(BaseModel):
    """Every error: a stable machine-readable code and a sentence for people."""

    error: str = Field(description="Machine-readable code, e.g. `invalid_input`, `conflict`.")
    detail: str = Field(description="What went wrong, for a person.")


class StrictModel(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


LIMIT_DESCRIPTION = "Items per page, 1..1000 (default 100)."
CURSOR_DESCRIPTION = "`next_cursor` of the previous page."
