"""Daily totals: `rotation.local_day`, the `daily_total` table kept by triggers on `rotation`,
and `scheduler_state.purged_before` (the retention horizon).

The totals are kept by the database, not by the code that writes the log: every path that
inserts a row or changes its outcome (the slot path, push results, `fail_stale_pending`,
polls, missed slots, revisions) is counted without having to remember to. A row adds its
contribution when inserted; a change of its outcome adds (new − old); deleting rows (the
retention purge) takes nothing away. One implementation per dialect:
- SQLite: row triggers, each an upsert (`INSERT … ON CONFLICT DO UPDATE`).
- PostgreSQL: statement triggers with transition tables (plpgsql), one upsert per statement
  grouped by key: the same arithmetic, about half the cost of a row trigger on a slot of
  thousands of rows. A statement trigger with transition tables cannot name columns
  (`UPDATE OF …`), so it runs on every UPDATE and drops the keys whose delta is zero.
  Still, every row of a slot is an upsert of its (board, campaign, slogan, day): measured
  with bench/logwrite.py, a 10,000-board slot's writes take ~45 % longer on PostgreSQL
  (SQLite ~5 %); the slot's first claim, which its pushes wait for, is 32 rows.

A row's milliseconds are its duration rounded to the millisecond, by the same expression
`displayd.logbook.queries` sums over the detail, so totals and detail agree exactly.

SQLite loses a table's triggers when `batch_alter_table` rebuilds it: a later migration that
alters `rotation` must drop and create them again (see `_create_triggers`).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from alembic import op
from displayd.db.base import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"  # a campaign's default zone (a row whose campaign is gone gets it)
BACKFILL_BATCH = 10_000
COUNTERS = ("rows", "slots", "milliseconds", "missed", "missed_milliseconds", "not_pushed", "delivered", "failed",
            "polled")
KEY = ("board_id", "campaign_id", "slogan_id", "day")

_rotation = sa.table("rotation", sa.column("id", sa.BigInteger()), sa.column("campaign_id", sa.Integer()),
                     sa.column("starts_at", UTCDateTime()), sa.column("local_day", sa.Date()))


def _milliseconds(dialect: str, r: str) -> str:
    if dialect == "postgresql":
        return f"round(extract(epoch from {r}.ends_at - {r}.starts_at) * 1000)::bigint"
    return f"CAST(round((julianday({r}.ends_at) - julianday({r}.starts_at)) * 86400000.0) AS INTEGER)"


def _contribution(dialect: str, r: str) -> list[str]:
    """What one row adds to its day, counter by counter (COUNTERS), as integer expressions."""
    given = f"{r}.push_status <> 'missed'"
    return [
        "1",
        f"CASE WHEN {given} THEN 1 ELSE 0 END",
        f"CASE WHEN {given} THEN {_milliseconds(dialect, r)} ELSE 0 END",
        f"CASE WHEN {r}.push_status = 'missed' THEN 1 ELSE 0 END",
        f"CASE WHEN {r}.push_status = 'missed' THEN {_milliseconds(dialect, r)} ELSE 0 END",
        f"CASE WHEN {r}.push_status = 'not_pushed' THEN 1 ELSE 0 END",
        f"CASE WHEN {r}.push_status = 'delivered' THEN 1 ELSE 0 END",
        f"CASE WHEN {r}.push_status = 'failed' THEN 1 ELSE 0 END",
        f"CASE WHEN {r}.first_polled_at IS NOT NULL THEN 1 ELSE 0 END",
    ]


_COLUMNS = ", ".join(f'"{c}"' if c == "rows" else c for c in (*KEY, *COUNTERS))
_ADD = ", ".join(f'"{c}" = daily_total."{c}" + excluded."{c}"' for c in COUNTERS)
_UPSERT = f"ON CONFLICT (board_id, campaign_id, slogan_id, day) DO UPDATE SET {_ADD}"


def _sqlite_upsert(values: list[str], r: str) -> str:
    return (f"INSERT INTO daily_total ({_COLUMNS}) VALUES ({r}.board_id, {r}.campaign_id, {r}.slogan_id, "
            f"{r}.local_day, {', '.join(values)}) {_UPSERT};")


def _sqlite_triggers() -> list[str]:
    new, old = _contribution("sqlite", "NEW"), _contribution("sqlite", "OLD")
    same_key = ("NEW.board_id = OLD.board_id AND NEW.campaign_id = OLD.campaign_id "
                "AND NEW.slogan_id = OLD.slogan_id AND NEW.local_day = OLD.local_day")
    watched = "push_status, first_polled_at, starts_at, ends_at, board_id, campaign_id, slogan_id, local_day"
    return [
        f"CREATE TRIGGER rotation_daily_total_insert AFTER INSERT ON rotation BEGIN "
        f"{_sqlite_upsert(new, 'NEW')} END",
        # The usual change, an outcome: one upsert of the difference.
        f"CREATE TRIGGER rotation_daily_total_update AFTER UPDATE OF {watched} ON rotation "
        f"WHEN {same_key} BEGIN {_sqlite_upsert([f'({n}) - ({o})' for n, o in zip(new, old, strict=True)], 'NEW')} END",
        # A row moved to another key (another slogan or day): out of the old, into the new.
        f"CREATE TRIGGER rotation_daily_total_rekey AFTER UPDATE OF {watched} ON rotation "
        f"WHEN NOT ({same_key}) BEGIN {_sqlite_upsert([f'-({o})' for o in old], 'OLD')} "
        f"{_sqlite_upsert(new, 'NEW')} END",
    ]


def _pg_statements() -> list[str]:
    def rows(table: str, sign: str) -> str:
        values = ", ".join(f"{sign}({v}) AS c{i}" for i, v in enumerate(_contribution("postgresql", "r")))
        return f"SELECT r.board_id, r.campaign_id, r.slogan_id, r.local_day, {values} FROM {table} AS r"

    sums = ", ".join(f"sum(c{i})" for i in range(len(COUNTERS)))
    nonzero = " OR ".join(f"sum(c{i}) <> 0" for i in range(len(COUNTERS)))

    def function(name: str, source: str) -> str:
        # ORDER BY: every writer locks the totals it touches in the same order (no deadlock
        # between a slot's results and the polls being recorded at the same moment).
        return (f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"INSERT INTO daily_total ({_COLUMNS}) "
                f"SELECT board_id, campaign_id, slogan_id, local_day, {sums} FROM ({source}) AS d "
                f"GROUP BY board_id, campaign_id, slogan_id, local_day HAVING {nonzero} "
                f"ORDER BY board_id, campaign_id, slogan_id, local_day {_UPSERT}; "
                f"RETURN NULL; END $$")

    return [
        function("rotation_daily_total_insert", rows("new_rows", "")),
        function("rotation_daily_total_update", f"{rows('new_rows', '')} UNION ALL {rows('old_rows', '-')}"),
        "CREATE TRIGGER rotation_daily_total_insert AFTER INSERT ON rotation REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION rotation_daily_total_insert()",
        "CREATE TRIGGER rotation_daily_total_update AFTER UPDATE ON rotation "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION rotation_daily_total_update()",
    ]


def _create_triggers(dialect: str) -> None:
    for statement in _pg_statements() if dialect == "postgresql" else _sqlite_triggers():
        op.execute(statement)


def _drop_triggers(dialect: str) -> None:
    if dialect == "postgresql":
        for name in ("rotation_daily_total_insert", "rotation_daily_total_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON rotation")
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
        return
    for name in ("rotation_daily_total_insert", "rotation_daily_total_update", "rotation_daily_total_rekey"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


def _backfill_local_days(bind: sa.engine.Connection) -> None:
    """Every row's local day, computed here (zoneinfo, as the writer does), written in runs of
    consecutive ids with the same day: rows arrive in time order, so a batch is a few runs."""
    zones = {row.id: _zone(row.timezone) for row in bind.execute(sa.text("SELECT id, timezone FROM campaign"))}
    default = _zone(DEFAULT_TIMEZONE)
    after = 0
    while True:
        batch = bind.execute(sa.select(_rotation.c.id, _rotation.c.campaign_id, _rotation.c.starts_at)
                             .where(_rotation.c.id > after).order_by(_rotation.c.id).limit(BACKFILL_BATCH)).all()
        if not batch:
            return
        runs: list[dict[str, object]] = []
        for row_id, campaign_id, starts_at in batch:
            day = _local_day(starts_at, zones.get(campaign_id, default))
            if runs and runs[-1]["day"] == day:
                runs[-1]["hi"] = row_id
            else:
                runs.append({"lo": row_id, "hi": row_id, "day": day})
        run = _rotation.c.id.between(sa.bindparam("lo"), sa.bindparam("hi"))
        bind.execute(sa.update(_rotation).where(run).values(local_day=sa.bindparam("day")), runs)
        after = batch[-1][0]


def _local_day(starts_at: datetime, zone: ZoneInfo) -> date:
    return starts_at.astimezone(zone).date()


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    op.add_column("scheduler_state", sa.Column("purged_before", sa.Date(), nullable=True))
    op.add_column("rotation", sa.Column("local_day", sa.Date(), nullable=True))
    _backfill_local_days(bind)
    with op.batch_alter_table("rotation") as batch:
        batch.alter_column("local_day", existing_type=sa.Date(), nullable=False)
    op.create_table(
        "daily_total",
        sa.Column("board_id", sa.String(64), nullable=False),
        sa.Column("campaign_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("slogan_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("milliseconds", sa.BigInteger(), nullable=False),
        sa.Column("missed", sa.Integer(), nullable=False),
        sa.Column("missed_milliseconds", sa.BigInteger(), nullable=False),
        sa.Column("not_pushed", sa.Integer(), nullable=False),
        sa.Column("delivered", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("polled", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("board_id", "campaign_id", "slogan_id", "day", name=op.f("pk_daily_total")),
    )
    op.create_index("ix_daily_total_campaign_id", "daily_total", ["campaign_id", "day"])
    sums = ", ".join(f"sum({v})" for v in _contribution(dialect, "r"))
    op.execute(f"INSERT INTO daily_total ({_COLUMNS}) SELECT r.board_id, r.campaign_id, r.slogan_id, r.local_day, "
               f"{sums} FROM rotation AS r GROUP BY r.board_id, r.campaign_id, r.slogan_id, r.local_day")
    _create_triggers(dialect)


def downgrade() -> None:
    _drop_triggers(op.get_bind().dialect.name)
    op.drop_index("ix_daily_total_campaign_id", table_name="daily_total")
    op.drop_table("daily_total")
    with op.batch_alter_table("rotation") as batch:
        batch.drop_column("local_day")
    with op.batch_alter_table("scheduler_state") as batch:
        batch.drop_column("purged_before")
