"""What every board shows, held in memory: the poll path's only source.

A `Snapshot` is built from the database (boards, campaigns, approved slogans, token hashes)
whenever something boards can see changes (`displayd.changes`), and swapped in whole. It
answers "what does board B show at t" without I/O: each board's current showing is
rendered once, with its JSON and text bodies and ETags encoded, and reused until the
instant it may next change; what it will show next (content sent ahead, a poll's `next`) is
kept beside it (`showing_ahead`). Boards with the same targeting campaigns and offset share
one plan per instant, and boards on the same screen size one rendering per slot. While an
emergency stop holds (`stop`), every board is idle.

Planning faults stay where they are. A campaign whose row cannot be planned at all is left
out when the snapshot loads; a campaign whose plan raises for one board is left out of that
board's plan (each campaign targeting the board is tried alone to find which); a board whose
plan still fails is idle and tried again a minute later. Each is a `plan_error` (logged with
the campaign and board ids, counted, listed in `errors`): every other board keeps its plan.
"""

from __future__ import annotations

import itertools
import logging
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from displayd import changes
from displayd.catalog.service import APPROVED
from displayd.db.models import Board, Campaign, EmergencyStop, Slogan
from displayd.delivery.shards import shard_of
from displayd.errors import PlanFailed, RangeTooLarge
from displayd.live.plan import CampaignVersions, board_assignment, board_next_change, board_timeline, versions_of
from displayd.protocol import STREAM_LEAD, STREAMED, document_json
from displayd.rotation import Assignment, BoardSpec, content_hash, render_content, zone

log = logging.getLogger("displayd.plan")

MAX_SCHEDULE_SLOTS = 10_000
IDLE_MAX_AGE = 300  # an idle board with nothing ahead still re-checks every five minutes
PLAN_RETRY = timedelta(minutes=1)  # a board whose plan failed is idle this long, then planned again
PLANNED_CACHE = 4096  # shared plans and renderings kept before starting afresh (`_showing_at`, `_render`)

T = TypeVar("T")
ErrorKey = tuple[int | None, str | None]  # (campaign id, board id) of a planning fault


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _json(value: Any) -> bytes:
    return document_json(value).encode()


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
    lead_seconds: int = 0  # content is sent (pushed, streamed, offered as a poll's `next`) this long ahead
    poll_phase: float = 0.0  # in [0, 1), stable per board: where in a lead window its polls are asked to land
    shard: int = -1  # `displayd.delivery.shards.shard_of(spec.id)`, kept here so planning never recomputes it

    def __post_init__(self) -> None:
        if self.shard < 0:
            object.__setattr__(self, "shard", shard_of(self.spec.id))

    @property
    def ahead_seconds(self) -> int:
        """How long before its slot a board is sent its content: its lead, at least STREAM_LEAD
        seconds for a stream board (its content can only arrive over its stream)."""
        return max(self.lead_seconds, STREAM_LEAD) if self.delivery == STREAMED else self.lead_seconds

    @classmethod
    def of(cls, row: Sequence[Any]) -> BoardView:
        """From a row of BOARD_COLUMNS (`load` reads them as plain rows, not ORM objects)."""
        (board_id, name, groups, offset, delivery, endpoint_url, charset, max_chars, lines, enabled, secret_nonce,
         created_at, lead_seconds) = row[:13]
        return cls(spec=BoardSpec(id=board_id, groups=frozenset(groups), offset=offset), name=name,
                   delivery=delivery, endpoint_url=endpoint_url, charset=charset, max_chars=max_chars, lines=lines,
                   enabled=enabled, secret_nonce=secret_nonce, created_at=created_at, lead_seconds=lead_seconds,
                   poll_phase=zlib.crc32(board_id.encode()) / 2**32)


# What a BoardView is made of, then the token's hash: `load` reads these columns alone.
BOARD_COLUMNS = (Board.id, Board.name, Board.groups, Board.offset, Board.delivery, Board.endpoint_url, Board.charset,
                 Board.max_chars, Board.lines, Board.enabled, Board.secret_nonce, Board.created_at,
                 Board.lead_seconds, Board.token_hash)


@dataclass(frozen=True, slots=True)
class StopView:
    """The emergency stop that holds: while there is one, every board is idle."""

    id: int
    reason: str
    started_at: datetime
    started_by: str


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
    digest: str | None  # the content hash (hex, without `sha256:`) the ETags carry

    @property
    def slot_key(self) -> str:
        """Names the slot (or the idle stretch) this showing belongs to: what a board is
        reported against, at most once (`integrity_incident.slot_key`)."""
        if self.assignment is not None:
            return f"{self.assignment.campaign_id}:{self.assignment.slot_index}"
        return f"idle:{int(self.until.timestamp()) if self.until else 'forever'}"

    def covers(self, t: datetime) -> bool:
        return self.since <= t and (self.until is None or t < self.until)

    def max_age(self, t: datetime) -> int:
        if self.until is None:
            return IDLE_MAX_AGE
        return max(0, math.ceil((self.until - t).total_seconds()))


# What boards given the same assignment on the same screen share (`Snapshot._render`): the
# document without `board_id`, it encoded, the content, its hash, the text body, the ETag's tag.
_Shared = tuple[dict[str, Any], bytes, dict[str, Any] | None, str | None, bytes, str]


@dataclass(frozen=True, slots=True)
class Offer:
    """A poll's answer once the next slot is within the board's lead: `showing` with `next`."""

    showing: Showing
    body: bytes
    etag: str
    poll_at: datetime | None  # when the board is asked to poll again (None: at the slot's end)


@dataclass
class Snapshot:
    version: int
    boards: dict[str, BoardView]
    token_boards: dict[str, str]
    campaigns: list[CampaignVersions]
    campaign_names: dict[int, str]
    campaign_zones: dict[int, str]
    slogans: dict[int, str]
    stop: StopView | None = None  # the emergency stop, when one holds
    on_error: Callable[[], None] | None = None  # counts each new planning fault (metrics)
    errors: dict[ErrorKey, str] = field(default_factory=dict)
    _excluded: dict[str, frozenset[int]] = field(default_factory=dict)  # board → campaigns left out of its plan
    _rows: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # board → the row its view was made of (`load`)
    _targeting: dict[str, tuple[int, ...]] = field(default_factory=dict)  # board → the campaigns that may target it
    _by_groups: dict[frozenset[str], tuple[int, ...]] = field(default_factory=dict)  # by groups (`_targeting_of`)
    _named: frozenset[str] | None = None  # boards some campaign names in its targets
    _showing: dict[str, Showing] = field(default_factory=dict)
    _ahead: dict[str, Showing] = field(default_factory=dict)  # a later showing, sent ahead (`showing_ahead`)
    _offers: dict[str, Offer] = field(default_factory=dict)  # a poll's answer with `next` (`poll`)
    # (instant, offset, campaigns targeting) → (assignment, until): see `_showing_at`
    _planned: dict[tuple[datetime, int, tuple[int, ...]], tuple[Assignment | None, datetime | None]] = field(
        default_factory=dict)
    _contents: dict[tuple[int, str, int, int], tuple[dict[str, Any], str]] = field(default_factory=dict)
    _rendered: dict[tuple[Assignment | None, datetime | None, str, int, int], _Shared] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> Snapshot:
        """Nothing to show (version -1, so the first check for changes loads the real one)."""
        return cls(version=-1, boards={}, token_boards={}, campaigns=[], campaign_names={}, campaign_zones={},
                   slogans={})

    def showing(self, board_id: str, t: datetime) -> Showing:
        """What `board_id` (which must exist) shows at t; cached until it may change."""
        cached = self._showing.get(board_id)
        if cached is not None and cached.covers(t):
            return cached
        ahead = self._ahead.get(board_id)
        showing = ahead if ahead is not None and ahead.covers(t) else self._compute(board_id, t)
        self._showing[board_id] = showing
        return showing

    def showing_ahead(self, board_id: str, t: datetime) -> Showing:
        """What `board_id` will show at a later t (content sent ahead, a poll's `next`),
        cached apart from the present's showing, which it becomes when t comes."""
        for cache in (self._showing, self._ahead):
            cached = cache.get(board_id)
            if cached is not None and cached.covers(t):
                return cached
        showing = self._ahead[board_id] = self._compute(board_id, t)
        return showing

    def _compute(self, board_id: str, t: datetime) -> Showing:
        board = self.boards[board_id]
        try:
            return self._plan(board, lambda campaigns: self._showing_at(board, campaigns, t))
        except PlanFailed:
            return self._render(board, None, since=t, until=t + PLAN_RETRY)

    def poll(self, board_id: str, now: datetime) -> tuple[Showing, bytes, str, int]:
        """A JSON poll's answer: the showing, the body, its ETag and its max-age.

        Once the next slot is within the board's `lead_seconds`, the body carries it as `next`
        and the ETag covers both. `max-age` asks a board with a lead to poll again inside the
        next lead window, at its own phase of it (so polls spread over the window rather than
        all landing at a boundary); a board without one polls at the slot's end, as always."""
        showing = self.showing(board_id, now)
        board = self.boards[board_id]
        lead, until = board.lead_seconds, showing.until
        if not lead or until is None:
            return showing, showing.body, showing.etag, showing.max_age(now)
        left = (until - now).total_seconds()
        if left > lead:  # `next` is not offered yet: come back within the window
            return showing, showing.body, showing.etag, max(1, math.ceil(left - lead + board.poll_phase * lead * 0.8))
        offer = self._offers.get(board_id)
        if offer is None or offer.showing is not showing:
            offer = self._offers[board_id] = self._offer(board, showing, until)
        if offer.poll_at is None:
            return showing, offer.body, offer.etag, max(1, math.ceil(left))
        return showing, offer.body, offer.etag, max(1, math.ceil((offer.poll_at - now).total_seconds()))

    def _offer(self, board: BoardView, showing: Showing, until: datetime) -> Offer:
        following = self.showing_ahead(board.spec.id, until)
        if following.assignment is None or following.content is None:
            return Offer(showing, showing.body, showing.etag, None)
        document = showing.document | {"next": {"slot": following.document["slot"], "content": following.content,
                                                "content_hash": following.content_hash}}
        assert following.digest is not None
        etag = f'{showing.etag[:-1]}.n{following.assignment.campaign_id}-{following.assignment.slot_index}-' \
               f'{following.digest[:16]}"'
        poll_at = None
        if following.until is not None:  # inside the next slot's own lead window, at the board's phase
            window_start = max(until, following.until - timedelta(seconds=board.lead_seconds))
            poll_at = window_start + (following.until - window_start) * (board.poll_phase * 0.8)
        return Offer(showing, _json(document), etag, poll_at)

    def _showing_at(self, board: BoardView, campaigns: Sequence[CampaignVersions], t: datetime) -> Showing:
        if not board.enabled or self.stop is not None:
            return self._render(board, None, since=t, until=None)
        # Boards differ to rotation only by the campaigns that target them and their offset:
        # thousands of boards on one campaign share a handful of answers at each instant.
        if campaigns is self.campaigns:
            targeting = self._targeting.get(board.spec.id)
            if targeting is None:
                targeting = self._targeting_of(board.spec)
        else:  # (a board with campaigns left out of its plan)
            targeting = tuple(id(c) for c in campaigns if _may_target(c, board.spec))
        key = (t, board.spec.offset, targeting)
        planned = self._planned.get(key)
        if planned is None:
            assignment = board_assignment(campaigns, board.spec, t)
            until = board_next_change(campaigns, board.spec, t)
            if assignment is not None:
                until = assignment.ends_at if until is None else min(until, assignment.ends_at)
            if len(self._planned) >= PLANNED_CACHE:
                self._planned.clear()
            planned = self._planned[key] = (assignment, until)
        return self._render(board, planned[0], since=t, until=planned[1])

    def _targeting_of(self, spec: BoardSpec) -> tuple[int, ...]:
        """The campaigns that may show on the board (their ids), kept for the snapshot's life.
        Boards no campaign names share them by their groups: after a rebuild, 10,000 boards
        in a few groups cost a few checks of every campaign's targets, not 10,000."""
        if self._named is None:
            self._named = frozenset().union(*(c.current.targets.boards | (
                c.before.targets.boards if c.before is not None else frozenset()) for c in self.campaigns))
        shared = spec.id not in self._named
        targeting = self._by_groups.get(spec.groups) if shared else None
        if targeting is None:
            targeting = tuple(id(c) for c in self.campaigns if _may_target(c, spec))
            if shared:
                self._by_groups[spec.groups] = targeting
        self._targeting[spec.id] = targeting
        return targeting

    def timeline(self, board_id: str, start: datetime, end: datetime, *,
                 limit: int | None = None) -> list[Assignment]:
        """The board's assignments over [start, end) (at most `limit`), planned like `showing`:
        without the campaigns that fail for it. PlanFailed if it cannot be planned at all."""
        board = self.boards[board_id]
        if not board.enabled:
            return []
        return self._plan(board, lambda campaigns: list(
            itertools.islice(board_timeline(campaigns, board.spec, start, end), limit)))

    def _plan(self, board: BoardView, compute: Callable[[Sequence[CampaignVersions]], T]) -> T:
        """`compute(campaigns)` for this board; a campaign that makes it raise is left out.

        Costs nothing while planning works. When it raises, each campaign that could show on
        the board is tried alone; those that fail (while others do not) are excluded from this
        board's plans for the snapshot's life (a change rebuilds it and tries them again).
        Otherwise the board itself is at fault: PlanFailed."""
        board_id = board.spec.id
        excluded = self._excluded.get(board_id, frozenset())
        campaigns = [c for c in self.campaigns if c.current.id not in excluded] if excluded else self.campaigns
        try:
            return compute(campaigns)
        except Exception as exc:
            failure: Exception = exc
        broken: dict[int, Exception] = {}
        candidates = [c for c in campaigns if _may_target(c, board.spec)]
        for campaign in candidates:
            try:
                compute([campaign])
            except Exception as exc:
                broken[campaign.current.id] = exc
        # When every campaign fails alone, the fault is the board's (its settings, its content),
        # not theirs: leaving them all out would only hide it.
        if broken and len(broken) < len(candidates):
            for campaign_id, fault in broken.items():
                self.report(campaign_id, board_id, fault)
            self._excluded[board_id] = excluded | broken.keys()
            try:
                return compute([c for c in campaigns if c.current.id not in broken])
            except Exception as exc:
                failure = exc
        self.report(None, board_id, failure)
        raise PlanFailed(f"the plan of board {board_id} cannot be computed: {_describe(failure)}")

    def report(self, campaign_id: int | None, board_id: str | None, exc: BaseException) -> None:
        """Note a planning fault once per (campaign, board) for this snapshot."""
        key = (campaign_id, board_id)
        if key in self.errors:
            return
        self.errors[key] = _describe(exc)
        log.error("planning failed for campaign %s on board %s: %s", campaign_id, board_id, self.errors[key],
                  exc_info=exc, extra={"event": "plan_error", "campaign_id": campaign_id, "board_id": board_id})
        if self.on_error is not None:
            self.on_error()

    def board_error(self, board_id: str) -> str | None:
        """What stops (part of) this board's plan, if anything does."""
        for (campaign_id, board), message in self.errors.items():
            if board == board_id:
                return message if campaign_id is None else f"campaign {campaign_id}: {message}"
        return None

    def content(self, board: BoardView, slogan_id: int) -> tuple[dict[str, Any], str]:
        """A slogan rendered for the board's screen, and its hash: shared by every board with
        the same charset and size (never mutate it)."""
        key = (slogan_id, board.charset, board.max_chars, board.lines)
        rendered = self._contents.get(key)
        if rendered is None:
            content = render_content(slogan_id, self.slogans[slogan_id], charset=board.charset,
                                     max_chars=board.max_chars, lines=board.lines)
            rendered = self._contents[key] = (content, content_hash(content))
        return rendered

    def _render(self, board: BoardView, assignment: Assignment | None, *, since: datetime,
                until: datetime | None) -> Showing:
        """The board's showing: its own `board_id` in front of a part every board given the same
        assignment on the same screen shares, encoded once (a slot for 10,000 boards renders
        and encodes its content a handful of times, not 10,000)."""
        board_id = board.spec.id
        key = (assignment, until if assignment is None else None, board.charset, board.max_chars, board.lines)
        shared = self._rendered.get(key)
        if shared is None:
            if len(self._rendered) >= PLANNED_CACHE:
                self._rendered.clear()
            shared = self._rendered[key] = self._shared(board, assignment, until)
        rest, encoded, content, digest, text, tag = shared
        document = {"board_id": board_id, **rest}
        body = b'{"board_id":' + _json(board_id) + b"," + encoded[1:]
        return Showing(board_id, since, until, assignment, content, digest, document, body, text,
                       f'"{tag}"', f'"{tag}-text"', None if digest is None else digest.removeprefix("sha256:"))

    def _shared(self, board: BoardView, assignment: Assignment | None, until: datetime | None) -> _Shared:
        if assignment is None:
            rest: dict[str, Any] = {"state": "idle", "slot": None, "content": None, "content_hash": None,
                                    "valid_until": iso(until) if until else None, "next": None}
            return rest, _json(rest), None, None, b"", f"idle-{int(until.timestamp()) if until else 'forever'}"
        content, digest = self.content(board, assignment.slogan_id)
        rest = {
            "state": "showing",
            "slot": {"campaign_id": assignment.campaign_id, "index": assignment.slot_index,
                     "starts_at": iso(assignment.starts_at), "ends_at": iso(assignment.ends_at)},
            "content": content, "content_hash": digest, "valid_until": iso(assignment.ends_at), "next": None,
        }
        text = "\n\n".join("\n".join(page) for page in content["pages"]) + "\n"
        tag = f"{assignment.campaign_id}-{assignment.slot_index}-{digest.removeprefix('sha256:')}"
        return (rest, _json(rest), content, digest, text.encode("ascii" if board.charset == "ascii" else "utf-8"),
                tag)

    def schedule(
        self, board_id: str, start: datetime, end: datetime
    ) -> list[tuple[Assignment, dict[str, Any], str]]:
        """The board's planned showings over [start, end) with their content and hash."""
        board = self.boards[board_id]
        assignments = self.timeline(board_id, start, end, limit=MAX_SCHEDULE_SLOTS + 1)
        if len(assignments) > MAX_SCHEDULE_SLOTS:
            raise RangeTooLarge(f"the range holds more than {MAX_SCHEDULE_SLOTS} slots; ask for a shorter one")
        return [(a, *self.content(board, a.slogan_id)) for a in assignments]

    def local(self, campaign_id: int, t: datetime) -> str:
        return t.astimezone(zone(self.campaign_zones[campaign_id])).isoformat()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def _may_target(campaign: CampaignVersions, board: BoardSpec) -> bool:
    return campaign.current.targets.includes(board) or (
        campaign.before is not None and campaign.before.targets.includes(board))


async def load(session: AsyncSession, *, on_error: Callable[[], None] | None = None,
               previous: Snapshot | None = None) -> Snapshot:
    """Read what boards can see, in one transaction, into a new Snapshot. A campaign or board
    row that cannot be planned is left out (a `plan_error`), never the whole snapshot.

    Boards are read as plain rows, and a board whose row is the one `previous` was built from
    keeps its view: a retirement rebuilds the snapshot of 10,000 boards without making 10,000
    views again (the change reaches open streams that much sooner)."""
    version = await changes.current_version(session)
    slogans = {row.id: row.text for row in await session.execute(
        select(Slogan.id, Slogan.text).where(Slogan.status == APPROVED))}
    # Its own tables, read here rather than through the services: every live row, by id.
    campaign_rows = list(await session.scalars(
        select(Campaign).where(Campaign.deleted_at.is_(None)).order_by(Campaign.id)))
    board_rows: Sequence[Any] = (await session.execute(
        select(*BOARD_COLUMNS).where(Board.deleted_at.is_(None)).order_by(Board.id))).all()
    stop = await session.scalar(select(EmergencyStop).where(EmergencyStop.lifted_at.is_(None))
                                .order_by(EmergencyStop.id.desc()).limit(1))
    snapshot = Snapshot(version=version, boards={}, token_boards={}, campaigns=[], campaign_names={},
                        campaign_zones={}, slogans=slogans, on_error=on_error,
                        stop=None if stop is None else StopView(stop.id, stop.reason, stop.started_at, stop.started_by))
    before_rows, before_boards = (previous._rows, previous.boards) if previous is not None else ({}, {})
    for row in board_rows:
        board_id, view = row[0], None
        if before_rows.get(board_id) == row:
            view = before_boards.get(board_id)
        if view is None:
            try:
                view = BoardView.of(row)
            except Exception as exc:
                snapshot.report(None, board_id, exc)
                continue
        snapshot.boards[board_id] = view
        snapshot._rows[board_id] = row
        snapshot.token_boards[row[-1]] = board_id
    for campaign in campaign_rows:
        snapshot.campaign_names[campaign.id] = campaign.name
        try:
            planned = versions_of(campaign, slogans.keys())
            zone(campaign.timezone)  # schedules show local times in it
        except Exception as exc:
            snapshot.report(campaign.id, None, exc)
            continue
        snapshot.campaigns.append(planned)
        snapshot.campaign_zones[campaign.id] = campaign.timezone
    return snapshot


_HEX = frozenset("0123456789abcdef")


def etag_digest(etag: str) -> str | None:
    """The content hash (64 hex digits) a showing ETag carries, or None for idle tags and
    anything else: only a tag displayd could have made is evidence of what a board shows."""
    tag = etag.strip().removeprefix("W/").strip('"').removesuffix("-text")
    parts = tag.partition(".n")[0].split("-")  # a tag with `next` names what shows now first
    if len(parts) != 3 or not parts[0].isdigit() or len(parts[2]) != 64 or not _HEX.issuperset(parts[2]):
        return None
    return parts[2]
