"""The dashboard's sign-in: the session cookie set, read and cleared.

The cookie carries a random session token (`displayd.auth.sessions`; the server keeps only
its hash), is HttpOnly and SameSite=Strict, and opens only GET/HEAD on the API: the key
itself never reaches a URL, the page, or the browser's storage. The dashboard's own form
posts (sign-in, sign-out, and the emergency stop's start and lift, `displayd.web.emergency`)
check `same_origin` as well. Signing out deletes the session on the server, so a copy of
the cookie is dead too.
"""

from __future__ import annotations

from fastapi import Request, Response

from displayd.auth import sessions
from displayd.auth.roles import Principal
from displayd.runtime import runtime_of


async def signed_in(request: Request) -> Principal | None:
    """Who the session cookie names, or None (no cookie, unknown, signed out, expired, or key revoked)."""
    cookie = request.cookies.get(sessions.COOKIE)
    if not cookie:
        return None
    runtime = runtime_of(request.app)
    async with runtime.sessionmaker() as session:
        return await sessions.session_principal(session, cookie, now=runtime.clock())


async def open_session(request: Request, response: Response, key_id: int) -> None:
    """A new server-side session for the key, its token set as the cookie."""
    runtime = runtime_of(request.app)
    async with runtime.sessionmaker() as session, session.begin():
        token = await sessions.open_session(session, key_id=key_id, now=runtime.clock())
    response.set_cookie(
        sessions.COOKIE, token, max_age=int(sessions.LIFETIME.total_seconds()), path="/",
        secure=request.url.scheme == "https", httponly=True, samesite="strict",
    )


async def end_session(request: Request, response: Response) -> None:
    """Sign out: the session's row is deleted (the cookie stops working everywhere) and the
    cookie cleared."""
    cookie = request.cookies.get(sessions.COOKIE)
    if cookie:
        async with runtime_of(request.app).sessionmaker() as session, session.begin():
            await sessions.end_session(session, cookie)
    response.delete_cookie(sessions.COOKIE, path="/", secure=request.url.scheme == "https",
                           httponly=True, samesite="strict")


def same_origin(request: Request) -> bool:
    """Whether a form POST comes from our own pages.

    SameSite=Strict protects the cookie, but sign-in needs no cookie: a page elsewhere could
    post its own key to sign a person in as someone else (login CSRF) and read what they do
    next. Browsers send `Sec-Fetch-Site` and `Origin` on POSTs; when either is present it
    must say "us". Clients that send neither (curl, old browsers) are not browsers being
    tricked, so they pass.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is not None:
        own = f"{request.url.scheme}://{request.url.netloc}"
        host = request.headers.get("host")
        return origin in (own, f"{request.url.scheme}://{host}" if host else own)
    return True
