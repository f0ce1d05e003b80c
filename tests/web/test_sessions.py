"""Dashboard sessions live on the server: sign-out and revocation end them everywhere, the
database keeps only a hash of the cookie, and the table stays bounded. SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from displayd.auth import sessions
from displayd.config import Settings
from displayd.db.session import create_engine
from tests.conftest import FakeClock, Keys, count_rows
from tests.factories import sign_in


async def _rows(settings: Settings) -> list[Any]:
    engine = create_engine(settings)
    async with engine.connect() as connection:
        rows = (await connection.execute(text("SELECT id, key_id, ended_at FROM ui_session"))).all()
    await engine.dispose()
    return list(rows)


def _cookie(value: str) -> dict[str, str]:
    return {"Cookie": f"{sessions.COOKIE}={value}"}


async def test_logout_ends_the_session_on_the_server(client: httpx.AsyncClient, keys: Keys,
                                                     settings: Settings) -> None:
    cookie = await sign_in(client, keys.operator)
    [row] = await _rows(settings)
    assert row.id == hashlib.sha256(cookie.encode()).hexdigest()  # only the hash is kept
    assert cookie not in str(row)
    assert (await client.get("/api/v1/boards", headers=_cookie(cookie))).status_code == 200

    out = await client.post("/ui/logout", headers=_cookie(cookie))
    assert out.status_code == 303
    assert await _rows(settings) == []
    # Replaying the old cookie: the API answers 401, pages send the person to sign in.
    replay = await client.get("/api/v1/boards", headers=_cookie(cookie))
    assert replay.status_code == 401
    assert replay.json()["error"] == "unauthorized"
    page = await client.get("/ui", headers=_cookie(cookie))
    assert page.status_code == 303 and page.headers["location"] == "/ui/login"


async def test_logout_from_another_site_ends_nothing(client: httpx.AsyncClient, keys: Keys) -> None:
    cookie = await sign_in(client, keys.operator)
    cross = await client.post("/ui/logout", headers={**_cookie(cookie), "Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 303
    assert (await client.get("/api/v1/boards", headers=_cookie(cookie))).status_code == 200


async def test_a_revoked_key_ends_its_sessions_at_once(client: httpx.AsyncClient, keys: Keys,
                                                       settings: Settings) -> None:
    listed = (await client.get("/api/v1/keys", headers=keys.auth("admin"))).json()["items"]
    [operator] = [k for k in listed if k["name"] == "Thanh tra"]
    first, second = await sign_in(client, keys.operator), await sign_in(client, keys.operator)
    other = await sign_in(client, keys.editor)
    revoked = await client.post(f"/api/v1/keys/{operator['id']}/revoke", headers=keys.auth("admin"))
    assert revoked.status_code == 200
    for cookie in (first, second):
        assert (await client.get("/api/v1/slogans", headers=_cookie(cookie))).status_code == 401
        assert (await client.get("/ui", headers=_cookie(cookie))).headers["location"] == "/ui/login"
    assert (await client.get("/api/v1/slogans", headers=_cookie(other))).status_code == 200
    ended = {row.key_id: row.ended_at for row in await _rows(settings)}
    assert ended[operator["id"]] is not None
    # Signing in again with the revoked key is refused.
    again = await client.post("/ui/login", content=f"key={keys.operator}",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert again.status_code == 401


async def test_the_table_stays_bounded(client: httpx.AsyncClient, keys: Keys, settings: Settings,
                                       clock: FakeClock) -> None:
    old = await sign_in(client, keys.admin)
    ended = await sign_in(client, keys.editor)
    await client.post("/ui/logout", headers=_cookie(ended))
    assert await count_rows(settings, "ui_session") == 1
    clock.advance(hours=12, seconds=1)
    assert (await client.get("/api/v1/boards", headers=_cookie(old))).status_code == 401
    # The next sign-in sweeps the expired session away.
    await sign_in(client, keys.operator)
    assert await count_rows(settings, "ui_session") == 1
    # One key signing in again and again keeps at most MAX_PER_KEY sessions, the newest.
    cookies = []
    for _ in range(sessions.MAX_PER_KEY + 5):
        cookies.append(await sign_in(client, keys.approver))
        clock.advance(seconds=1)
    assert await count_rows(settings, "ui_session") == sessions.MAX_PER_KEY + 1
    assert (await client.get("/api/v1/boards", headers=_cookie(cookies[0]))).status_code == 401
    assert (await client.get("/api/v1/boards", headers=_cookie(cookies[-1]))).status_code == 200
    assert (await client.get("/api/v1/boards", headers=_cookie(cookies[5]))).status_code == 200


async def test_a_session_ended_on_one_process_is_ended_on_another(app: FastAPI, client: httpx.AsyncClient,
                                                                  keys: Keys, settings: Settings,
                                                                  clock: FakeClock) -> None:
    from displayd.app import create_app

    other = create_app(settings, clock=clock)
    async with other.router.lifespan_context(other), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=other), base_url="http://displayd.test") as second:
        cookie = await sign_in(client, keys.operator)
        assert (await second.get("/api/v1/boards", headers=_cookie(cookie))).status_code == 200
        await client.post("/ui/logout", headers=_cookie(cookie))
        assert (await second.get("/api/v1/boards", headers=_cookie(cookie))).status_code == 401
