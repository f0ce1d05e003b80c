"""Delivery v2: a board's `lead_seconds` and the `stream` delivery, the revisions a slot was
sent in, and the emergency stop.

- `board.lead_seconds` (0..300): content is sent this long before its slot starts.
- `board.delivery` grows to hold `stream`.
- `rotation.revisions`: the highest revision of the slot sent (0: only the first send). The
  column is added in place (`ALTER TABLE … ADD COLUMN`), so SQLite keeps the daily-total
  triggers of 0006 (a rebuild of `rotation` would drop them).
- `emergency_stop`: one row per stop; the one whose `lifted_at` is null holds.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op
from displayd.db.base import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("board") as batch:  # `board` has no triggers: a rebuild on SQLite is harmless
        batch.add_column(sa.Column("lead_seconds", sa.Integer(), nullable=False, server_default="0"))
        batch.alter_column("delivery", type_=sa.String(6), existing_type=sa.String(4), existing_nullable=False)
    op.add_column("rotation", sa.Column("revisions", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "emergency_stop",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(300), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("started_by", sa.String(100), nullable=False),
        sa.Column("lifted_at", UTCDateTime(), nullable=True),
        sa.Column("lifted_by", sa.String(100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_stop")),
    )


def downgrade() -> None:
    op.drop_table("emergency_stop")
    op.drop_column("rotation", "revisions")  # SQLite ≥ 3.35 drops a column in place, triggers kept
    with op.batch_alter_table("board") as batch:
        batch.alter_column("delivery", type_=sa.String(4), existing_type=sa.String(6), existing_nullable=False)
        batch.drop_column("lead_seconds")
