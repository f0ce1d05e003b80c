"""Rotation-log write benchmark: recording one 10,000-board slot, on SQLite and on PostgreSQL.

What it measures: what the scheduler leader writes for one slot (displayd/delivery/dispatch.py,
`Dispatcher.sync` then `Dispatcher._record`), through displayd's own store functions:
- insert: `store.insert_rows` of `--boards` (default 10,000) `NewRow`s with status `pending`,
  in one transaction (`sync` writes them in two: the first 32 rows, then the rest, so one
  more commit than here);
- results: `store.record_results` of as many `Outcome`s (`delivered`), in one transaction.
Target: insert + results <= 1 s per database.

Baseline, measured in the same run on the same database: the same rows written with the
plain driver into `bare_rotation`, a table of exactly the rotation table's shape (its columns,
unique constraint and indexes copied): one `executemany` INSERT and one `executemany`
UPDATE keyed on (board_id, campaign_id, slot_index), each in one transaction (aiosqlite on
SQLite, asyncpg on PostgreSQL; asyncpg's `copy_records_to_table` is printed as well, as
the fastest way PostgreSQL can take the rows at all).

How:
- SQLite: a temporary file; PostgreSQL: a scratch database `displayd_bench_logwrite_<pid>`
  created on the server of `--pg` (default the local server, user postgres, through its
  database `test`) and dropped at the end (bench/harness/databases.py).
  Each is migrated with `displayd.db.migrate.upgrade` before the event loop starts, and
  opened with displayd's `create_engine` (so SQLite gets its WAL pragmas).
- One warm-up slot of `--warmup-rows` (default: as many as `--boards`) first, so connections
  are open and statements compiled as in a running leader (its time is printed as "cold");
  then `--rounds` (default 3) slots, each a new slot index (fresh rows, as in production),
  interleaved with the bare baseline. The median round is reported.
- Caution, PostgreSQL: `record_results` is one prepared UPDATE executed once per row
  (asyncpg executemany). After 5 executions PostgreSQL may switch a prepared statement to
  its cached generic plan, and asyncpg keeps the statement per pooled connection; if that
  plan was made while the rotation table was tiny it is a sequential scan, kept until an
  ANALYZE invalidates it, and every later slot costs rows x table size. `--warmup-rows 100`
  reproduces it (results take seconds and grow each round).

Run: `.venv/bin/python bench/logwrite.py [--boards 10000] [--rounds 3] [--only sqlite|postgresql] [--pg URL]`,
or `--quick` (500 rows, one round) to check it works.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's displayd and bench.harness

from bench.harness.databases import LOCAL_POSTGRESQL, plain_dsn, postgresql_url, scratch_database
from bench.harness.deployment import isolate_environment
from bench.harness.figures import median, verdict
from bench.harness.running import Run, parse_args, run_bench
from displayd.config import Settings
from displayd.db import migrate
from displayd.db.session import create_engine, create_sessionmaker
from displayd.logbook import store
from displayd.logbook.store import NewRow, Outcome

TARGET = 1.0
CAMPAIGN = 1
HASH = "sha256:" + "ab" * 32
QUICK = {"boards": 500, "rounds": 1}


@dataclass
class Round:
    insert: float
    results: float

    @property
    def total(self) -> float:
        return self.insert + self.results


@dataclass
class Bare:
    insert: float
    update: float
    copy: float | None = None

    @property
    def total(self) -> float:
        return self.insert + self.update


def slot_rows(boards: int, slot: int) -> tuple[list[NewRow], list[Outcome]]:
    starts = datetime(2024, 5, 7, tzinfo=UTC) + timedelta(seconds=5 * slot)
    ends = starts + timedelta(seconds=5)
    rows = [NewRow(f"bench-{i:05d}", CAMPAIGN, slot, 1 + i % 50, HASH, starts, ends, "pending")
            for i in range(boards)]
    delivered = ends - timedelta(seconds=4)
    outcomes = [Outcome(r.key, "delivered", 1, 200, 3, None, delivered) for r in rows]
    return rows, outcomes


async def timed(work: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await work()
    return time.perf_counter() - started


async def displayd_round(sessionmaker: async_sessionmaker[AsyncSession], boards: int, slot: int) -> Round:
    """One slot through displayd's store, each phase in its own transaction as the leader does."""
    rows, outcomes = slot_rows(boards, slot)

    async def insert() -> None:
        async with sessionmaker() as session, session.begin():
            inserted = await store.insert_rows(session, rows)
        if len(inserted) != len(rows):
            raise RuntimeError(f"insert_rows reported {len(inserted)} new keys of {len(rows)}")

    async def results() -> None:
        async with sessionmaker() as session, session.begin():
            await store.record_results(session, outcomes)

    return Round(await timed(insert), await timed(results))


# ---------------------------------------------------------------- bare baseline: SQLite

def _bare_sqlite_values(boards: int, slot: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    rows, outcomes = slot_rows(boards, slot)
    fmt = "%Y-%m-%d %H:%M:%S.%f"
    inserts = [(r.board_id, r.campaign_id, r.slot_index, r.slogan_id, r.content_hash, r.starts_at.strftime(fmt),
                r.ends_at.strftime(fmt), r.push_status, 0, r.error, r.starts_at.date().isoformat()) for r in rows]
    updates = [(o.push_status, o.attempts, o.http_status, o.latency_ms, o.error,
                o.delivered_at.strftime(fmt) if o.delivered_at else None, *o.key) for o in outcomes]
    return inserts, updates


INSERT_COLUMNS = "board_id, campaign_id, slot_index, slogan_id, content_hash, starts_at, ends_at, push_status, " \
                 "attempts, error, local_day"
UPDATE_SET = "push_status = {0}, attempts = {1}, http_status = {2}, latency_ms = {3}, error = {4}, delivered_at = {5}"


async def sqlite_make_bare(path: Path) -> None:
    """bare_rotation: rotation's DDL (table and indexes) under other names."""
    async with aiosqlite.connect(path) as db:
        # Not its triggers: the bare table is the table alone (they keep daily_total).
        cursor = await db.execute("SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'rotation' "
                                  "AND type IN ('table', 'index') AND sql IS NOT NULL")
        ddl = list(await cursor.fetchall())
        for kind, name, sql in ddl:
            if kind == "table":
                # Quoted once a migration has rebuilt the table (SQLite's batch mode).
                sql = sql.replace('CREATE TABLE "rotation"', "CREATE TABLE rotation", 1)
                sql = sql.replace("CREATE TABLE rotation", "CREATE TABLE bare_rotation", 1)
                sql = sql.replace("CONSTRAINT uq_rotation", "CONSTRAINT uq_bare_rotation")
                sql = sql.replace("CONSTRAINT pk_rotation", "CONSTRAINT pk_bare_rotation")
            else:
                sql = sql.replace(f"INDEX {name} ON rotation", f"INDEX bare_{name} ON bare_rotation", 1)
            if "bare_rotation" not in sql:
                raise RuntimeError(f"could not copy rotation's DDL: {sql}")
            await db.execute(sql)
        await db.commit()


async def sqlite_bare_round(path: Path, boards: int, slot: int) -> Bare:
    inserts, updates = _bare_sqlite_values(boards, slot)
    async with aiosqlite.connect(path, isolation_level=None) as db:
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=10000"):
            await db.execute(f"PRAGMA {pragma}")

        async def insert() -> None:
            await db.execute("BEGIN")
            await db.executemany(f"INSERT INTO bare_rotation ({INSERT_COLUMNS}) VALUES ({', '.join('?' * 11)})",
                                 inserts)
            await db.execute("COMMIT")

        async def update() -> None:
            await db.execute("BEGIN")
            await db.executemany("UPDATE bare_rotation SET " + UPDATE_SET.format(*["?"] * 6)
                                 + " WHERE board_id = ? AND campaign_id = ? AND slot_index = ?", updates)
            await db.execute("COMMIT")

        return Bare(await timed(insert), await timed(update))


# ---------------------------------------------------------------- bare baseline: PostgreSQL

async def pg_make_bare(url: str) -> None:
    connection = await asyncpg.connect(plain_dsn(url))
    try:
        await connection.execute("CREATE TABLE bare_rotation (LIKE rotation INCLUDING ALL)")
    finally:
        await connection.close()


async def pg_bare_round(url: str, boards: int, slot: int) -> Bare:
    rows, outcomes = slot_rows(boards, slot)
    inserts = [(r.board_id, r.campaign_id, r.slot_index, r.slogan_id, r.content_hash, r.starts_at, r.ends_at,
                r.push_status, 0, r.error, r.starts_at.date()) for r in rows]
    updates = [(o.push_status, o.attempts, o.http_status, o.latency_ms, o.error, o.delivered_at, *o.key)
               for o in outcomes]
    connection = await asyncpg.connect(plain_dsn(url))
    try:
        async def insert() -> None:
            async with connection.transaction():
                await connection.executemany(
                    f"INSERT INTO bare_rotation ({INSERT_COLUMNS}) VALUES "
                    f"({', '.join(f'${i}' for i in range(1, 12))})", inserts)

        async def update() -> None:
            async with connection.transaction():
                await connection.executemany(
                    "UPDATE bare_rotation SET " + UPDATE_SET.format(*[f"${i}" for i in range(1, 7)])
                    + " WHERE board_id = $7 AND campaign_id = $8 AND slot_index = $9", updates)

        async def copy() -> None:  # the same rows again under another slot index
            shifted = [(*row[:2], row[2] + 1_000_000, *row[3:]) for row in inserts]
            async with connection.transaction():
                await connection.copy_records_to_table("bare_rotation", records=shifted,
                                                       columns=[c.strip() for c in INSERT_COLUMNS.split(",")])

        return Bare(await timed(insert), await timed(update), await timed(copy))
    finally:
        await connection.close()


# ---------------------------------------------------------------- driver

async def bench_database(name: str, url: str, args: argparse.Namespace,
                         make_bare: Callable[[], Awaitable[None]],
                         bare_round: Callable[[int], Awaitable[Bare]]) -> tuple[Round, Bare]:
    engine = create_engine(Settings(database_url=url))  # one for every round, as in a running leader
    sessionmaker = create_sessionmaker(engine)
    try:
        await make_bare()
        cold = await displayd_round(sessionmaker, args.warmup_rows, 0)  # connections, compiled statements
        print(f"  {name} warm-up ({args.warmup_rows} rows, cold): insert {cold.insert:.3f} + results "
              f"{cold.results:.3f} s", flush=True)
        await bare_round(0)
        rounds: list[Round] = []
        bares: list[Bare] = []
        for i in range(1, args.rounds + 1):
            ours = await displayd_round(sessionmaker, args.boards, i)
            bare = await bare_round(i)
            rounds.append(ours)
            bares.append(bare)
            copy = f", copy {bare.copy:.3f}" if bare.copy is not None else ""
            print(f"  {name} round {i}: displayd {ours.total:.3f} s (insert {ours.insert:.3f} + results "
                  f"{ours.results:.3f}); bare {bare.total:.3f} s (insert {bare.insert:.3f} + update "
                  f"{bare.update:.3f}{copy})", flush=True)
    finally:
        await engine.dispose()
    ours = sorted(rounds, key=lambda r: r.total)[len(rounds) // 2]
    bare = Bare(median(b.insert for b in bares), median(b.update for b in bares),
                median(b.copy or 0.0 for b in bares) if bares[0].copy is not None else None)
    return ours, bare


def summary(name: str, ours: Round, bare: Bare, boards: int) -> str:
    copy = f", copy {bare.copy:.2f} s" if bare.copy is not None else ""
    return (f"logwrite {name}: {ours.total:.2f} s (insert {ours.insert:.2f} + results {ours.results:.2f}), "
            f"bare {bare.total:.2f} s (insert {bare.insert:.2f} + update {bare.update:.2f}{copy}), "
            f"ratio {ours.total / bare.total:.1f}x, {boards} boards, target <= {TARGET:g} s "
            f"({verdict(ours.total <= TARGET)})")


def run_database(run: Run, args: argparse.Namespace, kind: str) -> str:
    """Migrate a scratch database of `kind`, then measure displayd's store against the bare driver on it."""
    with scratch_database(run.workdir, "logwrite", server=args.pg if kind == "postgresql" else None) as url:
        migrate.upgrade(Settings(database_url=url))  # Alembic runs its own loop: before ours
        path = Path(url.split(":///", 1)[-1])

        async def make_bare() -> None:
            await (sqlite_make_bare(path) if kind == "sqlite" else pg_make_bare(url))

        async def bare_round(slot: int) -> Bare:
            return await (sqlite_bare_round(path, args.boards, slot) if kind == "sqlite"
                          else pg_bare_round(url, args.boards, slot))

        ours, bare = asyncio.run(bench_database(kind, url, args, make_bare, bare_round))
    return summary(kind, ours, bare, args.boards)


def logwrite(run: Run, args: argparse.Namespace) -> int:
    isolate_environment()
    lines = [run_database(run, args, kind) for kind in ("sqlite", "postgresql") if args.only in (None, kind)]
    for line in lines:
        print(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--boards", type=int, default=10_000, help="rows per slot (default 10000)")
    parser.add_argument("--rounds", type=int, default=3, help="measured slots per database (default 3)")
    parser.add_argument("--warmup-rows", type=int, default=None,
                        help="rows of the warm-up slot (default: --boards; 100 shows the cached-plan trap)")
    parser.add_argument("--only", choices=["sqlite", "postgresql"], default=None, help="one database only")
    parser.add_argument("--pg", type=postgresql_url, default=LOCAL_POSTGRESQL,
                        help="the PostgreSQL server, as the URL of a database on it the scratch database is "
                             "created through (default: the local server's `test`)")
    args = parse_args(parser, argv, QUICK)
    if args.warmup_rows is None:
        args.warmup_rows = args.boards
    if args.boards < 1 or args.rounds < 1 or args.warmup_rows < 1:
        parser.error("--boards, --rounds and --warmup-rows must be positive")
    return run_bench("logwrite", lambda run: logwrite(run, args))


if __name__ == "__main__":
    sys.exit(main())
