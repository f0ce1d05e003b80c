"""Boards by the hundred: `displayd boards import FILE` and `POST /api/v1/boards/import`.

    rows = parse_file(Path("bang.csv"))       # [(line, BoardCreate), …]; InvalidInput("line 7: …")
    result = await apply(session, rows, actor=…, now=…, networks=…, master=…)

A file is CSV (UTF-8, a header row naming `BoardCreate`'s fields, `groups` separated by
`;`) or YAML (a list of mappings, or `{boards: [...]}`). Each line creates the board with
that id, or updates it when it exists (the file's fields replace the board's; credentials
stay). The whole file is checked and applied in one transaction and one change, so running
boards see it in one snapshot rebuild, and one bad line (its number in the error) leaves
everything as it was. New boards' tokens and secrets are returned once, for the caller to
put where only its owner reads them (the CLI writes a 0600 file, never the terminal).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from displayd import changes
from displayd.auth import audit
from displayd.auth.roles import Principal
from displayd.boards import service
from displayd.boards.schemas import BoardCreate
from displayd.boards.urls import Network
from displayd.db.models import Board
from displayd.errors import Conflict, DisplaydError, InvalidInput
from displayd.progress import Progress

__all__ = ["MAX_BOARDS", "BulkResult", "NewCredentials", "apply", "parse_file", "parse_items", "write_credentials"]

MAX_BOARDS = 10_000
MAX_BODY_BYTES = 4 * 1024 * 1024  # POST /api/v1/boards/import: 10,000 boards of ~300 bytes
INTEGERS = ("max_chars", "lines", "offset", "lead_seconds")
TRUE, FALSE = frozenset({"true", "1", "yes", "có"}), frozenset({"false", "0", "no", "không"})


@dataclass(frozen=True)
class NewCredentials:
    board_id: str
    token: str
    secret: str


@dataclass
class BulkResult:
    created: list[NewCredentials] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "line"
    return f"{where}: {first['msg']}"


def _from_csv_cell(name: str, value: str) -> Any:
    """CSV has only text: the columns that are numbers, flags and lists become them here."""
    value = value.strip()
    if value == "":
        return None
    if name in INTEGERS:
        try:
            return int(value)
        except ValueError:
            raise InvalidInput(f"{name}: {value!r} is not a whole number") from None
    if name == "enabled":
        if value.lower() in TRUE:
            return True
        if value.lower() in FALSE:
            return False
        raise InvalidInput(f"enabled: {value!r} is not true or false")
    if name == "groups":
        return [group.strip() for group in value.split(";") if group.strip()]
    return value


def parse_items(items: Sequence[tuple[int, Any]], *, unit: str = "line") -> list[tuple[int, BoardCreate]]:
    """Validate (line, mapping) pairs; the first bad one raises InvalidInput naming its line
    (`unit="item"` for a JSON list, counted from 1)."""
    if len(items) > MAX_BOARDS:
        raise InvalidInput(f"at most {MAX_BOARDS:,} boards per import (got {len(items):,})")
    rows: list[tuple[int, BoardCreate]] = []
    seen: dict[str, int] = {}
    for line, item in items:
        if not isinstance(item, dict):
            raise InvalidInput(f"{unit} {line}: expected a board (a mapping of its fields)")
        try:
            board = BoardCreate.model_validate(item)
        except ValidationError as exc:
            raise InvalidInput(f"{unit} {line}: {_validation_message(exc)}") from None
        if board.id in seen:
            raise InvalidInput(f"{unit} {line}: board {board.id} is already {unit} {seen[board.id]}")
        seen[board.id] = line
        rows.append((line, board))
    if not rows:
        raise InvalidInput("the file holds no boards")
    return rows


def _csv_items(text: str) -> list[tuple[int, Any]]:
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    known = set(BoardCreate.model_fields)
    unknown = [name for name in reader.fieldnames or [] if name not in known]
    if not reader.fieldnames or "id" not in reader.fieldnames:
        raise InvalidInput("line 1: the header must name the columns, `id` among them")
    if unknown:
        raise InvalidInput(f"line 1: unknown column(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    items: list[tuple[int, Any]] = []
    for record in reader:
        if None in record:
            raise InvalidInput(f"line {reader.line_num}: more cells than the header names")
        try:
            values = {name: _from_csv_cell(name, value or "") for name, value in record.items()}
        except InvalidInput as exc:
            raise InvalidInput(f"line {reader.line_num}: {exc.detail}") from None
        items.append((reader.line_num, {name: value for name, value in values.items() if value is not None}))
    return items


def _yaml_items(text: str) -> list[tuple[int, Any]]:
    # Line numbers come from the nodes, so an error points at the board's first line.
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"not valid YAML: {exc}") from None
    if isinstance(data, dict) and "boards" in data and node is not None:
        data = data["boards"]
        node = next(value for key, value in node.value if key.value == "boards")
    if not isinstance(data, list) or node is None:
        raise InvalidInput("expected a list of boards (or `boards:` holding one)")
    return [(child.start_mark.line + 1, item) for child, item in zip(node.value, data, strict=True)]


def parse_file(path: Path) -> list[tuple[int, BoardCreate]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path} is not UTF-8: {exc}") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    is_csv = path.suffix.lower() == ".csv"
    return parse_items(_csv_items(text) if is_csv else _yaml_items(text))


async def apply(session: AsyncSession, rows: Sequence[tuple[int, BoardCreate]], *, actor: Principal,
                now: datetime, networks: Sequence[Network], master: bytes,
                progress: Progress | None = None, unit: str = "line") -> BulkResult:
    """Create or update every board; a failing line raises with its number (the caller rolls back).

    Set-wise, not board by board: one query finds the existing rows, one flush writes them all,
    one change is recorded (1,000 boards take about a second on SQLite, not ten)."""
    ids = [board.id for _, board in rows]
    found = {board.id: board for board in await session.scalars(
        select(Board).where(Board.id.in_(ids)).with_for_update())}
    result = BulkResult()
    for line, entry in rows:
        data = entry.model_dump()
        try:
            board = found.get(entry.id)
            if board is not None and board.deleted_at is not None:
                raise service.taken(entry.id, board)
            if board is None:
                board, token, secret = service.new_board(data, now=now, master=master)
                await service.check_delivery(board, networks)
                session.add(board)
                audit.record(session, actor=actor, action="board.create", entity_type="board",
                             entity_id=board.id, after=service.audit_view(board), now=now)
                result.created.append(NewCredentials(board.id, token, secret))
            else:
                before = service.audit_view(board)
                service.apply_changes(board, {k: v for k, v in data.items() if k != "id"}, now=now)
                await service.check_delivery(board, networks)
                audit.record(session, actor=actor, action="board.update", entity_type="board",
                             entity_id=board.id, before=before, after=service.audit_view(board), now=now)
                result.updated.append(board.id)
        except DisplaydError as exc:  # same status and code, the line in front
            exc.detail = f"{unit} {line}: {exc.detail}"
            exc.args = (exc.detail,)
            raise
        if progress is not None:
            progress.advance(1)
    try:
        await session.flush()
    except IntegrityError:  # another writer made one of these ids meanwhile
        raise Conflict("a board in the file was created by someone else meanwhile; run the import again") from None
    await changes.touch(session)
    if progress is not None:
        progress.done()
    return result


def write_credentials(path: Path, created: Sequence[NewCredentials]) -> None:
    """The new tokens and secrets as CSV in a new file only its owner can read (never overwritten)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["board_id", "token", "secret"])
        writer.writerows([c.board_id, c.token, c.secret] for c in created)
        handle.flush()
        os.fsync(handle.fileno())
