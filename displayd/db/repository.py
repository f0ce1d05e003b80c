"""Queries every domain needs, written once: a row by id, and keyset pages.

    slogan = await get_by_id(session, Slogan, 12, for_update=True)       # or ResourceNotFound
    campaign = await get_by_id(session, Campaign, 3, include_deleted=True)
    rows = await keyset(session, Board, limit=101, after=cursor_id)      # live rows, by id

A model with a `deleted_at` column is soft-deleted: its deleted rows are not found and not
listed unless asked for (history keeps them for the log and the audit). A missing row is
`ResourceNotFound` named after the table (`slogan 12 does not exist`). Domain services add
only their own queries on top.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from displayd.db.base import Base
from displayd.errors import ResourceNotFound

__all__ = ["get_by_id", "keyset", "live"]

M = TypeVar("M", bound=Base)


def live(model: type[M], query: Select[Any], *, include_deleted: bool = False) -> Select[Any]:
    """`query` without the model's soft-deleted rows (models without `deleted_at` have none)."""
    deleted_at = getattr(model, "deleted_at", None)
    if deleted_at is None or include_deleted:
        return query
    return query.where(deleted_at.is_(None))


async def get_by_id(session: AsyncSession, model: type[M], ident: Any, *, for_update: bool = False,
                    include_deleted: bool = False, kind: str | None = None) -> M:
    """The row with this primary key, locked if `for_update`; ResourceNotFound (named `kind`,
    by default the table's name) otherwise."""
    query = live(model, select(model).where(model.id == ident), include_deleted=include_deleted)  # type: ignore[attr-defined]
    if for_update:
        query = query.with_for_update()
    row = await session.scalar(query)
    if row is None:
        raise ResourceNotFound(kind or model.__tablename__, ident)
    return row  # type: ignore[no-any-return]


async def keyset(session: AsyncSession, model: type[M], *, limit: int, after: Any = None,
                 where: Iterable[ColumnElement[bool]] = (), include_deleted: bool = False) -> list[M]:
    """Up to `limit` rows by id after `after` (a cursor's id): pages that neither skip nor
    repeat while rows are added. Ask for `limit + 1` to learn whether another page follows."""
    column = model.id  # type: ignore[attr-defined]
    query = live(model, select(model).where(*where), include_deleted=include_deleted).order_by(column).limit(limit)
    if after is not None:
        query = query.where(column > after)
    return list(await session.scalars(query))
