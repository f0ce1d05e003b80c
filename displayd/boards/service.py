"""Board settings and credentials.

A board's poll token is kept as its SHA-256; its push secret is never stored at all: it is
derived from the master key and a per-board nonce (`displayd.keyring`). New credentials
replace both, and the old ones stop working as soon as the change is committed.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from displayd import changes
from displayd.auth import audit
from displayd.auth.keys import hash_secret, new_secret
from displayd.auth.roles import Principal
from displayd.boards.schemas import SLUG
from displayd.boards.urls import Network, check_endpoint
from displayd.catalog.text import normalise_text
from displayd.db import repository
from displayd.db.models import Board, BoardHealth
from displayd.errors import Conflict, InvalidInput, ResourceNotFound
from displayd.keyring import board_secret
from displayd.protocol import BOARD_TOKEN_PREFIX, PUSHED

_SLUG = re.compile(SLUG)


def audit_view(board: Board) -> dict[str, Any]:
    """The board as the audit log keeps it (never credentials)."""
    return {
        "name": board.name, "location": board.location, "groups": list(board.groups),
        "delivery": board.delivery, "endpoint_url": board.endpoint_url, "charset": board.charset,
        "max_chars": board.max_chars, "lines": board.lines, "offset": board.offset,
        "lead_seconds": board.lead_seconds, "enabled": board.enabled,
    }


def _groups(values: Sequence[str]) -> list[str]:
    return sorted({normalise_text(v, field="groups", max_length=64) for v in values})


async def check_delivery(board: Board, networks: Sequence[Network]) -> None:
    """The board's delivery and endpoint as they now stand (new, or changed): `push` and
    `both` need a URL displayd may reach; a `stream` board is never pushed to and has none."""
    if board.delivery == "stream" and board.endpoint_url is not None:
        raise InvalidInput("endpoint_url: stream boards are not pushed to (they open /events themselves); "
                           "leave endpoint_url out, or set it to null when changing a board to stream")
    if board.endpoint_url is not None:
        if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in board.endpoint_url):
            raise InvalidInput("endpoint_url contains a control or formatting character")
        try:
            await check_endpoint(board.endpoint_url, networks)
        except ValueError as exc:  # the IDNA codec refuses an over-long or empty host label
            raise InvalidInput(f"endpoint_url host is not a valid host name: {exc}") from None
    elif board.delivery in PUSHED:
        raise InvalidInput(f"delivery {board.delivery!r} needs an endpoint_url")


def _new_credentials(board: Board, master: bytes) -> tuple[str, str]:
    token = new_secret(BOARD_TOKEN_PREFIX)
    board.token_hash = hash_secret(token)
    board.secret_nonce = secrets.token_hex(16)
    secret = board_secret(master, board.secret_nonce)
    board.secret_hash = hash_secret(secret)
    return token, secret


async def get(session: AsyncSession, board_id: str, *, for_update: bool = False) -> Board:
    if not _SLUG.fullmatch(board_id):  # never a board's id; PostgreSQL refuses a NUL byte outright
        raise ResourceNotFound("board", board_id)
    return await repository.get_by_id(session, Board, board_id, for_update=for_update)


async def list_boards(session: AsyncSession, *, limit: int, after_id: str | None = None) -> list[Board]:
    return await repository.keyset(session, Board, limit=limit, after=after_id)


async def health_of(session: AsyncSession, board_ids: Sequence[str]) -> dict[str, BoardHealth]:
    if not board_ids:
        return {}
    rows = await session.scalars(select(BoardHealth).where(BoardHealth.board_id.in_(board_ids)))
    return {row.board_id: row for row in rows}


async def all_live(session: AsyncSession) -> list[Board]:
    return list(await session.scalars(select(Board).where(Board.deleted_at.is_(None)).order_by(Board.id)))


def new_board(data: dict[str, Any], *, now: datetime, master: bytes) -> tuple[Board, str, str]:
    """A Board row from validated `BoardCreate` data, with its new token and secret (not yet added)."""
    board = Board(
        id=data["id"], name=normalise_text(data["name"], field="name", max_length=200),
        location=None if data.get("location") is None else normalise_text(data["location"], field="location",
                                                                           max_length=300),
        groups=_groups(data["groups"]), delivery=data["delivery"], endpoint_url=data.get("endpoint_url"),
        charset=data["charset"], max_chars=data["max_chars"], lines=data["lines"], offset=data["offset"],
        lead_seconds=data["lead_seconds"], enabled=data["enabled"], created_at=now, updated_at=now,
    )
    token, secret = _new_credentials(board, master)
    return board, token, secret


def apply_changes(board: Board, data: dict[str, Any], *, now: datetime) -> None:
    """`BoardUpdate` data onto the row: given fields replace, omitted ones stay."""
    if data.get("name") is not None:
        board.name = normalise_text(data["name"], field="name", max_length=200)
    if "location" in data:
        board.location = None if data["location"] is None else normalise_text(
            data["location"], field="location", max_length=300)
    if data.get("groups") is not None:
        board.groups = _groups(data["groups"])
    if "endpoint_url" in data:
        board.endpoint_url = data["endpoint_url"]
    for field in ("delivery", "charset", "max_chars", "lines", "offset", "lead_seconds", "enabled"):
        if data.get(field) is not None:
            setattr(board, field, data[field])
    board.updated_at = now


def taken(board_id: str, existing: Board | None) -> Conflict:
    gone = " (deleted; ids are never reused, history keeps them)" if existing and existing.deleted_at else ""
    return Conflict(f"board {board_id} already exists{gone}")


async def create(
    session: AsyncSession, *, actor: Principal, now: datetime, data: dict[str, Any],
    networks: Sequence[Network], master: bytes,
) -> tuple[Board, str, str]:
    """The new board, its token and its secret (which exist nowhere else afterwards)."""
    existing = await session.get(Board, data["id"])
    if existing is not None:
        raise taken(data["id"], existing)
    board, token, secret = new_board(data, now=now, master=master)
    await check_delivery(board, networks)
    session.add(board)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"board {data['id']} already exists") from None
    audit.record(session, actor=actor, action="board.create", entity_type="board", entity_id=board.id,
                 after=audit_view(board), now=now)
    await changes.touch(session)
    return board, token, secret


async def update(
    session: AsyncSession, board_id: str, *, actor: Principal, now: datetime, data: dict[str, Any],
    networks: Sequence[Network],
) -> Board:
    board = await get(session, board_id, for_update=True)
    before = audit_view(board)
    apply_changes(board, data, now=now)
    await check_delivery(board, networks)
    audit.record(session, actor=actor, action="board.update", entity_type="board", entity_id=board.id,
                 before=before, after=audit_view(board), now=now)
    await changes.touch(session)
    return board


async def delete(session: AsyncSession, board_id: str, *, actor: Principal, now: datetime) -> None:
    board = await get(session, board_id, for_update=True)
    board.deleted_at = board.updated_at = now
    audit.record(session, actor=actor, action="board.delete", entity_type="board", entity_id=board.id,
                 before=audit_view(board), now=now)
    await changes.touch(session)


async def renew_credentials(
    session: AsyncSession, board_id: str, *, actor: Principal, now: datetime, master: bytes
) -> tuple[str, str]:
    board = await get(session, board_id, for_update=True)
    token, secret = _new_credentials(board, master)
    board.updated_at = now
    audit.record(session, actor=actor, action="board.credentials", entity_type="board", entity_id=board.id,
                 detail="new poll token and push secret", now=now)
    await changes.touch(session)
    return token, secret
