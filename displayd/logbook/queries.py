"""Reading the rotation log: filtered pages, whole-log streams for CSV, airtime totals (from
the detail and, for days whose detail is purged, from `daily_total`).

Rows are listed in id order, the order the leader recorded them. New rows always get
higher ids, so a reader paging with `after_id` neither skips nor repeats a row while the
log grows under it (a row's id never changes; only its outcome columns do).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, ColumnElement, Integer, Select, and_, case, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from displayd.db.models import Board, Campaign, DailyTotal, Rotation, SchedulerState, Slogan
from displayd.logbook import store
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


@dataclass
class Names:
    """Board names, campaign names and slogan texts of the rows an export has seen so far,
    for the columns beside their ids. Each batch costs at most one query per kind, for the
    ids not seen before; deleted boards and campaigns keep their names (history is kept)."""

    boards: dict[str, str] = field(default_factory=dict)
    campaigns: dict[int, str] = field(default_factory=dict)
    slogans: dict[int, str] = field(default_factory=dict)

    async def learn(self, session: AsyncSession, rows: Sequence[Rotation]) -> None:
        boards = {r.board_id for r in rows} - self.boards.keys()
        if boards:
            found = await session.execute(select(Board.id, Board.name).where(Board.id.in_(sorted(boards))))
            self.boards.update({board_id: "" for board_id in boards} | {r.id: r.name for r in found})
        campaigns = {r.campaign_id for r in rows} - self.campaigns.keys()
        if campaigns:
            found = await session.execute(select(Campaign.id, Campaign.name).where(Campaign.id.in_(sorted(campaigns))))
            self.campaigns.update({campaign_id: "" for campaign_id in campaigns} | {r.id: r.name for r in found})
        slogans = {r.slogan_id for r in rows} - self.slogans.keys()
        if slogans:
            found = await session.execute(select(Slogan.id, Slogan.text).where(Slogan.id.in_(sorted(slogans))))
            self.slogans.update({slogan_id: "" for slogan_id in slogans} | {r.id: r.text for r in found})

    def of(self, row: Rotation) -> tuple[str, str, str]:
        """(board name, campaign name, slogan text) of a row whose batch was learnt."""
        return self.boards[row.board_id], self.campaigns[row.campaign_id], self.slogans[row.slogan_id]


def milliseconds(dialect: str, row: Any = Rotation) -> Any:
    """A row's duration in whole milliseconds, rounded per row: the very expression the
    `daily_total` triggers add up (migration 0006), so detail and totals agree exactly."""
    if dialect == "postgresql":
        return cast(func.round(func.extract("epoch", row.ends_at - row.starts_at) * 1000), BigInteger)
    # julianday is a float of days (30 s comes back as 30.000000xxx s): rounded to the
    # millisecond per row, SQLite sums the same seconds as PostgreSQL (a copied database
    # reports alike).
    return cast(func.round((func.julianday(row.ends_at) - func.julianday(row.starts_at)) * 86400000.0), Integer)


@dataclass
class _Totals:
    slots: int = 0
    milliseconds: int = 0
    missed: int = 0
    missed_milliseconds: int = 0
    for_push: int = 0
    delivered: int = 0
    for_poll: int = 0
    polled: int = 0

    def add(self, row: Any) -> None:
        self.slots += int(row.slots or 0)
        self.milliseconds += int(row.milliseconds or 0)
        self.missed += int(row.missed or 0)
        self.missed_milliseconds += int(row.missed_milliseconds or 0)
        self.for_push += int(row.for_push or 0)
        self.delivered += int(row.delivered or 0)
        self.for_poll += int(row.for_poll or 0)
        self.polled += int(row.polled or 0)


async def purged_before(session: AsyncSession) -> date | None:
    """The retention horizon: local days before it are read from `daily_total`."""
    return await session.scalar(select(SchedulerState.purged_before).where(SchedulerState.id == 1))


async def airtime(session: AsyncSession, where: RotationFilter, *, by: str) -> list[AirtimeRow]:
    """Totals per slogan, board or local day (the slot's start, in its campaign's time zone).

    Local days before the retention horizon (`purged_before`) come from `daily_total`, the
    others from the detailed log, so a report over any period works after a purge and gives
    the same numbers as before it. The two differ in one way, on purpose: `daily_total`
    knows days, not instants, so for the days it answers a `from`/`to` range takes whole
    days — a day counts when its local start (00:00 in its campaign's zone) lies in
    [from, to). The detail takes the instants as they are. `where.status` is not a filter
    totals can answer: it is refused.
    """
    totals = await _collect(session, where, by)
    labels = await _labels(session, by, list(totals))
    return [
        AirtimeRow(key=key, label=labels.get(key, key), slots=t.slots, seconds=t.milliseconds / 1000, missed=t.missed,
                   delivered_ratio=round(t.delivered / t.for_push, 4) if t.for_push else None,
                   polled_ratio=round(t.polled / t.for_poll, 4) if t.for_poll else None)
        for key, t in sorted(totals.items(), key=lambda item: _order(by, item[0]))
    ]


async def _collect(session: AsyncSession, where: RotationFilter, by: str) -> dict[str, _Totals]:
    if where.status is not None:
        raise ValueError("airtime totals cannot be filtered by push status")
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    horizon = await purged_before(session)
    totals: dict[str, _Totals] = defaultdict(_Totals)
    for row in await session.execute(_detail(dialect, where, by, horizon)):
        totals[_key(row.group)].add(row)
    if horizon is not None:
        query = await _from_totals(session, where, by, horizon)
        if query is not None:
            for row in await session.execute(query):
                totals[_key(row.group)].add(row)
    return totals


def _key(group: Any) -> str:
    return group.isoformat() if isinstance(group, date) else str(group)


def _detail(dialect: str, where: RotationFilter, by: str, horizon: date | None) -> Select[Any]:
    given = Rotation.push_status != "missed"
    group: Any = {"slogan": Rotation.slogan_id, "board": Rotation.board_id, "day": Rotation.local_day}[by]
    query = (
        select(
            group.label("group"),
            func.sum(case((given, 1), else_=0)).label("slots"),
            func.sum(case((given, milliseconds(dialect)), else_=0)).label("milliseconds"),
            func.sum(case((Rotation.push_status == "missed", 1), else_=0)).label("missed"),
            func.sum(case((Rotation.push_status == "missed", milliseconds(dialect)), else_=0))
            .label("missed_milliseconds"),
            func.sum(case((Rotation.push_status != "not_pushed", 1), else_=0)).label("for_push"),
            func.sum(case((Rotation.push_status == "delivered", 1), else_=0)).label("delivered"),
            func.sum(case((Board.delivery.in_(POLLED), 1), else_=0)).label("for_poll"),
            func.sum(case((Rotation.first_polled_at.is_not(None), 1), else_=0)).label("polled"),
        )
        .select_from(Rotation)
        .join(Board, Board.id == Rotation.board_id, isouter=True)
        .group_by(group)
    )
    if horizon is not None:
        query = query.where(Rotation.local_day >= horizon)
    return where.apply(query)


async def _from_totals(session: AsyncSession, where: RotationFilter, by: str, horizon: date) -> Select[Any] | None:
    group: Any = {"slogan": DailyTotal.slogan_id, "board": DailyTotal.board_id, "day": DailyTotal.day}[by]
    query = (
        select(
            group.label("group"),
            func.sum(DailyTotal.slots).label("slots"),
            func.sum(DailyTotal.milliseconds).label("milliseconds"),
            func.sum(DailyTotal.missed).label("missed"),
            func.sum(DailyTotal.missed_milliseconds).label("missed_milliseconds"),
            func.sum(DailyTotal.rows - DailyTotal.not_pushed).label("for_push"),
            func.sum(DailyTotal.delivered).label("delivered"),
            func.sum(case((Board.delivery.in_(POLLED), DailyTotal.rows), else_=0)).label("for_poll"),
            func.sum(DailyTotal.polled).label("polled"),
        )
        .select_from(DailyTotal)
        .join(Board, Board.id == DailyTotal.board_id, isouter=True)
        .where(DailyTotal.day < horizon)
        .group_by(group)
        .having(func.sum(DailyTotal.rows) > 0)  # a row moved to another slogan leaves its old key at zero
    )
    if where.board_id is not None:
        query = query.where(DailyTotal.board_id == where.board_id)
    if where.campaign_id is not None:
        query = query.where(DailyTotal.campaign_id == where.campaign_id)
    if where.slogan_id is not None:
        query = query.where(DailyTotal.slogan_id == where.slogan_id)
    if where.starts_from is None and where.starts_before is None:
        return query
    # Whole local days, each campaign's in its own zone: one range of days per zone.
    if where.campaign_id is not None:
        campaign_ids: set[int] = {where.campaign_id}
    else:
        campaign_ids = set(await session.scalars(select(DailyTotal.campaign_id).distinct()
                                                 .where(DailyTotal.day < horizon)))
    by_zone: dict[str, list[int]] = defaultdict(list)
    for campaign_id, zone in (await store.campaign_zones(session, campaign_ids)).items():
        by_zone[zone.key].append(campaign_id)
    ranges = []
    for name, ids in by_zone.items():
        zone = ZoneInfo(name)
        days: list[ColumnElement[bool]] = [DailyTotal.campaign_id.in_(sorted(ids))]
        if where.starts_from is not None:
            days.append(DailyTotal.day >= first_day_from(where.starts_from, zone))
        if where.starts_before is not None:
            days.append(DailyTotal.day < first_day_from(where.starts_before, zone))
        ranges.append(and_(*days))
    return query.where(or_(*ranges)) if ranges else None


def first_day_from(t: datetime, zone: ZoneInfo) -> date:
    """The first local day whose start (its first instant in `zone`) is at or after t."""
    day = t.astimezone(zone).date()
    return day if day_start(day, zone) >= t else day + timedelta(days=1)


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of a local day. A midnight that does not exist (clocks moved on at
    00:00) is read with the offset before the change, which is the instant of the change."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


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
    """`airtime`'s figures in one row for the whole filter (ratios of the sums, not of the
    groups), from the detail and the daily totals as `airtime` takes them."""
    t = _Totals()
    for group in (await _collect(session, where, "board")).values():
        for name, value in vars(group).items():
            setattr(t, name, getattr(t, name) + value)
    return Summary(slots=t.slots, seconds=t.milliseconds / 1000, missed=t.missed,
                   missed_seconds=t.missed_milliseconds / 1000,
                   delivered_ratio=round(t.delivered / t.for_push, 4) if t.for_push else None,
                   polled_ratio=round(t.polled / t.for_poll, 4) if t.for_poll else None)
