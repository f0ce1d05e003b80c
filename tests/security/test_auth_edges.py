"""Authorisation edges for every operation in the OpenAPI document (tests/auth/test_matrix.py
covers roles, no key and a wrong key): malformed `Authorization` headers, another board's
token, and dashboard session cookies that are forged, expired, or valid but used to write.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from displayd.auth import sessions
from displayd.auth.keys import hash_secret
from displayd.config import Settings
from displayd.keyring import master_key
from tests.conftest import FakeClock, Keys
from tests.factories import Factory
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
    ids = {"slogan_id": slogan["id"], "campaign_id": campaign["id"], "board_id": board["id"]}
    return [(method, path.format(**ids)) for method, path in api_operations(app)]


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


def _cookie(settings: Settings, key: str, clock: FakeClock, **shift: float) -> str:
    return sessions.issue(master_key(settings), hash_secret(key), clock.now + timedelta(**shift))


@pytest.mark.parametrize("kind", ["forged", "expired", "tampered", "unknown key", "garbage"])
async def test_bad_session_cookie(app: FastAPI, client: httpx.AsyncClient, keys: Keys, factory: Factory,
                                  settings: Settings, clock: FakeClock, kind: str) -> None:
    valid = _cookie(settings, keys.admin, clock)
    payload, _, signature = valid.partition(".")
    cookie = {
        "forged": sessions.issue(b"not-the-master-key-0123456789abcdef", hash_secret(keys.admin), clock.now),
        "expired": _cookie(settings, keys.admin, clock, hours=-12, seconds=-1),
        "tampered": payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + signature,
        "unknown key": _cookie(settings, "dk_no-such-key", clock),
        "garbage": "%%%.%%%",
    }[kind]
    client.cookies.set(sessions.COOKIE, cookie)
    try:
        for method, url in await _urls(app, factory):
            response = await client.request(method, url)
            _assert_401(response, f"{kind}: {method} {url}")
    finally:
        client.cookies.clear()


async def test_a_valid_cookie_never_opens_a_write(app: FastAPI, client: httpx.AsyncClient, keys: Keys,
                                                  factory: Factory, settings: Settings, clock: FakeClock) -> None:
    urls = await _urls(app, factory)
    client.cookies.set(sessions.COOKIE, _cookie(settings, keys.admin, clock))
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
