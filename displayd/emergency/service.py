"""Starting and lifting the emergency stop.

    stop, started = await start(session, actor=who, now=now, reason="…")  # started False: one already held
    stop = await lift(session, actor=who, now=now)                        # NoStopHolds (404) when none does
    stop = await holding(session)                                         # the stop that holds, or None

At most one stop holds: the `emergency_stop` row whose `lifted_at` is null. Both changes
move the change version (`changes.touch`), so every process's snapshot, and with it every
poll, turns idle (or back) as soon as it commits, and both are audited in the same
transaction. Like every service here, nothing commits: the request owns the transaction.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from displayd import changes
from displayd.auth import audit
from displayd.auth.roles import Principal
from displayd.catalog.text import normalise_text
from displayd.db.models import ChangeVersion, EmergencyStop
from displayd.emergency.schemas import REASON_MAX
from displayd.errors import DisplaydError, ResourceNotFound

log = logging.getLogger("displayd.emergency")


class NoStopHolds(ResourceNotFound):
    """`DELETE /api/v1/emergency-stop` with nothing to lift."""

    def __init__(self) -> None:
        DisplaydError.__init__(self, "no emergency stop holds")


def audit_view(stop: EmergencyStop) -> dict[str, Any]:
    """The stop as the audit log keeps it."""
    return {
        "reason": stop.reason, "started_at": stop.started_at.isoformat(), "started_by": stop.started_by,
        "lifted_at": stop.lifted_at.isoformat() if stop.lifted_at else None, "lifted_by": stop.lifted_by,
    }


async def holding(session: AsyncSession) -> EmergencyStop | None:
    """The stop that holds, or None."""
    return await session.scalar(select(EmergencyStop).where(EmergencyStop.lifted_at.is_(None))
                                .order_by(EmergencyStop.id.desc()).limit(1))


async def _one_at_a_time(session: AsyncSession) -> None:
    """Wait for any other start or lift to commit before looking at what holds.

    Two people pressing at once must not make two stops. A no-op update of the one
    `change_version` row takes its row lock on PostgreSQL (the other transaction's next
    statement sees the committed stop) and the write lock on SQLite (a deferred transaction
    that only read first could not write after another committed). Every change takes that
    row in `touch` anyway, so this serialises nothing that was not already serialised."""
    await session.execute(update(ChangeVersion).where(ChangeVersion.id == 1)
                          .values(version=ChangeVersion.version)
                          .execution_options(synchronize_session=False))


async def start(session: AsyncSession, *, actor: Principal, now: datetime,
                reason: str) -> tuple[EmergencyStop, bool]:
    """Start a stop: `(the new stop, True)`, or `(the one that already holds, False)`, unchanged:
    a second press in a hurry is not an error."""
    reason = normalise_text(reason, field="reason", max_length=REASON_MAX)
    await _one_at_a_time(session)
    current = await holding(session)
    if current is not None:
        return current, False
    stop = EmergencyStop(reason=reason, started_at=now, started_by=actor.name)
    session.add(stop)
    await session.flush()
    audit.record(session, actor=actor, action="emergency_stop.start", entity_type="emergency_stop",
                 entity_id=stop.id, after=audit_view(stop), detail=reason, now=now)
    await changes.touch(session)
    log.warning("emergency stop %d started by %s: every board blank", stop.id, actor.name, extra={
        "event": "emergency_stop", "stop_id": stop.id, "actor": actor.name, "reason": reason})
    return stop, True


async def lift(session: AsyncSession, *, actor: Principal, now: datetime) -> EmergencyStop:
    """Lift the stop that holds: boards show their campaigns again. NoStopHolds if none does."""
    await _one_at_a_time(session)
    stop = await holding(session)
    if stop is None:
        raise NoStopHolds()
    before = audit_view(stop)
    stop.lifted_at, stop.lifted_by = now, actor.name
    audit.record(session, actor=actor, action="emergency_stop.lift", entity_type="emergency_stop",
                 entity_id=stop.id, before=before, after=audit_view(stop), detail=stop.reason, now=now)
    await changes.touch(session)
    log.warning("emergency stop %d lifted by %s", stop.id, actor.name, extra={
        "event": "emergency_stop_lifted", "stop_id": stop.id, "actor": actor.name})
    return stop
