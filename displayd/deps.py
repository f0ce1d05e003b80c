"""FastAPI dependencies shared by the endpoint modules: the session, the clock, who is asking.

    async def create(body: SloganCreate, session: SessionDep,
                     who: Annotated[Principal, Authorize(Permission.SLOGAN_WRITE)]) -> SloganOut

The request owns the transaction: `SessionDep` begins it, and commits it before the
response is sent (rolls it back if the endpoint raised); when the services touched what
boards see (`changes.touch`), the process's in-memory snapshot is rebuilt right after commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from displayd import changes
from displayd.auth import sessions
from displayd.auth.guard import Kind
from displayd.auth.keys import hash_secret
from displayd.auth.roles import Permission, Principal
from displayd.errors import NotPermitted, Unauthenticated
from displayd.protocol import BOARD_TOKEN_PREFIX, bearer_token
from displayd.runtime import RuntimeDep, runtime_of


async def _session(request: Request, runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    async with runtime.sessionmaker() as session:
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
        await runtime_of(request.app).live.refresh()


SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]


def _now(runtime: RuntimeDep) -> datetime:
    return runtime.clock()


Now = Annotated[datetime, Depends(_now)]


def client_address(request: Request) -> str:
    """The client's address as the server saw it (behind a trusted proxy: the forwarded one)."""
    return request.client.host if request.client else "unknown"


async def staff_principal(request: Request, runtime: RuntimeDep) -> Principal:
    """The staff key in `Authorization: Bearer` (or, for reads, the dashboard's session
    cookie): a key from the process's cache (keyed by the key's hash, never the key) or the
    database, a session from its row. A refused key is reported to the guard, and an
    address that failed too often is refused before its key is looked at."""
    token = bearer_token(request.headers.get("authorization"))
    if token is not None:
        address = client_address(request)
        guard = runtime.guard
        if token.startswith(BOARD_TOKEN_PREFIX):  # never a staff key; boards are never held
            principal = None
            kind = Kind.BOARD_TOKEN
        else:
            guard.check(address)
            principal = await runtime.key_cache.principal(hash_secret(token))
            kind = Kind.API_KEY
        if principal is None:
            guard.failed(kind, address)
            raise Unauthenticated("the API key is not valid")
        return principal
    if request.method in ("GET", "HEAD") and (cookie := request.cookies.get(sessions.COOKIE)):
        async with runtime.sessionmaker() as session:
            principal = await sessions.session_principal(session, cookie, now=runtime.clock())
        if principal is None:
            raise Unauthenticated("the session has ended or expired; sign in again")
        return principal
    raise Unauthenticated("an API key is required (Authorization: Bearer <key>)")


def Authorize(permission: Permission) -> Any:  # noqa: N802 - reads like a type in signatures
    async def check(principal: Annotated[Principal, Depends(staff_principal)]) -> Principal:
        if not principal.may(permission):
            raise NotPermitted(f"the {principal.role} role may not do this ({permission.value})")
        return principal

    return Depends(check)


Reader = Annotated[Principal, Authorize(Permission.READ)]
