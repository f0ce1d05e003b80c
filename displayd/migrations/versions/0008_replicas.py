"""Replicas: the processes sharing the push work, their heartbeats and the shards they lead.

- `replica`: one row per process that may lead (`displayd.delivery.leader`), keyed by its
  instance name (`host:pid:id`); `heartbeat_at` is written with the database's clock every
  few seconds, `shards` lists the shards it leads. Used on PostgreSQL; on SQLite one process
  leads every shard and the table stays empty.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op
from displayd.db.base import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replica",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
        sa.Column("shards", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_replica")),
    )


def downgrade() -> None:
    op.drop_table("replica")
