"""What every board shows, held in memory: the poll path's only source.

A `Snapshot` is built from the database (boards, campaigns, approved slogans, token hashes)
whenever something boards can see changes (`displayd.changes`), and swapped in whole. It
answers "what does board B show at t" without I/O: each board's current showing is
rendered once, with its JSON and text bodies and ETags encoded, and reused until the
instant it may next change.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from displayd import changes
from displayd.boards import service as boards
from displayd.campaigns import service as campaigns
from displayd.campaigns.plan import CampaignVersions, board_assignment, board_next_change, board_timeline, versions_of
from displayd.catalog.service import APPROVED
from displayd.db.models import Board, Slogan
from displayd.errors import RangeTooLarge
from displayd.rotation import Assignment, BoardSpec, content_hash, render_content

MAX_SCHEDULE_SLOTS = 10_000
IDLE_MAX_AGE = 300  # an idle board with nothing ahead still re-checks every five minutes


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class BoardView:
    """The parts of a board row that decide what it is given."""

    spec: BoardSpec
    name: str
    delivery: str
    endpoint_url: str | None
    charset: str
    max_chars: int
    lines: int
    enabled: bool
    secret_nonce: str
    created_at: datetime

    @classmethod
    def of(cls, board: Board) -> BoardView:
        return cls(spec=BoardSpec(id=board.id, groups=frozenset(board.groups), offset=board.offset),
                   name=board.name, delivery=board.delivery, endpoint_url=board.endpoint_url,
                   charset=board.charset, max_chars=board.max_chars, lines=board.lines, enabled=board.enabled,
                   secret_nonce=board.secret_nonce, created_at=board.created_at)


@dataclass(frozen=True, slots=True)
class Showing:
    """A board's content over [since, until): the `/current` answer, pre-encoded."""

    board_id: str
    since: datetime
    until: datetime | None
    assignment: Assignment | None
    content: dict[str, Any] | None
    content_hash: str | None
    document: dict[str, Any]
    body: bytes
    text: bytes
    etag: str
    text_etag: str
    digest: str | None  # the content hash prefix the ETags carry

    def covers(self, t: datetime) -> bool:
        return self.since <= t and (self.until is None or t < self.until)

    def max_age(self, t: datetime) -> int:
        if self.until is None:
            return IDLE_MAX_AGE
        return max(0, math.ceil((self.until - t).total_seconds()))


@dataclass
class Snapshot:
    version: int
    boards: dict[str, BoardView]
    token_boards: dict[str, str]
    campaigns: list[CampaignVersions]
    campaign_names: dict[int, str]
    campaign_zones: dict[int, str]
    slogans: dict[int, str]
    _showing: dict[str, Showing] = field(default_factory=dict)

    def showing(self, board_id: str, t: datetime) -> Showing:
        """What `board_id` (which must exist) shows at t; cached until it may change."""
        cached = self._showing.get(board_id)
        if cached is not None and cached.covers(t):
            return cached
        board = self.boards[board_id]
        assignment = board_assignment(self.campaigns, board.spec, t) if board.enabled else None
        until = board_next_change(self.campaigns, board.spec, t) if board.enabled else None
        if assignment is not None:
            until = assignment.ends_at if until is None else min(until, assignment.ends_at)
        showing = self._render(board, assignment, since=t, until=until)
        self._showing[board_id] = showing
        return showing

    def content(self, board: BoardView, slogan_id: int) -> tuple[dict[str, Any], str]:
        content = render_content(slogan_id, self.slogans[slogan_id], charset=board.charset,
                                 max_chars=board.max_chars, lines=board.lines)
        return content, content_hash(content)

    def _render(self, board: BoardView, assignment: Assignment | None, *, since: datetime,
                until: datetime | None) -> Showing:
        board_id = board.spec.id
        if assignment is None:
            document: dict[str, Any] = {"board_id": board_id, "state": "idle", "slot": None, "content": None,
                                        "content_hash": None, "valid_until": iso(until) if until else None}
            tag = f"idle-{int(until.timestamp()) if until else 'forever'}"
            return Showing(board_id, since, until, None, None, None, document, _json(document), b"",
                           f'"{tag}"', f'"{tag}-text"', None)
        content, digest = self.content(board, assignment.slogan_id)
        document = {
            "board_id": board_id, "state": "showing",
            "slot": {"campaign_id": assignment.campaign_id, "index": assignment.slot_index,
                     "starts_at": iso(assignment.starts_at), "ends_at": iso(assignment.ends_at)},
            "content": content, "content_hash": digest, "valid_until": iso(assignment.ends_at),
        }
        text = "\n\n".join("\n".join(page) for page in content["pages"]) + "\n"
        short = digest.removeprefix("sha256:")[:32]
        tag = f"{assignment.campaign_id}-{assignment.slot_index}-{short}"
        return Showing(board_id, since, until, assignment, content, digest, document, _json(document),
                       text.encode("ascii" if board.charset == "ascii" else "utf-8"), f'"{tag}"', f'"{tag}-text"',
                       short)

    def schedule(
        self, board_id: str, start: datetime, end: datetime
    ) -> Iterator[tuple[Assignment, dict[str, Any], str]]:
        """The board's planned showings over [start, end) with their content and hash."""
        board = self.boards[board_id]
        if not board.enabled:
            return
        for count, assignment in enumerate(board_timeline(self.campaigns, board.spec, start, end), start=1):
            if count > MAX_SCHEDULE_SLOTS:
                raise RangeTooLarge(f"the range holds more than {MAX_SCHEDULE_SLOTS} slots; ask for a shorter one")
            content, digest = self.content(board, assignment.slogan_id)
            yield assignment, content, digest

    def local(self, campaign_id: int, t: datetime) -> str:
        return t.astimezone(ZoneInfo(self.campaign_zones[campaign_id])).isoformat()


async def load(session: AsyncSession) -> Snapshot:
    """Read what boards can see, in one transaction, into a new Snapshot."""
    version = await changes.current_version(session)
    slogans = {row.id: row.text for row in await session.execute(
        select(Slogan.id, Slogan.text).where(Slogan.status == APPROVED))}
    campaign_rows = await campaigns.all_live(session)
    board_rows = await boards.all_live(session)
    return Snapshot(
        version=version,
        boards={b.id: BoardView.of(b) for b in board_rows},
        token_boards={b.token_hash: b.id for b in board_rows},
        campaigns=[versions_of(c, slogans.keys()) for c in campaign_rows],
        campaign_names={c.id: c.name for c in campaign_rows},
        campaign_zones={c.id: c.timezone for c in campaign_rows},
        slogans=slogans,
    )


def etag_digest(etag: str) -> str | None:
    """The content hash prefix a showing ETag carries, or None for idle and foreign tags."""
    parts = etag.strip().removeprefix("W/").strip('"').removesuffix("-text").split("-")
    if len(parts) != 3 or not parts[0].isdigit():
        return None
    return parts[2]
