"""Request and response bodies of `/api/v1/emergency-stop`."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from displayd.schemas import StrictModel

REASON_MAX = 300


class EmergencyStopStart(StrictModel):
    """Why every board must go blank now; kept in the stop and the audit log."""

    # Longer input is allowed here so that white space folded away does not count.
    reason: str = Field(min_length=1, max_length=4 * REASON_MAX,
                        description=f"Why: 1..{REASON_MAX} characters once white space is folded (NFC; no "
                                    "control, zero-width or bidirectional characters).",
                        examples=["Nội dung chưa được phép hiển thị"])


class EmergencyStopOut(BaseModel):
    """An emergency stop: the one that holds (`active` true) or one just lifted."""

    active: bool = Field(description="True while the stop holds (every board blank).")
    id: int = Field(description="Stop id.")
    reason: str = Field(description="Why it was started.")
    started_at: datetime = Field(description="When it was started (UTC).")
    started_by: str = Field(description="Who started it (the key's name).")
    lifted_at: datetime | None = Field(description="When it was lifted (UTC); null while it holds.")
    lifted_by: str | None = Field(description="Who lifted it; null while it holds.")


class NoEmergencyStop(BaseModel):
    """No emergency stop holds: boards show their campaigns."""

    active: Literal[False] = Field(description="Always false.")
