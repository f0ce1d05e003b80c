"""Authorisation edges for every operation in the OpenAPI document (tests/auth/test_matrix.py
covers roles, no key and a wrong key): malformed `Authorization` headers, another board's
token, and dashboard session cookies that are unknown, tampered, expired, signed out, of a
revoked key, or valid but used to write.

These tests present bad credentials far more than 20 times a minute from one address on
purpose, so the failed sign-in hold is lifted for them (tests/auth/test_guard.py tests it).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from displayd.auth import sessions
from tests.conftest import FakeClock, Keys
from tests.factories import Factory, lift_failure_limit, sign_in
from tests.security.conftest import WRITE_METHODS, api_operations

MALFORMED: dict[str, str | bytes] = {
    "Basic credentials": "Basic YWRtaW46YWRtaW4=",
    "scheme only": "Bearer",
    "spaces only": "Bearer     ",
    "spaces inside the token": "Bearer dk_abc def ghi",
    "10 KB token": "Bearer " + "A" * 10240,
    "non-ASCII bytes": b"Bearer dk_\xff\xfe\xc3\x28",
    "UTF-8 token": "Bearer dk_khẩu-hiệu".encode(),
    "no scheme": "dk_abc",
    "Digest": 'Digest username="admin"',
}


async def _urls(app: FastAPI, factory: Factory) -> list[tuple[str, str]]:
    """Every API operation with its path parameters naming real objects."""
    slogan = await factory.draft("Khẩu hiệu kiểm tra quyền")
    campaign = await factory.campaign("Đợt kiểm tra quyền")
    board = await factory.board("bang-kiem-tra")
    key = await factory.key("operator", "Khoá kiểm tra quyền")
    ids = {"slogan_id": slogan["id"], "campaign_id": campaign["id"], "board_id": board["id"], "key_id": key["id"]}
    return [(method, path.format(**ids)) for method, path in api_operations(app)]


@pytest.fixture(autouse=True)
def _no_hold(app: FastAPI) -> None:
    lift_failure_limit(app)


def _assert_401(response: httpx.Response, what: str) -> None:
    assert response.status_code == 401, (what, response.status_code, response.text)
    assert set(response.json()) == {"error", "detail"}, what
    assert response.headers.get("www-authenticate") == "Bearer", what


@pytest.mark.parametrize("label", sorted(MALFORMED))
async def test_malformed_authorization(app: FastAPI, client: httpx.AsyncClient, factory: Factory,
                                       label: str) -> None:
    for method, url in await _urls(app, factory):
        response = await client.request(method, url, headers={"Authorization": MALFORMED[label]},
                                        json={} if method in WRITE_METHODS - {"DELETE"} else None)
        _assert_401(response, f"{label}: {method} {url}")


async def test_a_valid_key_with_junk_after_it_is_not_valid(app: FastAPI, client: httpx.AsyncClient, keys: Keys,
                                                            factory: Factory) -> None:
    for method, url in await _urls(app, factory):
        response = await client.request(method, url, headers={"Authorization": f"Bearer {keys.admin} x"})
        _assert_401(response, f"{method} {url}")


async def test_another_boards_token(app: FastAPI, client: httpx.AsyncClient, factory: Factory) -> None:
    other = await factory.board("bang-khac")
    token = {"Authorization": f"Bearer {other['token']}"}
    for method, url in await _urls(app, factory):
        response = await client.request(method, url, headers=token)
        if url.endswith("/current"):  # the board under test, not the token's own
            assert response.status_code == 404, (method, url, response.text)
            assert set(response.json()) == {"error", "detail"}
        else:
            _assert_401(response, f"{method} {url}")
    own = await client.get(f"/api/v1/boards/{other['id']}/current", headers=token)
    assert own.status_code == 200  # the token itself is good


@pytest.mark.parametrize("kind", ["unknown", "expired", "tampered", "signed out", "revoked key", "garbage",
                                  "10 KB"])
async def test_bad_session_cookie(app: FastAPI, client: httpx.AsyncClient, keys: Keys, factory: Factory,
                                  clock: FakeClock, kind: str) -> None:
    urls = await _urls(app, factory)
    valid = await sign_in(client, keys.admin)
    if kind == "expired":
        clock.advance(hours=12, seconds=1)
    elif kind == "signed out":
        client.cookies.set(sessions.COOKIE, valid)
        assert (await client.post("/ui/logout")).status_code == 303
    elif kind == "revoked key":
        own = [k for k in (await client.get("/api/v1/keys", headers=keys.auth("admin"))).json()["items"]
               if k["name"] == "Quản trị"]
        await client.post(f"/api/v1/keys/{own[0]['id']}/revoke", headers=keys.auth("admin"))
    cookie = {
        "unknown": "a" * 43,
        "expired": valid,
        "tampered": valid[:-2] + ("AA" if valid[-2:] != "AA" else "BB"),
        "signed out": valid,
        "revoked key": valid,
        "garbage": "%%%.%%%",
        "10 KB": "A" * 10240,
    }[kind]
    client.cookies.clear()
    client.cookies.set(sessions.COOKIE, cookie)
    try:
        for method, url in urls:
            response = await client.request(method, url)
            _assert_401(response, f"{kind}: {method} {url}")
    finally:
        client.cookies.clear()


async def test_a_valid_cookie_never_opens_a_write(app: FastAPI, client: httpx.AsyncClient, keys: Keys,
                                                  factory: Factory) -> None:
    urls = await _urls(app, factory)
    client.cookies.set(sessions.COOKIE, await sign_in(client, keys.admin))
    try:
        assert (await client.get("/api/v1/slogans")).status_code == 200  # the cookie is good for reading
        for method, url in urls:
            body: Any = {} if method in ("POST", "PATCH") else None
            response = await client.request(method, url, json=body)
            if method in WRITE_METHODS:
                _assert_401(response, f"{method} {url}")
            else:
                assert response.status_code < 500, (method, url)
    finally:
        client.cookies.clear()
