"""Rotation log, board health and integrity incidents in the database, written in batches.

    inserted = await insert_rows(session, rows)       # the keys that were new
    await record_results(session, outcomes)

One row per (board, campaign, slot) is guaranteed by the unique constraint: inserts use
ON CONFLICT DO NOTHING and report which keys were new, and only those are pushed, so a
slot is never pushed twice, even by two leaders in turn. Each row carries its local day
(`local_day`, the slot's start as a date in its campaign's time zone), which the daily totals
and the retention purge go by; `daily_total` itself is kept by database triggers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, bindparam, func, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from displayd.campaigns.schemas import DEFAULT_TIMEZONE
from displayd.db.models import BoardHealth, Campaign, IntegrityIncident, IssuedContent, Rotation, SchedulerState

Key = tuple[str, int, int]  # (board_id, campaign_id, slot_index)
CHUNK = 2000  # rows per statement: well under SQLite's and asyncpg's parameter limits


def _dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else "sqlite"


def dialect_insert(session: AsyncSession, table: Any) -> Any:
    return (pg_insert if _dialect(session) == "postgresql" else sqlite_insert)(table)


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


@dataclass(frozen=True, slots=True)
class NewRow:
    board_id: str
    campaign_id: int
    slot_index: int
    slogan_id: int
    content_hash: str
    starts_at: datetime
    ends_at: datetime
    push_status: str
    error: str | None = None

    @property
    def key(self) -> Key:
        return (self.board_id, self.campaign_id, self.slot_index)


@dataclass(frozen=True, slots=True)
class Outcome:
    key: Key
    push_status: str
    attempts: int
    http_status: int | None
    latency_ms: int | None
    error: str | None
    delivered_at: datetime | None
    revision: int = 0  # of the slot this outcome is of: the row keeps the highest


def zone(name: str | None) -> ZoneInfo:
    """A campaign's time zone; the default one for a name this machine does not know."""
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


def local_day(starts_at: datetime, timezone: ZoneInfo) -> date:
    return starts_at.astimezone(timezone).date()


async def campaign_zones(session: AsyncSession, campaign_ids: Collection[int]) -> dict[int, ZoneInfo]:
    """The time zones of these campaigns, in one query (a campaign not found gets the default)."""
    found = {row.id: zone(row.timezone) for row in await session.execute(
        select(Campaign.id, Campaign.timezone).where(Campaign.id.in_(list(campaign_ids))))} if campaign_ids else {}
    return {c: found.get(c) or zone(None) for c in campaign_ids}


async def insert_rows(session: AsyncSession, rows: Sequence[NewRow], *, over_missed: bool = False) -> set[Key]:
    """Insert the rows that do not exist yet; the keys of those that were new.

    `over_missed`: a row already there as `missed` is replaced too (and its key counted as
    new). For the rows a leader kept while the database was unreachable: it gave those
    slots, and `missed` was a guess made without knowing it (`displayd.delivery.backlog`)."""
    inserted: set[Key] = set()
    if not rows:
        return inserted
    zones = await campaign_zones(session, {r.campaign_id for r in rows})
    for chunk in _chunks(rows):
        statement = dialect_insert(session, Rotation)
        keys = ["board_id", "campaign_id", "slot_index"]
        if over_missed:
            statement = statement.on_conflict_do_update(
                index_elements=keys, where=Rotation.push_status == "missed",
                set_={c: statement.excluded[c] for c in ("slogan_id", "content_hash", "starts_at", "ends_at",
                                                          "push_status", "error", "local_day")})
        else:
            statement = statement.on_conflict_do_nothing(index_elements=keys)
        statement = statement.returning(Rotation.board_id, Rotation.campaign_id, Rotation.slot_index)
        result = await session.execute(statement, [
            {"board_id": r.board_id, "campaign_id": r.campaign_id, "slot_index": r.slot_index,
             "slogan_id": r.slogan_id, "content_hash": r.content_hash, "starts_at": r.starts_at,
             "ends_at": r.ends_at, "push_status": r.push_status, "attempts": 0, "error": r.error,
             "local_day": local_day(r.starts_at, zones[r.campaign_id])}
            for r in chunk
        ])
        inserted.update((row[0], row[1], row[2]) for row in result)
    return inserted


# Core statements on the table: executemany with one parameter set per row.
_ROTATION: Any = Rotation.__table__

_RESULT = (
    update(_ROTATION)
    .where(and_(_ROTATION.c.board_id == bindparam("k_board"), _ROTATION.c.campaign_id == bindparam("k_campaign"),
                _ROTATION.c.slot_index == bindparam("k_slot")))
    .values(push_status=bindparam("push_status"), attempts=bindparam("attempts"),
            http_status=bindparam("http_status"), latency_ms=bindparam("latency_ms"), error=bindparam("error"),
            delivered_at=func.coalesce(_ROTATION.c.delivered_at, bindparam("delivered_at")),
            revisions=func.max(_ROTATION.c.revisions, bindparam("revision")))  # SQLite's two-argument max
)


# On PostgreSQL one set-based UPDATE per chunk, joining on unnest()ed arrays. A per-row
# executemany is one prepared statement run thousands of times, and after five runs
# PostgreSQL may switch it to a generic plan made while the table was small (a sequential
# scan) and keep it: measured, a 10,000-row slot then took 9 s, then 17 s, then 23 s.
_PG_RESULTS = text("""
    UPDATE rotation AS r
    SET push_status = v.push_status, attempts = v.attempts, http_status = v.http_status,
        latency_ms = v.latency_ms, error = v.error, delivered_at = COALESCE(r.delivered_at, v.delivered_at),
        revisions = GREATEST(r.revisions, v.revision)
    FROM unnest(CAST(:boards AS varchar[]), CAST(:campaigns AS integer[]), CAST(:slots AS bigint[]),
                CAST(:statuses AS varchar[]), CAST(:attempts AS integer[]), CAST(:http AS integer[]),
                CAST(:latency AS integer[]), CAST(:errors AS varchar[]), CAST(:delivered AS timestamptz[]),
                CAST(:revisions AS integer[]))
         AS v(board_id, campaign_id, slot_index, push_status, attempts, http_status, latency_ms, error, delivered_at,
              revision)
    WHERE r.board_id = v.board_id AND r.campaign_id = v.campaign_id AND r.slot_index = v.slot_index
""")
_PG_POLLED = text("""
    UPDATE rotation AS r SET first_polled_at = v.at
    FROM unnest(CAST(:boards AS varchar[]), CAST(:campaigns AS integer[]), CAST(:slots AS bigint[]),
                CAST(:ats AS timestamptz[])) AS v(board_id, campaign_id, slot_index, at)
    WHERE r.board_id = v.board_id AND r.campaign_id = v.campaign_id AND r.slot_index = v.slot_index
      AND r.first_polled_at IS NULL
""")


async def record_results(session: AsyncSession, outcomes: Sequence[Outcome]) -> None:
    postgres = _dialect(session) == "postgresql"
    for chunk in _chunks(outcomes):
        if postgres:
            await session.execute(_PG_RESULTS, {
                "boards": [o.key[0] for o in chunk], "campaigns": [o.key[1] for o in chunk],
                "slots": [o.key[2] for o in chunk], "statuses": [o.push_status for o in chunk],
                "attempts": [o.attempts for o in chunk], "http": [o.http_status for o in chunk],
                "latency": [o.latency_ms for o in chunk],
                "errors": [o.error[:300] if o.error else None for o in chunk],
                "delivered": [o.delivered_at for o in chunk], "revisions": [o.revision for o in chunk]})
            continue
        await session.execute(_RESULT, [
            {"k_board": o.key[0], "k_campaign": o.key[1], "k_slot": o.key[2], "push_status": o.push_status,
             "attempts": o.attempts, "http_status": o.http_status, "latency_ms": o.latency_ms,
             "error": o.error[:300] if o.error else None, "delivered_at": o.delivered_at,
             "revision": o.revision}
            for o in chunk
        ])


async def rows_between(session: AsyncSession, t: datetime, ahead: datetime) -> list[Rotation]:
    """Rows whose slot runs at t or starts before `ahead`: what boards were last given, and
    sent ahead of its start."""
    return list(await session.scalars(select(Rotation).where(Rotation.starts_at <= ahead, Rotation.ends_at > t)))


async def fail_stale_pending(session: AsyncSession, now: datetime,
                             boards: Callable[[str], bool] | None = None) -> int:
    """Pending rows whose slot is over belong to a scheduler that stopped mid-delivery. With
    `boards`, only the rows of the boards it accepts: a take-over settles the rows of the
    shards it gained, never those of a replica still leading its own (one writing its outcomes
    late, after an outage, would find them failed)."""
    stale = (Rotation.push_status == "pending", Rotation.ends_at <= now)
    failed = {"push_status": "failed", "error": "outcome unknown: the scheduler stopped during delivery"}
    if boards is None:
        result = await session.execute(update(Rotation).where(*stale).values(**failed))
        return int(getattr(result, "rowcount", 0) or 0)
    keys = [tuple(row) for row in await session.execute(
        select(Rotation.board_id, Rotation.campaign_id, Rotation.slot_index).where(*stale)) if boards(row[0])]
    count = 0
    for chunk in _chunks(keys):
        result = await session.execute(update(Rotation).where(
            *stale, tuple_(Rotation.board_id, Rotation.campaign_id, Rotation.slot_index).in_(chunk)).values(**failed))
        count += int(getattr(result, "rowcount", 0) or 0)
    return count


async def note_issued(session: AsyncSession, pairs: Collection[tuple[str, str]], at: datetime) -> None:
    """Remember that each (board, content hash) was given to that board (once: later ones are no-ops)."""
    for chunk in _chunks(list(pairs)):
        statement = dialect_insert(session, IssuedContent).on_conflict_do_nothing(
            index_elements=["board_id", "content_hash"])
        await session.execute(statement, [{"board_id": b, "content_hash": h, "first_at": at} for b, h in chunk])


async def issued_among(session: AsyncSession, pairs: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of at most CHUNK (board, content hash) pairs displayd ever gave: one indexed query."""
    if not pairs:
        return set()
    assert len(pairs) <= CHUNK, "callers check at most one chunk of reported hashes at a time"
    rows = await session.execute(select(IssuedContent.board_id, IssuedContent.content_hash).where(
        tuple_(IssuedContent.board_id, IssuedContent.content_hash).in_(list(pairs))))
    return {(row[0], row[1]) for row in rows}


async def claim_missed_window(session: AsyncSession, not_before: datetime) -> datetime | None:
    """Where the slots nobody gave start: a window an earlier take-over left unwritten, else
    the last boundary handled, but not before `not_before`. Kept in `missed_from` until
    `missed_window_written`; None on a database no scheduler ever ran on."""
    state = (await session.execute(select(SchedulerState.handled_until, SchedulerState.missed_from)
                                   .where(SchedulerState.id == 1))).one()
    earliest = min((t for t in state if t is not None), default=None)
    since = None if earliest is None else max(earliest, not_before)
    if since is not None and since != state.missed_from:
        await session.execute(update(SchedulerState).where(SchedulerState.id == 1).values(missed_from=since))
    return since


async def missed_window_written(session: AsyncSession, since: datetime) -> None:
    await session.execute(update(SchedulerState).where(SchedulerState.id == 1, SchedulerState.missed_from == since)
                          .values(missed_from=None))


async def set_handled_until(session: AsyncSession, at: datetime, leader: str) -> None:
    await session.execute(update(SchedulerState).where(SchedulerState.id == 1).values(handled_until=at, leader=leader))


async def load_health(session: AsyncSession) -> dict[str, BoardHealth]:
    return {h.board_id: h for h in await session.scalars(select(BoardHealth))}


HEALTH_COLUMNS = ("last_push_at", "last_push_status", "last_push_error", "consecutive_failures",
                  "unreachable_since")


async def save_health(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Upsert the push side of board health; each row has `board_id` and HEALTH_COLUMNS."""
    for chunk in _chunks(rows):
        statement = dialect_insert(session, BoardHealth)
        statement = statement.on_conflict_do_update(
            index_elements=["board_id"], set_={c: statement.excluded[c] for c in HEALTH_COLUMNS})
        await session.execute(statement, [{"integrity_incidents": 0, **row} for row in chunk])


@dataclass(frozen=True, slots=True)
class Incident:
    """A board showing content displayd never issued to it, in one slot (`slot_key`)."""

    board_id: str
    slot_key: str
    at: datetime
    source: str  # "push" or "poll"
    reported_hash: str
    detail: str


async def record_incidents(session: AsyncSession, incidents: Sequence[Incident]) -> list[Incident]:
    """Write the incidents a board does not already have for that slot (one per board and slot,
    however often it is reported, by any process); those that were new."""
    new: list[Incident] = []
    for chunk in _chunks(incidents):
        statement = dialect_insert(session, IntegrityIncident).on_conflict_do_nothing(
            index_elements=["board_id", "slot_key"]).returning(IntegrityIncident.board_id, IntegrityIncident.slot_key)
        result = await session.execute(statement, [
            {"board_id": i.board_id, "slot_key": i.slot_key, "at": i.at, "source": i.source,
             "reported_hash": i.reported_hash[:100], "detail": i.detail[:300]} for i in chunk])
        written = {(row[0], row[1]) for row in result}
        new.extend(i for i in chunk if (i.board_id, i.slot_key) in written)
    per_board: dict[str, list[Incident]] = {}
    for incident in new:
        per_board.setdefault(incident.board_id, []).append(incident)
    for board_id, found in per_board.items():
        last = max(i.at for i in found)
        statement = dialect_insert(session, BoardHealth).values(board_id=board_id, consecutive_failures=0,
                                                                integrity_incidents=len(found), last_incident_at=last)
        await session.execute(statement.on_conflict_do_update(index_elements=["board_id"], set_={
            "integrity_incidents": BoardHealth.integrity_incidents + len(found), "last_incident_at": last}))
    return new


# `_found_first`: on PostgreSQL `mark_polled` and `mark_streamed` look for the rows before
# they update them. Each statement sees what was committed when it began, so a row committed
# in between (a leader writing its backlog after an outage) would, the other way round, be
# found without having been updated, and the mark dropped. This way round it is updated and
# not yet found: tried again the next time, a no-op. On SQLite the update comes first: it
# takes the one write lock, so nothing is committed in between (and a read first would turn
# a concurrent commit into SQLITE_BUSY_SNAPSHOT).
_POLLED = (
    update(_ROTATION)
    .where(and_(_ROTATION.c.board_id == bindparam("k_board"), _ROTATION.c.campaign_id == bindparam("k_campaign"),
                _ROTATION.c.slot_index == bindparam("k_slot"), _ROTATION.c.first_polled_at.is_(None)))
    .values(first_polled_at=bindparam("at"))
)


async def mark_polled(session: AsyncSession, marks: Sequence[tuple[Key, datetime]]) -> set[Key]:
    """Set first_polled_at where it is still empty; the keys whose row exists (the others
    may not be written yet by the leader and are worth trying again)."""
    found: set[Key] = set()
    postgres = _dialect(session) == "postgresql"
    for chunk in _chunks(marks):
        keys = [k for k, _ in chunk]
        existing = select(Rotation.board_id, Rotation.campaign_id, Rotation.slot_index).where(
            tuple_(Rotation.board_id, Rotation.campaign_id, Rotation.slot_index).in_(keys))
        if postgres:  # found first, then updated: see `_found_first`
            found.update((r[0], r[1], r[2]) for r in await session.execute(existing))
            await session.execute(_PG_POLLED, {
                "boards": [k[0] for k, _ in chunk], "campaigns": [k[1] for k, _ in chunk],
                "slots": [k[2] for k, _ in chunk], "ats": [at for _, at in chunk]})
        else:
            await session.execute(_POLLED, [
                {"k_board": k[0], "k_campaign": k[1], "k_slot": k[2], "at": at} for k, at in chunk])
            found.update((r[0], r[1], r[2]) for r in await session.execute(existing))
    return found


@dataclass(frozen=True, slots=True)
class Streamed:
    """A slot's `show` written on a board's event stream: when first, and its highest revision."""

    key: Key
    at: datetime
    revision: int


# Set-based on both databases: 5,000 streamed slots a few seconds apart are one statement
# each, not 5,000 parameter sets built on the event loop (an executemany cost ~0.8 s there).
_SQLITE_MARKS = """(SELECT json_extract(value, '$[0]') AS board_id, json_extract(value, '$[1]') AS campaign_id,
                          json_extract(value, '$[2]') AS slot_index, json_extract(value, '$[3]') AS at,
                          json_extract(value, '$[4]') AS revision FROM json_each(:marks))"""
_SQLITE_STREAMED = text(f"""
    UPDATE rotation
    SET push_status = 'delivered',
        delivered_at = CASE WHEN rotation.delivered_at IS NULL OR rotation.delivered_at > v.at THEN v.at
                            ELSE rotation.delivered_at END,
        attempts = CASE WHEN rotation.attempts = 0 THEN 1 ELSE rotation.attempts END,
        revisions = max(rotation.revisions, v.revision)
    FROM {_SQLITE_MARKS} AS v
    WHERE rotation.board_id = v.board_id AND rotation.campaign_id = v.campaign_id
      AND rotation.slot_index = v.slot_index AND rotation.push_status IN ('not_pushed', 'delivered')
""")
_SQLITE_STREAMED_FOUND = text(f"""
    SELECT v.board_id, v.campaign_id, v.slot_index FROM {_SQLITE_MARKS} AS v
    WHERE EXISTS (SELECT 1 FROM rotation AS r WHERE r.board_id = v.board_id AND r.campaign_id = v.campaign_id
                                               AND r.slot_index = v.slot_index)
""")
_PG_MARKS = """unnest(CAST(:boards AS varchar[]), CAST(:campaigns AS integer[]), CAST(:slots AS bigint[]),
                     CAST(:ats AS timestamptz[]), CAST(:revisions AS integer[]))
               AS v(board_id, campaign_id, slot_index, at, revision)"""
_PG_STREAMED = text(f"""
    UPDATE rotation AS r
    SET push_status = 'delivered', delivered_at = LEAST(r.delivered_at, v.at),
        attempts = CASE WHEN r.attempts = 0 THEN 1 ELSE r.attempts END,
        revisions = GREATEST(r.revisions, v.revision)
    FROM {_PG_MARKS}
    WHERE r.board_id = v.board_id AND r.campaign_id = v.campaign_id AND r.slot_index = v.slot_index
      AND r.push_status IN ('not_pushed', 'delivered')
""")
_PG_STREAMED_FOUND = text(f"""
    SELECT r.board_id, r.campaign_id, r.slot_index FROM rotation AS r JOIN {_PG_MARKS}
      ON r.board_id = v.board_id AND r.campaign_id = v.campaign_id AND r.slot_index = v.slot_index
""")


def _sqlite_time(t: datetime) -> str:
    """How `UTCDateTime` keeps a time on SQLite (naive UTC, microseconds): compared as text."""
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


async def mark_streamed(session: AsyncSession, marks: Sequence[Streamed]) -> set[Key]:
    """Slots sent on a board's event stream: their rows become `delivered` (from `not_pushed`),
    `delivered_at` the earliest send, `attempts` at least 1, `revisions` the highest. The keys
    whose row exists (the others may not be written yet by the leader and are worth trying
    again); a row of another outcome (a push board's) is left as it is."""
    found: set[Key] = set()
    postgres = _dialect(session) == "postgresql"
    for chunk in _chunks(marks):
        if postgres:  # LEAST ignores nulls: a first delivery takes `at`
            values: dict[str, Any] = {
                "boards": [m.key[0] for m in chunk], "campaigns": [m.key[1] for m in chunk],
                "slots": [m.key[2] for m in chunk], "ats": [m.at for m in chunk],
                "revisions": [m.revision for m in chunk]}
            statements = (_PG_STREAMED, _PG_STREAMED_FOUND)
        else:
            values = {"marks": json.dumps([[m.key[0], m.key[1], m.key[2], _sqlite_time(m.at), m.revision]
                                           for m in chunk])}
            statements = (_SQLITE_STREAMED, _SQLITE_STREAMED_FOUND)
        if postgres:  # found first, then updated: see `_found_first`
            found.update((r[0], r[1], r[2]) for r in await session.execute(statements[1], values))
            await session.execute(statements[0], values)
        else:
            await session.execute(statements[0], values)
            found.update((r[0], r[1], r[2]) for r in await session.execute(statements[1], values))
    return found
