"""Dashboard sessions, kept on the server: a `ui_session` row per sign-in.

    token = await open_session(session, key_id=row.id, now=now)   # the `displayd_session` cookie
    who = await session_principal(session, token, now=now)        # None: unknown, ended, expired, revoked
    await end_session(session, token)                             # sign-out: the cookie is dead everywhere

The cookie carries 256 random bits; the row keeps only their SHA-256, so a copy of the
database opens no session. Every request with the cookie reads its row (joined with the
key), so a sign-out or a revoked key ends the session on every process at once. The cookie
only opens safe (read-only) requests, so a page on another site cannot act with it (no
CSRF on writes: writes need the header).

The table stays small: each sign-in deletes the expired and ended rows, and a key keeps
at most `MAX_PER_KEY` sessions (signing in again ends the oldest).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from displayd.auth.roles import Principal
from displayd.db.models import ApiKey, UiSession

COOKIE = "displayd_session"
LIFETIME = timedelta(hours=12)
MAX_PER_KEY = 20
MAX_TOKEN_LENGTH = 100  # ours are 43 characters; anything much longer is not one of ours


def session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def open_session(session: AsyncSession, *, key_id: int, now: datetime) -> str:
    """A new session for the key; the token is returned once and kept nowhere."""
    await session.execute(delete(UiSession).where(or_(UiSession.expires_at <= now,
                                                      UiSession.ended_at.is_not(None))))
    older = select(UiSession.id).where(UiSession.key_id == key_id).order_by(
        UiSession.created_at.desc(), UiSession.id).offset(MAX_PER_KEY - 1)
    await session.execute(delete(UiSession).where(UiSession.id.in_(older.scalar_subquery())))
    token = secrets.token_urlsafe(32)
    session.add(UiSession(id=session_id(token), key_id=key_id, created_at=now, expires_at=now + LIFETIME))
    await session.flush()
    return token


async def session_principal(session: AsyncSession, token: str, *, now: datetime) -> Principal | None:
    """Who the session is, or None: no such session, signed out, expired, or its key revoked."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    row = (await session.execute(
        select(ApiKey.id, ApiKey.name, ApiKey.role)
        .join(UiSession, UiSession.key_id == ApiKey.id)
        .where(UiSession.id == session_id(token), UiSession.ended_at.is_(None), UiSession.expires_at > now,
               ApiKey.revoked_at.is_(None))
    )).first()
    return None if row is None else Principal(name=row.name, role=row.role, key_id=row.id)


async def end_session(session: AsyncSession, token: str) -> None:
    if token and len(token) <= MAX_TOKEN_LENGTH:
        await session.execute(delete(UiSession).where(UiSession.id == session_id(token)))


async def end_sessions_of_key(session: AsyncSession, key_id: int, *, now: datetime) -> int:
    """End every open session of a key (it was revoked); how many there were."""
    result = await session.execute(
        update(UiSession).where(UiSession.key_id == key_id, UiSession.ended_at.is_(None), UiSession.expires_at > now)
        .values(ended_at=now))
    return int(getattr(result, "rowcount", 0) or 0)
