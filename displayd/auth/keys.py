"""API keys: made here, shown once, stored as SHA-256; listed and revoked; and the process's
cache of them.

A key carries 256 random bits, so a plain SHA-256 is as safe as a slow password hash and
lets every request find its key with one indexed lookup.

    row, key = await create_key(session, actor=who, role="operator", name="Thanh tra", now=now)
    await revoke_key(session, row.id, actor=who, now=now)   # bumps the change version
    principal = await state.key_cache.principal(hash_secret(key))

`KeyCache` keeps the principal of each key seen, by the key's hash (never the key), so a
staff poll costs a dict lookup. It is emptied whenever the change version moves
(`Live.refresh`), and a revocation moves it: a revoked key stops working on every process
within `change_poll_seconds`. It also notes when each key was used and writes that to
`api_key.last_used_at` in batches, at most once a minute per key.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from displayd import changes
from displayd.auth import audit, sessions
from displayd.auth.roles import Principal, Role
from displayd.catalog.text import normalise_text
from displayd.db import repository
from displayd.db.models import ApiKey
from displayd.errors import Conflict, InvalidInput, ResourceNotFound
from displayd.protocol import KEY_PREFIX
from displayd.schemas import DB_INT_MAX

LAST_USED_EVERY = timedelta(minutes=1)  # `last_used_at` is a day-to-day fact, not an access log
FLUSH_EVERY = 10.0  # seconds between writes of the noted uses

log = logging.getLogger("displayd.auth")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def principal_of(row: ApiKey) -> Principal:
    return Principal(name=row.name, role=row.role, key_id=row.id)


def described(row: ApiKey) -> dict[str, Any]:
    """The key as the audit log keeps it (never the key or its hash)."""
    return {"name": row.name, "role": row.role, "prefix": row.prefix,
            "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None}


async def create_key(
    session: AsyncSession, *, actor: Principal, role: str, name: str, now: datetime
) -> tuple[ApiKey, str]:
    """A new key row and the key itself, which exists nowhere else afterwards."""
    try:
        role = Role(role).value
    except ValueError:
        raise InvalidInput(f"role must be one of {', '.join(r.value for r in Role)}") from None
    # The name is the person (four-eyes, the audit log): one stored form, as for slogan text.
    name = normalise_text(name, field="name", max_length=100)
    key = new_secret(KEY_PREFIX)
    row = ApiKey(name=name, role=role, key_hash=hash_secret(key), prefix=key[:10], created_at=now)
    session.add(row)
    await session.flush()
    audit.record(
        session, actor=actor, action="key.create", entity_type="api_key", entity_id=row.id,
        after={"name": name, "role": role, "prefix": row.prefix}, now=now,
    )
    return row, key


async def list_keys(session: AsyncSession, *, limit: int, after_id: int | None = None) -> list[ApiKey]:
    """Every key, revoked ones too (by id)."""
    return await repository.keyset(session, ApiKey, limit=limit, after=after_id)


async def revoke_key(session: AsyncSession, key_id: int, *, actor: Principal, now: datetime) -> ApiKey:
    """Revoke a key and end the dashboard sessions opened with it.

    The change version moves with it, so every process empties its key cache: the key stops
    working everywhere within `change_poll_seconds` (at once on this process).
    """
    if not 0 < key_id <= DB_INT_MAX:  # no such row; PostgreSQL would refuse the number itself
        raise ResourceNotFound("key", key_id)
    row = await repository.get_by_id(session, ApiKey, key_id, for_update=True, kind="key")
    if row.revoked_at is not None:
        raise Conflict(f"key {row.id} was already revoked at {row.revoked_at.isoformat()}")
    before = described(row)
    row.revoked_at = now
    ended = await sessions.end_sessions_of_key(session, row.id, now=now)
    audit.record(session, actor=actor, action="key.revoke", entity_type="api_key", entity_id=row.id,
                 before=before, after=described(row), now=now,
                 detail=f"{ended} dashboard session(s) ended" if ended else None)
    await changes.touch(session)
    log.info("key %d revoked by %s", row.id, actor.name, extra={
        "event": "key_revoked", "key_id": row.id, "actor": actor.name, "sessions_ended": ended})
    return row


async def principal_for_hash(session: AsyncSession, key_hash: str) -> Principal | None:
    """Who the key with this hash is, unless it was revoked."""
    row = await session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None)))
    return None if row is None else principal_of(row)


class KeyCache:
    """Principals of the keys this process has seen, by hash; and when each was last used."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Callable[[], datetime]) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self._principals: dict[str, Principal] = {}
        self._noted: dict[int, datetime] = {}   # when each key's use was last queued
        self._pending: dict[int, datetime] = {}  # uses not yet written

    async def principal(self, key_hash: str) -> Principal | None:
        """A known key costs a dict lookup; an unknown one a query each time."""
        # Put what the query finds into the dict this lookup started with: if a change emptied
        # the cache meanwhile (a revocation), the answer lands in the discarded dict, never in
        # the new one, so a key revoked during the query is not cached as good.
        cache = self._principals
        principal = cache.get(key_hash)
        if principal is None:
            async with self.sessionmaker() as session:
                principal = await principal_for_hash(session, key_hash)
            if principal is None:
                return None
            cache[key_hash] = principal
        self._note_use(principal)
        return principal

    def clear(self) -> None:
        """Forget every key (the change version moved: one may have been revoked)."""
        self._principals = {}

    def _note_use(self, principal: Principal) -> None:
        if principal.key_id is None:
            return
        now = self.clock()
        noted = self._noted.get(principal.key_id)
        if noted is None or now - noted >= LAST_USED_EVERY:
            self._noted[principal.key_id] = now
            self._pending[principal.key_id] = now

    async def flush(self) -> None:
        """Write the noted uses: one statement for all of them, never moving a time backwards
        (another process may have written a later one)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        table = cast(Table, ApiKey.__table__)
        statement = (update(table)
                     .where(table.c.id == bindparam("key_id"))
                     .where(or_(table.c.last_used_at.is_(None), table.c.last_used_at < bindparam("used_at")))
                     .values(last_used_at=bindparam("used_at")))
        try:
            async with self.sessionmaker() as session, session.begin():
                connection = await session.connection()
                await connection.execute(statement, [{"key_id": k, "used_at": t} for k, t in pending.items()])
        except Exception as exc:
            # Put them back (a later use of the same key wins): the next flush tries again.
            for key_id, at in pending.items():
                self._pending.setdefault(key_id, at)
            log.warning("could not record when keys were last used: %s", exc)

    async def run(self, every: float = FLUSH_EVERY) -> None:
        while True:
            await asyncio.sleep(every)
            await self.flush()
