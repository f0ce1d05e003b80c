"""`/api/v1/boards`: settings, credentials, `/current` (documented here, answered by
`displayd.live.poll`) and `/schedule`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response

from displayd.auth.roles import Permission, Principal
from displayd.boards import bulk, service
from displayd.boards.schemas import (
    BoardCreate,
    BoardCreated,
    BoardHealth,
    BoardImport,
    BoardImportResult,
    BoardOut,
    BoardPage,
    BoardUpdate,
    Credentials,
    NewCredentials,
    PlannedSlot,
    Schedule,
)
from displayd.db.models import Board
from displayd.db.models import BoardHealth as BoardHealthRow
from displayd.deps import Authorize, Now, Reader, SessionDep, commit_now
from displayd.errors import InvalidInput, ResourceNotFound
from displayd.http import decode_cursor, keyset_page
from displayd.live import poll
from displayd.live.snapshot import Snapshot
from displayd.runtime import runtime_of
from displayd.schemas import CURSOR_DESCRIPTION, LIMIT_DESCRIPTION, SPAN, BoundedUTCDatetime

router = APIRouter(prefix="/api/v1/boards", tags=["boards"])

Admin = Annotated[Principal, Authorize(Permission.BOARD_WRITE)]


def _health(request: Request, board_id: str, row: BoardHealthRow | None) -> BoardHealth:
    """The stored health, with this process's own most recent poll if it is newer."""
    health = BoardHealth() if row is None else BoardHealth(
        last_push_at=row.last_push_at, last_push_status=row.last_push_status,
        last_push_error=row.last_push_error, last_poll_at=row.last_poll_at,
        consecutive_failures=row.consecutive_failures, reachable=row.unreachable_since is None,
        unreachable_since=row.unreachable_since, integrity_incidents=row.integrity_incidents,
        last_incident_at=row.last_incident_at)
    health.plan_error = runtime_of(request.app).snapshot.board_error(board_id)
    polled = runtime_of(request.app).polls.last_poll.get(board_id)
    if polled is not None and (health.last_poll_at is None or polled > health.last_poll_at):
        health.last_poll_at = polled
    return health


def _out(request: Request, board: Board, now: datetime, health: BoardHealthRow | None) -> dict[str, Any]:
    snapshot: Snapshot = runtime_of(request.app).snapshot
    current = snapshot.showing(board.id, now).document if board.id in snapshot.boards else None
    health_out = _health(request, board.id, health)
    return {
        "id": board.id, "name": board.name, "location": board.location, "groups": board.groups,
        "delivery": board.delivery, "endpoint_url": board.endpoint_url, "charset": board.charset,
        "max_chars": board.max_chars, "lines": board.lines, "offset": board.offset,
        "lead_seconds": board.lead_seconds, "enabled": board.enabled, "created_at": board.created_at,
        "updated_at": board.updated_at, "current": current, "health": health_out,
    }


@router.get("", summary="List boards with what they show and their health")
async def list_boards(
    request: Request, session: SessionDep, _: Reader, now: Now,
    limit: Annotated[int, Query(ge=1, le=1000, description=LIMIT_DESCRIPTION)] = 100,
    cursor: Annotated[str | None, Query(description=CURSOR_DESCRIPTION)] = None,
) -> BoardPage:
    after_id = decode_cursor(cursor, ("id",), kind=str)["id"] if cursor else None
    rows = await service.list_boards(session, limit=limit + 1, after_id=after_id)
    items, next_cursor = keyset_page(rows, limit)
    health = await service.health_of(session, [b.id for b in items])
    return BoardPage.model_validate({"items": [_out(request, b, now, health.get(b.id)) for b in items],
                                     "next_cursor": next_cursor})


@router.post("", status_code=201, summary="Create a board (its token and secret are shown once)")
async def create_board(request: Request, body: BoardCreate, session: SessionDep, who: Admin, now: Now) -> BoardCreated:
    runtime = runtime_of(request.app)
    board, token, secret = await service.create(
        session, actor=who, now=now, data=body.model_dump(), networks=runtime.settings.board_networks(),
        master=runtime.master)
    await commit_now(request, session)
    out = _out(request, board, now, None)
    return BoardCreated.model_validate({**out, "token": token, "secret": secret})


@router.post("/import", status_code=201, summary="Create or update many boards in one change, all or nothing")
async def import_boards(request: Request, body: BoardImport, session: SessionDep, who: Admin,
                        now: Now) -> BoardImportResult:
    """Up to 10,000 boards (bodies up to 4 MiB here). A bad item rejects the whole list with
    its position (`item 3: …`); new boards' tokens and secrets are in the answer, once."""
    runtime = runtime_of(request.app)
    rows = bulk.parse_items(list(enumerate(body.boards, start=1)), unit="item")
    result = await bulk.apply(session, rows, actor=who, now=now, networks=runtime.settings.board_networks(),
                              master=runtime.master, unit="item")
    await commit_now(request, session)
    return BoardImportResult(created=[NewCredentials(id=c.board_id, token=c.token, secret=c.secret)
                                      for c in result.created], updated=result.updated)


@router.get("/{board_id}", summary="Read a board with what it shows and its health")
async def get_board(request: Request, board_id: str, session: SessionDep, _: Reader, now: Now) -> BoardOut:
    board = await service.get(session, board_id)
    health = await service.health_of(session, [board_id])
    return BoardOut.model_validate(_out(request, board, now, health.get(board_id)))


@router.patch("/{board_id}", summary="Edit a board")
async def update_board(
    request: Request, board_id: str, body: BoardUpdate, session: SessionDep, who: Admin, now: Now
) -> BoardOut:
    board = await service.update(session, board_id, actor=who, now=now, data=body.model_dump(exclude_unset=True),
                                 networks=runtime_of(request.app).settings.board_networks())
    await commit_now(request, session)
    health = await service.health_of(session, [board_id])
    return BoardOut.model_validate(_out(request, board, now, health.get(board_id)))


@router.delete("/{board_id}", status_code=204, summary="Delete a board (hidden, kept for the log)")
async def delete_board(board_id: str, session: SessionDep, who: Admin, now: Now) -> Response:
    await service.delete(session, board_id, actor=who, now=now)
    return Response(status_code=204)


@router.post("/{board_id}/credentials", summary="New poll token and push secret (old ones stop working)")
async def renew_credentials(request: Request, board_id: str, session: SessionDep, who: Admin, now: Now) -> Credentials:
    token, secret = await service.renew_credentials(session, board_id, actor=who, now=now,
                                                    master=runtime_of(request.app).master)
    return Credentials(board_id=board_id, token=token, secret=secret)


CURRENT_EXAMPLE = {
    "board_id": "so-sanh-chinh", "state": "showing",
    "slot": {"campaign_id": 3, "index": 1234, "starts_at": "2024-05-07T00:00:00Z", "ends_at": "2024-05-07T00:00:30Z"},
    "content": {"slogan_id": 7, "text": "…", "pages": [["…", "…"]], "charset": "utf-8"},
    "content_hash": "sha256:…", "valid_until": "2024-05-07T00:00:30Z",
}


@router.get(
    "/{board_id}/current",
    summary="What the board shows now (board token or staff key)",
    response_class=Response,
    responses={
        200: {"description": "`state` is `showing` or `idle` (then `content` is null). `ETag` names content "
                             "and slot; `Cache-Control: max-age` is the seconds left in the slot.",
              "content": {"application/json": {"example": CURRENT_EXAMPLE},
                          "text/plain": {"example": "Chiến thắng Điện Biên Phủ\n"}}},
        304: {"description": "`If-None-Match` names what the board shows."},
    },
)
async def current(
    request: Request,
    board_id: str,
    format: Annotated[Literal["json", "text"], Query(description="`text` for plain-text controllers.")] = "json",
    if_none_match: Annotated[str | None, Header(description="ETag of what the board shows.")] = None,
) -> Response:
    result = await poll.answer(runtime_of(request.app), board_id, authorization=request.headers.get("authorization"),
                               if_none_match=if_none_match, query=f"format={format}",
                               client=request.client.host if request.client else "unknown")
    return Response(result.body, status_code=result.status, headers={k.decode(): v.decode() for k, v in result.headers})


@router.get("/{board_id}/schedule", summary="The board's planned slots over a range (at most 10,000)")
async def schedule(
    request: Request, board_id: str, _: Reader,
    from_: Annotated[BoundedUTCDatetime, Query(
        alias="from", description=f"Range start, ISO 8601 with offset, within {SPAN}.")],
    to: Annotated[BoundedUTCDatetime, Query(description=f"Range end (exclusive), within {SPAN}.")],
) -> Schedule:
    if to <= from_:
        raise InvalidInput("`to` must be after `from`")
    snapshot: Snapshot = runtime_of(request.app).snapshot
    if board_id not in snapshot.boards:
        raise ResourceNotFound("board", board_id)
    items = [
        PlannedSlot(
            starts_at=a.starts_at, ends_at=a.ends_at, local_starts_at=snapshot.local(a.campaign_id, a.starts_at),
            local_ends_at=snapshot.local(a.campaign_id, a.ends_at), campaign_id=a.campaign_id,
            campaign_name=snapshot.campaign_names[a.campaign_id], slot_index=a.slot_index, slogan_id=a.slogan_id,
            text=content["text"], pages=content["pages"], content_hash=digest,
        )
        for a, content, digest in snapshot.schedule(board_id, from_, to)
    ]
    return Schedule(board_id=board_id, items=items)
