"""The dashboard's sign-in: the session cookie set, read and cleared.

The cookie (`displayd.auth.sessions`) names the key by its hash, is HttpOnly and
SameSite=Strict, and only ever opens GET/HEAD: the key itself never reaches a URL, the
page, or the browser's storage.
"""

from __future__ import annotations

from fastapi import Request, Response

from displayd.auth import sessions
from displayd.auth.roles import Principal
from displayd.deps import principal_by_hash
from displayd.keyring import master_key


async def signed_in(request: Request) -> Principal | None:
    """Who the session cookie names, or None (no cookie, forged, expired, or key revoked)."""
    cookie = request.cookies.get(sessions.COOKIE)
    if not cookie:
        return None
    key_hash = sessions.verify(master_key(request.app.state.settings), cookie, request.app.state.clock())
    if key_hash is None:
        return None
    return await principal_by_hash(request, key_hash)


def set_session(request: Request, response: Response, key_hash: str) -> None:
    value = sessions.issue(master_key(request.app.state.settings), key_hash, request.app.state.clock())
    response.set_cookie(
        sessions.COOKIE, value, max_age=int(sessions.LIFETIME.total_seconds()), path="/",
        secure=request.url.scheme == "https", httponly=True, samesite="strict",
    )


def clear_session(request: Request, response: Response) -> None:
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
