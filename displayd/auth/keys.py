"""API keys: made here, shown once, stored as SHA-256.

A key carries 256 random bits, so a plain SHA-256 is as safe as a slow password hash and
lets every request find its key with one indexed lookup.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from displayd.auth import audit
from displayd.auth.roles import Principal, Role
from displayd.db.models import ApiKey
from displayd.errors import InvalidInput

KEY_PREFIX = "dk_"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


async def create_key(
    session: AsyncSession, *, actor: Principal, role: str, name: str, now: datetime
) -> tuple[ApiKey, str]:
    """A new key row and the key itself, which exists nowhere else afterwards."""
    try:
        role = Role(role).value
    except ValueError:
        raise InvalidInput(f"role must be one of {', '.join(r.value for r in Role)}") from None
    name = " ".join(name.split())
    if not name or len(name) > 100:
        raise InvalidInput("name must be 1..100 characters")
    key = new_secret(KEY_PREFIX)
    row = ApiKey(name=name, role=role, key_hash=hash_secret(key), prefix=key[:10], created_at=now)
    session.add(row)
    await session.flush()
    audit.record(
        session, actor=actor, action="key.create", entity_type="api_key", entity_id=row.id,
        after={"name": name, "role": role, "prefix": row.prefix}, now=now,
    )
    return row, key


async def principal_for_key(session: AsyncSession, key: str) -> Principal | None:
    return await principal_for_hash(session, hash_secret(key))


async def principal_for_hash(session: AsyncSession, key_hash: str) -> Principal | None:
    row = await session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None)))
    return None if row is None else Principal(name=row.name, role=row.role)


async def cached_principal(state: Any, key_hash: str) -> Principal | None:
    """`principal_for_hash` through the app's `key_cache` (`state` is the app's state): a
    known key costs a dict lookup, an unknown one a query each time."""
    cache: dict[str, Principal] = state.key_cache
    principal = cache.get(key_hash)
    if principal is None:
        async with state.sessionmaker() as session:
            principal = await principal_for_hash(session, key_hash)
        if principal is not None:
            cache[key_hash] = principal
    return principal
