"""scheduler_state.missed_from: where a take-over's missed-slot window starts, until it is written.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op
from displayd.db.base import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("scheduler_state", sa.Column("missed_from", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scheduler_state") as batch:
        batch.drop_column("missed_from")
