"""`displayd db copy SOURCE_URL TARGET_URL`: one database's rows into another, any direction.

    await copy_database("sqlite+aiosqlite:///var/displayd.db",
                        "postgresql+asyncpg://displayd@db/displayd", force=False)

What it does, in order:
1. refuses a source that does not exist (an SQLite path that would be created empty) or is
   not at the same migration as this displayd, and a target that is the source;
2. migrates the target to head, and refuses it if any table holds a row (`force=True`
   empties it first, in the same transaction as the copy);
3. copies every table parents before children (`Base.metadata.sorted_tables`), in batches
   streamed from the source, inside ONE target transaction: a copy that fails leaves the
   target as it was; `daily_total` last, as it is on the source (the target's triggers add
   the copied rotation rows to it as they arrive, but the source's totals also hold the days
   whose detail was purged, so what the triggers wrote is replaced);
4. updates the one-row tables (`change_version`, moved past both sides so that any process
   already on the target reloads; `scheduler_state` without the old site's leader) rather
   than inserting them, and resets PostgreSQL's id sequences to the highest id copied;
5. counts every table on both sides and fails if any differs.

The `replica` table (the processes running on a site: heartbeats and push shards) is not data:
it is neither copied nor counted.

The source is only read. Stop displayd on the source first: rows written during the copy
are not carried. The master key is not in the database (see `displayd.keyring`): the
command says what to carry over so that board secrets keep verifying.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Integer, Table, func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from displayd.config import Settings
from displayd.db import migrate
from displayd.db.models import Base, ChangeVersion, DailyTotal, Replica, SchedulerState
from displayd.db.session import create_engine
from displayd.errors import DisplaydError
from displayd.progress import Progress

__all__ = ["CopyRefused", "CopyReport", "copy_database"]

BATCH = 2_000
SINGLETONS = frozenset({ChangeVersion.__tablename__, SchedulerState.__tablename__})
KEPT_BY_TRIGGERS = frozenset({DailyTotal.__tablename__})  # copied last, replacing what the triggers wrote
# The processes running on a site (their heartbeats and shards), not data: neither copied nor counted.
NOT_COPIED = frozenset({Replica.__tablename__})


class CopyRefused(DisplaydError):
    status_code = 409
    code = "copy_refused"


@dataclass
class CopyReport:
    counts: dict[str, int] = field(default_factory=dict)  # rows per table, equal on both sides
    source_revision: str | None = None


ProgressFactory = Callable[[str, int], Progress]


def _tables() -> list[Table]:
    tables = [table for table in Base.metadata.sorted_tables if table.name not in SINGLETONS | NOT_COPIED]
    return sorted(tables, key=lambda table: table.name in KEPT_BY_TRIGGERS)  # stable: parents still first


async def _revision(connection: AsyncConnection) -> str | None:
    try:
        return (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    except Exception:
        return None


async def _counts(connection: AsyncConnection) -> dict[str, int]:
    return {table.name: int((await connection.execute(select(func.count()).select_from(table))).scalar_one())
            for table in _tables()}


async def copy_database(source_url: str, target_url: str, *, force: bool = False,
                        progress: ProgressFactory | None = None) -> CopyReport:
    source_settings, target_settings = Settings(database_url=source_url), Settings(database_url=target_url)
    if _same_database(source_url, target_url):
        raise CopyRefused("the source and the target are the same database")
    if source_settings.sqlite_path is not None and not source_settings.sqlite_path.exists():
        raise CopyRefused(f"there is no SQLite database at {source_settings.sqlite_path}")
    source = create_engine(source_settings)
    try:
        async with source.connect() as connection:
            revision = await _revision(connection)
        head = migrate.head_revision()
        if revision != head:
            raise CopyRefused(f"the source is at migration {revision or 'none'}, this displayd at {head}: "
                              "run `displayd db upgrade` on the source first")
        await asyncio.to_thread(migrate.upgrade, target_settings)  # Alembic runs its own loop
        target = create_engine(target_settings)
        try:
            report = await _copy(source, target, force=force, progress=progress)
        finally:
            await target.dispose()
    finally:
        await source.dispose()
    report.source_revision = revision
    return report


def _same_database(a: str, b: str) -> bool:
    first, second = make_url(a), make_url(b)
    if first.get_backend_name() != second.get_backend_name():
        return False
    if first.get_backend_name() == "sqlite":
        return Settings(database_url=a).sqlite_path == Settings(database_url=b).sqlite_path
    return (first.host, first.port, first.database) == (second.host, second.port, second.database)


async def _copy(source: AsyncEngine, target: AsyncEngine, *, force: bool,
                progress: ProgressFactory | None) -> CopyReport:
    async with source.connect() as reading:
        expected = await _counts(reading)
        async with target.begin() as writing:
            present = {name: count for name, count in (await _counts(writing)).items() if count}
            if present and not force:
                listed = ", ".join(f"{name} ({count})" for name, count in sorted(present.items()))
                raise CopyRefused(f"the target already holds rows: {listed}; use --force to replace them")
            for table in reversed(_tables()):  # children before parents
                await writing.execute(table.delete())
            for table in _tables():
                if table.name in KEPT_BY_TRIGGERS:
                    await writing.execute(table.delete())
                meter = progress(table.name, expected[table.name]) if progress and expected[table.name] else None
                await _copy_table(reading, writing, table, meter)
            await _copy_singletons(reading, writing)
            if target.dialect.name == "postgresql":
                await _reset_sequences(writing)
        async with target.connect() as checking:
            copied = await _counts(checking)
    differing = {name: (expected[name], copied[name]) for name in expected if expected[name] != copied[name]}
    if differing:
        raise CopyRefused(f"row counts differ after the copy (source, target): {differing}")
    return CopyReport(counts=copied)


async def _copy_table(reading: AsyncConnection, writing: AsyncConnection, table: Table,
                      meter: Progress | None) -> None:
    ordered = select(table).order_by(*table.primary_key.columns)
    result = await reading.stream(ordered)
    async for rows in result.mappings().partitions(BATCH):
        await writing.execute(table.insert(), [dict(row) for row in rows])
        if meter is not None:
            meter.advance(len(rows))
    if meter is not None:
        meter.done()


async def _copy_singletons(reading: AsyncConnection, writing: AsyncConnection) -> None:
    source_version = (await reading.execute(select(ChangeVersion.version))).scalar() or 0
    target_version = (await writing.execute(select(ChangeVersion.version))).scalar() or 0
    await writing.execute(update(ChangeVersion).values(version=max(source_version, target_version) + 1))
    state = (await reading.execute(select(SchedulerState.handled_until, SchedulerState.missed_from,
                                          SchedulerState.purged_before))).first()
    if state is not None:
        await writing.execute(update(SchedulerState).values(handled_until=state.handled_until,
                                                            missed_from=state.missed_from,
                                                            purged_before=state.purged_before, leader=None))


async def _reset_sequences(writing: AsyncConnection) -> None:
    for table in _tables():
        keys = list(table.primary_key.columns)
        if len(keys) != 1 or not isinstance(keys[0].type, Integer) or keys[0].autoincrement is False:
            continue
        sequence = (await writing.execute(text("SELECT pg_get_serial_sequence(:t, :c)"),
                                          {"t": table.name, "c": keys[0].name})).scalar()
        if sequence is None:
            continue
        await writing.execute(text(f"SELECT setval(:s, coalesce((SELECT max({keys[0].name}) FROM {table.name}), 1), "
                                   f"(SELECT max({keys[0].name}) FROM {table.name}) IS NOT NULL)"),
                              {"s": sequence})
