"""FastAPI dependencies shared by the endpoint modules: the session, the clock, who is asking.

    async def create(body: SloganCreate, session: SessionDep,
                     who: Annotated[Principal, Authorize(Permission.SLOGAN_WRITE)]) -> SloganOut

The request owns the transaction: `SessionDep` begins it, and commits it before the
response is sent (rolls it back if the endpoint raised); when the services touched what
boards see (`changes.touch`), the process's in-memory snapshot is rebuilt right after commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from displayd import changes
from displayd.auth import sessions
from displayd.auth.keys import cached_principal, hash_secret
from displayd.auth.roles import Permission, Principal
from displayd.errors import NotPermitted, Unauthenticated
from displayd.keyring import master_key


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await commit_now(request, session)


async def commit_now(request: Request, session: AsyncSession) -> None:
    """Commit the request's work (and refresh the snapshot if boards can see it) before
    the endpoint renders its answer from the snapshot; `SessionDep` otherwise does it."""
    await session.commit()
    if changes.changed(session):
        session.info.pop("changed")
        await request.app.state.on_change()


SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]


def _now(request: Request) -> datetime:
    clock: Callable[[], datetime] = request.app.state.clock
    return clock()


Now = Annotated[datetime, Depends(_now)]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def staff_principal(request: Request) -> Principal:
    """The staff key in `Authorization: Bearer` (or, for reads, the dashboard's session
    cookie), from the process's cache (keyed by the key's hash, never the key) or the
    database."""
    token = bearer_token(request)
    if token is not None:
        token_hash = hash_secret(token)
    elif request.method in ("GET", "HEAD") and (cookie := request.cookies.get(sessions.COOKIE)):
        found = sessions.verify(master_key(request.app.state.settings), cookie, request.app.state.clock())
        if found is None:
            raise Unauthenticated("the session has expired; sign in again")
        token_hash = found
    else:
        raise Unauthenticated("an API key is required (Authorization: Bearer <key>)")
    principal = await principal_by_hash(request, token_hash)
    if principal is None:
        raise Unauthenticated("the API key is not valid")
    return principal


async def principal_by_hash(request: Request, token_hash: str) -> Principal | None:
    return await cached_principal(request.app.state, token_hash)


def Authorize(permission: Permission) -> Any:  # noqa: N802 - reads like a type in signatures
    async def check(principal: Annotated[Principal, Depends(staff_principal)]) -> Principal:
        if not principal.may(permission):
            raise NotPermitted(f"the {principal.role} role may not do this ({permission.value})")
        return principal

    return Depends(check)


Reader = Annotated[Principal, Authorize(Permission.READ)]
