"""Reading the rotation log: filtered pages, whole-log streams for CSV, airtime totals.

Rows are listed in id order, the order the leader recorded them. New rows always get
higher ids, so a reader paging with `after_id` neither skips nor repeats a row while the
log grows under it (a row's id never changes; only its outcome columns do).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from displayd import rotation
from displayd.db.models import Board, Rotation, Slogan
from displayd.logbook.schemas import AirtimeRow
from displayd.protocol import POLLED

STREAM_BATCH = 5000


@dataclass(frozen=True, slots=True)
class RotationFilter:
    board_id: str | None = None
    campaign_id: int | None = None
    slogan_id: int | None = None
    status: str | None = None
    starts_from: datetime | None = None    # slots starting at or after
    starts_before: datetime | None = None  # slots starting before

    def apply(self, query: Select[Any]) -> Select[Any]:
        if self.board_id is not None:
            query = query.where(Rotation.board_id == self.board_id)
        if self.campaign_id is not None:
            query = query.where(Rotation.campaign_id == self.campaign_id)
        if self.slogan_id is not None:
            query = query.where(Rotation.slogan_id == self.slogan_id)
        if self.status is not None:
            query = query.where(Rotation.push_status == self.status)
        if self.starts_from is not None:
            query = query.where(Rotation.starts_at >= self.starts_from)
        if self.starts_before is not None:
            query = query.where(Rotation.starts_at < self.starts_before)
        return query


async def page(session: AsyncSession, where: RotationFilter, *, limit: int, after_id: int | None) -> list[Rotation]:
    query = where.apply(select(Rotation)).order_by(Rotation.id).limit(limit)
    if after_id is not None:
        query = query.where(Rotation.id > after_id)
    return list(await session.scalars(query))


async def stream(session: AsyncSession, where: RotationFilter) -> AsyncIterator[list[Rotation]]:
    """Every matching row, in batches, each batch its own short query (keyset by id)."""
    after_id: int | None = None
    while True:
        batch = await page(session, where, limit=STREAM_BATCH, after_id=after_id)
        if not batch:
            return
        yield batch
        after_id = batch[-1].id


def _seconds(dialect: str) -> Any:
    if dialect == "postgresql":
        return func.extract("epoch", Rotation.ends_at - Rotation.starts_at)
    # julianday is a float of days: 30 s comes back as 30.000000xxx. Rounded per row to the
    # millisecond, SQLite sums the same seconds as PostgreSQL (a copied database reports alike).
    return func.round((func.julianday(Rotation.ends_at) - func.julianday(Rotation.starts_at)) * 86400.0, 3)


def _hour(dialect: str) -> Any:
    if dialect == "postgresql":
        return func.date_trunc("hour", Rotation.starts_at)
    return func.strftime("%Y-%m-%d %H:00:00", Rotation.starts_at)


def _as_utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass
class _Totals:
    slots: int = 0
    seconds: float = 0.0
    missed: int = 0
    for_push: int = 0
    delivered: int = 0
    for_poll: int = 0
    polled: int = 0

    def add(self, row: Any) -> None:
        self.slots += int(row.slots or 0)
        self.seconds += float(row.seconds or 0)
        self.missed += int(row.missed or 0)
        self.for_push += int(row.for_push or 0)
        self.delivered += int(row.delivered or 0)
        self.for_poll += int(row.for_poll or 0)
        self.polled += int(row.polled or 0)


def _measures(dialect: str) -> list[Any]:
    """The sums `_Totals` reads, over the rows of a group (joined to their board)."""
    given = Rotation.push_status != "missed"
    return [
        func.sum(case((given, 1), else_=0)).label("slots"),
        func.sum(case((given, _seconds(dialect)), else_=0)).label("seconds"),
        func.sum(case((Rotation.push_status == "missed", 1), else_=0)).label("missed"),
        func.sum(case((Rotation.push_status != "not_pushed", 1), else_=0)).label("for_push"),
        func.sum(case((Rotation.push_status == "delivered", 1), else_=0)).label("delivered"),
        func.sum(case((Board.delivery.in_(POLLED), 1), else_=0)).label("for_poll"),
        func.sum(case((Rotation.first_polled_at.is_not(None), 1), else_=0)).label("polled"),
    ]


async def airtime(session: AsyncSession, where: RotationFilter, *, by: str, timezone: str) -> list[AirtimeRow]:
    """Totals per slogan, board or local day (days by the hour a slot starts in, in `timezone`)."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    group = {"slogan": Rotation.slogan_id, "board": Rotation.board_id, "day": _hour(dialect)}[by]
    query = (
        select(group.label("group"), *_measures(dialect))
        .select_from(Rotation)
        .join(Board, Board.id == Rotation.board_id, isouter=True)
        .group_by(group)
    )
    totals: dict[str, _Totals] = defaultdict(_Totals)
    local = rotation.zone(timezone)
    for row in await session.execute(where.apply(query)):
        if by == "day":
            key = _as_utc(row.group).astimezone(local).date().isoformat()
        else:
            key = str(row.group)
        totals[key].add(row)
    labels = await _labels(session, by, list(totals))
    return [
        AirtimeRow(key=key, label=labels.get(key, key), slots=t.slots, seconds=round(t.seconds, 3), missed=t.missed,
                   delivered_ratio=round(t.delivered / t.for_push, 4) if t.for_push else None,
                   polled_ratio=round(t.polled / t.for_poll, 4) if t.for_poll else None)
        for key, t in sorted(totals.items(), key=lambda item: _order(by, item[0]))
    ]


def _order(by: str, key: str) -> tuple[int, str]:
    return (int(key), "") if by == "slogan" else (0, key)


async def _labels(session: AsyncSession, by: str, keys: list[str]) -> dict[str, str]:
    if by == "slogan" and keys:
        rows = await session.execute(select(Slogan.id, Slogan.text).where(Slogan.id.in_([int(k) for k in keys])))
        return {str(r.id): r.text for r in rows}
    if by == "board" and keys:
        rows = await session.execute(select(Board.id, Board.name).where(Board.id.in_(keys)))
        return {r.id: r.name for r in rows}
    return {}


@dataclass(frozen=True, slots=True)
class Summary:
    """The airtime figures over everything a filter matches, and the time missed."""

    slots: int
    seconds: float
    missed: int
    missed_seconds: float  # the durations of the slots that passed while displayd was down
    delivered_ratio: float | None
    polled_ratio: float | None


async def summary(session: AsyncSession, where: RotationFilter) -> Summary:
    """`airtime`'s figures in one row for the whole filter (ratios of the sums, not of the groups)."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    missed_seconds = func.sum(case((Rotation.push_status == "missed", _seconds(dialect)), else_=0))
    query = (select(*_measures(dialect), missed_seconds.label("missed_seconds"))
             .select_from(Rotation).join(Board, Board.id == Rotation.board_id, isouter=True))
    row = (await session.execute(where.apply(query))).one()
    t = _Totals()
    t.add(row)
    return Summary(slots=t.slots, seconds=round(t.seconds, 3), missed=t.missed,
                   missed_seconds=round(float(row.missed_seconds or 0), 3),
                   delivered_ratio=round(t.delivered / t.for_push, 4) if t.for_push else None,
                   polled_ratio=round(t.polled / t.for_poll, 4) if t.for_poll else None)
