"""Schemas every domain shares: the error body, list pages, instants and their accepted span.

    StrictModel          request bodies: unknown fields refused, numbers must be JSON numbers
    UTCDatetime          an ISO 8601 instant with an offset, kept in UTC
    BoundedUTCDatetime   the same, within EARLIEST..LATEST (every date a client gives)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, Strict

# Ids of slogans, campaigns and api keys are 32-bit INTEGER columns on PostgreSQL; a larger
# number can name nothing, and sent to the database it is an error, not an empty result.
DB_INT_MAX = 2**31 - 1


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError("is out of range once converted to UTC") from None


def _iso_only(value: object) -> object:
    # pydantic would read a number as seconds since 1970; the contract exchanges ISO 8601 only.
    if not isinstance(value, str | datetime):
        raise ValueError("must be an ISO 8601 date and time with an offset, e.g. 2024-05-07T00:00:00Z")
    return value


# An instant given with any offset, kept in UTC; a time without an offset is refused.
# Strict(False): request bodies are strict (`StrictModel`), but JSON has no datetime type, so
# an instant always arrives as an ISO 8601 string and must still be parsed from one.
UTCDatetime = Annotated[AwareDatetime, Strict(False), BeforeValidator(_iso_only), AfterValidator(_to_utc)]

# Every date a client gives (campaign windows, schedule and report ranges) lies in this span,
# both ends included. It holds every plausible campaign and keeps all date arithmetic (a slot
# past a window's end, a week or a day stepped past it, local time in any zone, UTC-12..+14)
# centuries away from the ends of Python's calendar (years 1 and 9999).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
SPAN = "2000-01-01T00:00:00Z .. 2100-01-01T00:00:00Z"


def _within_span(value: datetime) -> datetime:
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"must lie within {SPAN}")
    return value


BoundedUTCDatetime = Annotated[UTCDatetime, AfterValidator(_within_span)]


class ErrorResponse(BaseModel):
    """Every error: a stable machine-readable code and a sentence for people."""

    error: str = Field(description="Machine-readable code, e.g. `invalid_input`, `conflict`.")
    detail: str = Field(description="What went wrong, for a person.")


class StrictModel(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped, and every value must
    already be of its JSON type: `"30"` is not 30, `"true"` not true, 1 not true. Instants are
    ISO 8601 strings (`UTCDatetime`), choices are strings."""

    model_config = ConfigDict(extra="forbid", strict=True)


# Free-text filters: no control characters (PostgreSQL refuses a NUL byte outright).
NO_CONTROLS = r"^[^\x00-\x1f\x7f]*$"

LIMIT_DESCRIPTION = "Items per page, 1..1000 (default 100)."
CURSOR_DESCRIPTION = "`next_cursor` of the previous page."


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list: `items` in the list's order and the cursor for the next page.

        Page[SloganOut](items=[…], next_cursor="eyJpZCI6MTAwfQ")   # every list answers this shape
    """

    # The parametrised classes (Page[SloganOut]) have no docstring of their own.
    model_config = ConfigDict(json_schema_extra={"description": "One page of a list and the cursor for the next."})

    items: list[T] = Field(description="This page's items, in the list's order.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")
