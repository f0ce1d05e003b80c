"""Tables. Singular snake_case names, `_at` for instants (always UTC).

Deleting a board or campaign only sets `deleted_at`: history is never rewritten.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from displayd.db.base import Base, BigId, UTCDateTime

__all__ = [
    "ApiKey", "AuditEvent", "Base", "Board", "BoardHealth", "Campaign", "ChangeVersion", "DailyTotal", "EmergencyStop",
    "IntegrityIncident", "IssuedContent", "Rotation", "SchedulerState", "Slogan", "UiSession",
]


class ApiKey(Base):
    """A person's or a script's key. Only the SHA-256 of the key is kept."""

    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Written in batches (at most once a minute per key), never on a request's own path.
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class UiSession(Base):
    """A dashboard session opened with a staff key. The cookie carries a random token; only its
    SHA-256 is kept. Sign-out sets `ended_at`; a revoked key ends every session opened with it."""

    __tablename__ = "ui_session"
    __table_args__ = (Index("ix_ui_session_key_id", "key_id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the cookie's token
    key_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Slogan(Base):
    __tablename__ = "slogan"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(String(280), unique=True)
    number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    source: Mapped[str | None] = mapped_column(String(200), nullable=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(10), index=True)
    content_hash: Mapped[str] = mapped_column(String(71))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    approved_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    approval_reference: Mapped[str | None] = mapped_column(String(200), nullable=True)
    retired_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    retire_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # Everyone who edited a revision of the draft (four-eyes: none of them may approve it).
    edited_by: Mapped[list[str]] = mapped_column(JSON, default=list)


class AuditEvent(Base):
    """Who did what to which entity, with the entity before and after."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_entity", "entity_type", "entity_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(50))
    entity_type: Mapped[str] = mapped_column(String(30))
    entity_id: Mapped[str] = mapped_column(String(100))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)


class ChangeVersion(Base):
    """One row whose `version` every change that boards can see increments.

    Processes sharing the database compare it every `change_poll_seconds` and reload their
    in-memory snapshot when it moved: a retirement reaches every process within seconds on
    SQLite and PostgreSQL alike, without LISTEN/NOTIFY.
    """

    __tablename__ = "change_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


class Campaign(Base):
    """A window of time, a playlist, target boards and a priority.

    `previous` keeps the campaign as it was live when an edit arrived, and `edited_at` when:
    an edit takes effect from the next slot, so until then every process plans with
    `previous` (see `displayd.live.plan`).
    """

    __tablename__ = "campaign"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    timezone: Mapped[str] = mapped_column(String(64))
    daily_hours: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    dwell_seconds: Mapped[int] = mapped_column(Integer)
    priority: Mapped[int] = mapped_column(Integer)
    order: Mapped[str] = mapped_column(String(10))
    playlist: Mapped[list[dict[str, int]]] = mapped_column(JSON, default=list)
    targets: Mapped[dict[str, Any]] = mapped_column(JSON)
    paused: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    previous: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Board(Base):
    """A display. Its poll token and push secret exist only in the board itself: the token
    is kept as a SHA-256, and the secret is derived from the master key and `secret_nonce`."""

    __tablename__ = "board"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    location: Mapped[str | None] = mapped_column(String(300), nullable=True)
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    delivery: Mapped[str] = mapped_column(String(6))  # push | poll | stream | both
    endpoint_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    charset: Mapped[str] = mapped_column(String(5))
    max_chars: Mapped[int] = mapped_column(Integer)
    lines: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(Integer)
    lead_seconds: Mapped[int] = mapped_column(Integer, default=0)  # content is sent this long before its slot
    enabled: Mapped[bool] = mapped_column(default=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    secret_nonce: Mapped[str] = mapped_column(String(64))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Rotation(Base):
    """The rotation log: exactly one row per (board, campaign, slot) a board was given.

    `push_status`: pending | delivered | failed | skipped (board unreachable, not tried) |
    missed (displayd was down) | not_pushed (poll-only boards). `local_day` is the slot's
    start as a date in its campaign's time zone, set by the writer (`logbook.store.insert_rows`).

    Database triggers (migration 0006) add every insert and every change of a row's outcome
    to `daily_total`. SQLite drops a table's triggers when a migration rebuilds it
    (`batch_alter_table`): a migration that alters this table must create them again.
    """

    __tablename__ = "rotation"
    __table_args__ = (
        UniqueConstraint("board_id", "campaign_id", "slot_index", name="uq_rotation_board_id"),
        Index("ix_rotation_starts_at", "starts_at", "id"),
        Index("ix_rotation_campaign_id", "campaign_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    board_id: Mapped[str] = mapped_column(String(64))
    campaign_id: Mapped[int] = mapped_column(Integer)
    slot_index: Mapped[int] = mapped_column(BigInteger)
    slogan_id: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(71))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    push_status: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    http_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    latency_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    first_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    local_day: Mapped[date] = mapped_column(Date)
    # The highest revision of the slot sent: 0 the first send, one more for each change sent
    # within it (a retirement, a pause, the emergency stop, a resumption).
    revisions: Mapped[int] = mapped_column(Integer, default=0)


class DailyTotal(Base):
    """The rotation log summed per board, campaign, slogan and local day, kept forever.

    Kept by database triggers on `rotation` (migration 0006), never written by the code: every
    row inserted adds to its day, every change of its outcome adds the difference, and a
    purge of the detail (`logbook.retention`) takes nothing away. `rows` counts every row,
    `slots` those not missed, `milliseconds` their durations (each rounded to the millisecond),
    `polled` those with a first poll.
    """

    __tablename__ = "daily_total"
    __table_args__ = (Index("ix_daily_total_campaign_id", "campaign_id", "day"),)

    board_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    slogan_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    rows: Mapped[int] = mapped_column(Integer)
    slots: Mapped[int] = mapped_column(Integer)
    milliseconds: Mapped[int] = mapped_column(BigInteger)
    missed: Mapped[int] = mapped_column(Integer)
    missed_milliseconds: Mapped[int] = mapped_column(BigInteger)  # the durations of the missed ones
    not_pushed: Mapped[int] = mapped_column(Integer)
    delivered: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    polled: Mapped[int] = mapped_column(Integer)


class BoardHealth(Base):
    """How delivery to a board goes; written by the scheduler leader and by polls."""

    __tablename__ = "board_health"

    board_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_push_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_push_status: Mapped[str | None] = mapped_column(String(10), nullable=True)
    last_push_error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    unreachable_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    integrity_incidents: Mapped[int] = mapped_column(Integer, default=0)
    last_incident_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class IntegrityIncident(Base):
    """A board reported content displayd never issued to it: at most one row per board per
    slot (`slot_key`), however many times it is reported."""

    __tablename__ = "integrity_incident"
    __table_args__ = (
        Index("ix_integrity_incident_board_id", "board_id", "at"),
        UniqueConstraint("board_id", "slot_key", name="uq_integrity_incident_board_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    board_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(String(10))
    reported_hash: Mapped[str] = mapped_column(String(100))
    detail: Mapped[str | None] = mapped_column(String(300), nullable=True)
    slot_key: Mapped[str | None] = mapped_column(String(40), nullable=True)


class IssuedContent(Base):
    """Every content hash displayd ever gave a board, once: what a board's reported hash is
    checked against (one indexed query per batch, and it outlives the detailed log)."""

    __tablename__ = "issued_content"

    board_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(71), primary_key=True)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SchedulerState(Base):
    """The last slot boundary the scheduler leader handled, to find missed slots after a stop,
    and the start of a missed-slot window a take-over found and has not finished writing:
    a leader stopped while writing it leaves it for the next, though `handled_until` moved on.
    `purged_before`: the rotation log's detail of local days before it is (being) purged, so
    reports take those days from `daily_total` (null: nothing purged)."""

    __tablename__ = "scheduler_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    handled_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    missed_from: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    leader: Mapped[str | None] = mapped_column(String(100), nullable=True)
    purged_before: Mapped[date | None] = mapped_column(Date, nullable=True)


class EmergencyStop(Base):
    """Every board blank while a stop holds: the row whose `lifted_at` is null (at most one).
    Rows are kept after they are lifted, as the history of stops."""

    __tablename__ = "emergency_stop"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reason: Mapped[str] = mapped_column(String(300))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_by: Mapped[str] = mapped_column(String(100))
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lifted_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class Replica(Base):
    """A process that may lead push shards (`displayd.delivery.shards`), on PostgreSQL: its
    heartbeat, written every few seconds on its lock connection with the database's clock, and
    the shards it leads (comma-separated, ascending). A replica whose heartbeat is stale is not
    counted live; its row is deleted after an hour, or by itself when it stops cleanly."""

    __tablename__ = "replica"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    shards: Mapped[str] = mapped_column(Text, nullable=False, default="")
