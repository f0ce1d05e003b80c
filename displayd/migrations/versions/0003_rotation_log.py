"""The rotation log, board health, integrity incidents, scheduler state.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op
from displayd.db.base import BigId, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rotation",
        sa.Column("id", BigId, nullable=False),
        sa.Column("board_id", sa.String(64), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("slot_index", sa.BigInteger(), nullable=False),
        sa.Column("slogan_id", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(71), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("push_status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(300), nullable=True),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("first_polled_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rotation")),
        sa.UniqueConstraint("board_id", "campaign_id", "slot_index", name="uq_rotation_board_id"),
    )
    op.create_index("ix_rotation_starts_at", "rotation", ["starts_at", "id"])
    op.create_index("ix_rotation_campaign_id", "rotation", ["campaign_id", "starts_at"])
    op.create_table(
        "board_health",
        sa.Column("board_id", sa.String(64), nullable=False),
        sa.Column("last_push_at", UTCDateTime(), nullable=True),
        sa.Column("last_push_status", sa.String(10), nullable=True),
        sa.Column("last_push_error", sa.String(300), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("unreachable_since", UTCDateTime(), nullable=True),
        sa.Column("last_poll_at", UTCDateTime(), nullable=True),
        sa.Column("integrity_incidents", sa.Integer(), nullable=False),
        sa.Column("last_incident_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("board_id", name=op.f("pk_board_health")),
    )
    op.create_table(
        "integrity_incident",
        sa.Column("id", BigId, nullable=False),
        sa.Column("board_id", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("reported_hash", sa.String(100), nullable=False),
        sa.Column("detail", sa.String(300), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integrity_incident")),
    )
    op.create_index("ix_integrity_incident_board_id", "integrity_incident", ["board_id", "at"])
    state = op.create_table(
        "scheduler_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("handled_until", UTCDateTime(), nullable=True),
        sa.Column("leader", sa.String(100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduler_state")),
    )
    op.bulk_insert(state, [{"id": 1, "handled_until": None, "leader": None}])


def downgrade() -> None:
    op.drop_table("scheduler_state")
    op.drop_index("ix_integrity_incident_board_id", table_name="integrity_incident")
    op.drop_table("integrity_incident")
    op.drop_table("board_health")
    op.drop_index("ix_rotation_campaign_id", table_name="rotation")
    op.drop_index("ix_rotation_starts_at", table_name="rotation")
    op.drop_table("rotation")
