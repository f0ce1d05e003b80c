"""`/api/v1/emergency-stop`: blank every board at once (admin, approver), read and lift it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response

from displayd.auth.roles import Permission, Principal
from displayd.db.models import EmergencyStop
from displayd.deps import Authorize, Now, Reader, SessionDep
from displayd.emergency import service
from displayd.emergency.schemas import EmergencyStopOut, EmergencyStopStart, NoEmergencyStop

router = APIRouter(prefix="/api/v1/emergency-stop", tags=["emergency stop"])

Stopper = Annotated[Principal, Authorize(Permission.EMERGENCY_STOP)]


def _out(stop: EmergencyStop) -> EmergencyStopOut:
    return EmergencyStopOut(active=stop.lifted_at is None, id=stop.id, reason=stop.reason,
                            started_at=stop.started_at, started_by=stop.started_by,
                            lifted_at=stop.lifted_at, lifted_by=stop.lifted_by)


@router.get("", summary="The emergency stop that holds, if any")
async def get_stop(session: SessionDep, _: Reader) -> EmergencyStopOut | NoEmergencyStop:
    stop = await service.holding(session)
    return NoEmergencyStop(active=False) if stop is None else _out(stop)


@router.post(
    "",
    status_code=201,
    summary="Start an emergency stop: every board blank at once (admin, approver)",
    description="Polls answer idle, push boards are sent a blank, streams get `blank`, until the stop is "
                "lifted; it holds across restarts. If a stop already holds, that one is answered with 200 "
                "and nothing changes (a second press is not an error).",
    responses={200: {"model": EmergencyStopOut, "description": "A stop already held: that one, unchanged."}},
)
async def start_stop(body: EmergencyStopStart, session: SessionDep, who: Stopper, now: Now,
                     response: Response) -> EmergencyStopOut:
    stop, started = await service.start(session, actor=who, now=now, reason=body.reason)
    if not started:
        response.status_code = 200
    return _out(stop)


@router.delete(
    "",
    summary="Lift the emergency stop: boards show their campaigns again (admin, approver)",
    description="Answers the lifted stop (`active` false); 404 if none holds.",
)
async def lift_stop(session: SessionDep, who: Stopper, now: Now) -> EmergencyStopOut:
    return _out(await service.lift(session, actor=who, now=now))
