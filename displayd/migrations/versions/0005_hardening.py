"""Hardening: who edited a draft, key use, server-side dashboard sessions, one integrity
incident per board and slot, and the content issued to each board.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op
from displayd.db.base import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("slogan") as batch:
        batch.add_column(sa.Column("edited_by", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("slogan") as batch:
        batch.alter_column("edited_by", server_default=None)
    op.add_column("api_key", sa.Column("last_used_at", UTCDateTime(), nullable=True))
    op.create_table(
        "ui_session",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ui_session")),
    )
    op.create_index("ix_ui_session_key_id", "ui_session", ["key_id"])
    with op.batch_alter_table("integrity_incident") as batch:
        batch.add_column(sa.Column("slot_key", sa.String(40), nullable=True))
        batch.create_unique_constraint("uq_integrity_incident_board_id", ["board_id", "slot_key"])
    op.create_table(
        "issued_content",
        sa.Column("board_id", sa.String(64), nullable=False),
        sa.Column("content_hash", sa.String(71), nullable=False),
        sa.Column("first_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("board_id", "content_hash", name=op.f("pk_issued_content")),
    )
    # What the log already says was given (not what passed while displayd was down).
    op.execute("INSERT INTO issued_content (board_id, content_hash, first_at) "
               "SELECT board_id, content_hash, min(starts_at) FROM rotation WHERE push_status <> 'missed' "
               "GROUP BY board_id, content_hash")


def downgrade() -> None:
    op.drop_table("issued_content")
    with op.batch_alter_table("integrity_incident") as batch:
        batch.drop_constraint("uq_integrity_incident_board_id", type_="unique")
        batch.drop_column("slot_key")
    op.drop_index("ix_ui_session_key_id", table_name="ui_session")
    op.drop_table("ui_session")
    with op.batch_alter_table("api_key") as batch:
        batch.drop_column("last_used_at")
    with op.batch_alter_table("slogan") as batch:
        batch.drop_column("edited_by")
