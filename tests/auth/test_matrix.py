"""Every API operation with every role, no key and a wrong key.

The operations are read from the application's OpenAPI document, so an endpoint added
without an entry here fails `test_every_operation_is_in_the_matrix`. Each case gets fresh
resources (a draft slogan, a campaign, a board) so that a success does not change what
the next role sees.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Keys
from tests.factories import Factory

ROLES = ("admin", "editor", "approver", "operator")
ALL = frozenset(ROLES)
ADMIN = frozenset({"admin"})
EDITORS = frozenset({"admin", "editor"})
APPROVERS = frozenset({"admin", "approver"})

Prepare = Callable[[Factory, int], Awaitable[tuple[str, Any]]]


@dataclass(frozen=True)
class Case:
    allowed: frozenset[str]
    prepare: Prepare


async def _slogan(f: Factory, n: int, tail: str = "", body: Any = None) -> tuple[str, Any]:
    slogan = await f.draft(f"Khẩu hiệu kiểm tra {n}")
    return f"/api/v1/slogans/{slogan['id']}{tail}", body


async def _approve(f: Factory, n: int) -> tuple[str, Any]:
    slogan = await f.draft(f"Khẩu hiệu kiểm tra {n}")
    return f"/api/v1/slogans/{slogan['id']}/approve", {"content_hash": slogan["content_hash"]}


async def _campaign(f: Factory, n: int, tail: str = "", body: Any = None) -> tuple[str, Any]:
    campaign = await f.campaign(name=f"Đợt {n}", paused=tail == "/resume")
    return f"/api/v1/campaigns/{campaign['id']}{tail}", body


async def _board(f: Factory, n: int, tail: str = "", body: Any = None) -> tuple[str, Any]:
    board = await f.board(f"bang-{n}")
    return f"/api/v1/boards/{board['id']}{tail}", body


async def _revoke(f: Factory, n: int) -> tuple[str, Any]:
    made = await f.key("operator", f"Khoá sẽ thu hồi {n}")
    return f"/api/v1/keys/{made['id']}/revoke", None


async def _report(f: Factory, n: int) -> tuple[str, Any]:
    campaign = await f.campaign(name=f"Đợt {n}")
    return f"/api/v1/reports/campaigns/{campaign['id']}", None


async def _stop_holding(f: Factory, n: int) -> tuple[str, Any]:
    """An emergency stop that holds, to lift (started anew, or the one already holding)."""
    started = await f.client.post("/api/v1/emergency-stop", json={"reason": f"Dừng {n}"}, headers=f.keys.auth("admin"))
    assert started.status_code in (200, 201), started.text
    return "/api/v1/emergency-stop", None


async def _fixed(url: str, body: Any = None) -> tuple[str, Any]:
    return url, body


MATRIX: dict[tuple[str, str], Case] = {
    ("GET", "/api/v1/slogans"): Case(ALL, lambda f, n: _fixed("/api/v1/slogans")),
    ("POST", "/api/v1/slogans"): Case(EDITORS, lambda f, n: _fixed("/api/v1/slogans", {"text": f"Mới {n}"})),
    ("GET", "/api/v1/slogans/{slogan_id}"): Case(ALL, lambda f, n: _slogan(f, n)),
    ("PATCH", "/api/v1/slogans/{slogan_id}"): Case(EDITORS, lambda f, n: _slogan(f, n, "", {"tags": ["x"]})),
    ("POST", "/api/v1/slogans/{slogan_id}/approve"): Case(APPROVERS, lambda f, n: _approve(f, n)),
    ("POST", "/api/v1/slogans/{slogan_id}/retire"): Case(
        APPROVERS, lambda f, n: _slogan(f, n, "/retire", {"reason": "kiểm tra"})),
    ("GET", "/api/v1/campaigns"): Case(ALL, lambda f, n: _fixed("/api/v1/campaigns")),
    ("POST", "/api/v1/campaigns"): Case(EDITORS, lambda f, n: f.campaign_body_at(f"Đợt mới {n}")),
    ("GET", "/api/v1/campaigns/{campaign_id}"): Case(ALL, lambda f, n: _campaign(f, n)),
    ("PATCH", "/api/v1/campaigns/{campaign_id}"): Case(EDITORS, lambda f, n: _campaign(f, n, "", {"priority": 5})),
    ("DELETE", "/api/v1/campaigns/{campaign_id}"): Case(EDITORS, lambda f, n: _campaign(f, n)),
    ("POST", "/api/v1/campaigns/{campaign_id}/pause"): Case(EDITORS, lambda f, n: _campaign(f, n, "/pause")),
    ("POST", "/api/v1/campaigns/{campaign_id}/resume"): Case(EDITORS, lambda f, n: _campaign(f, n, "/resume")),
    ("GET", "/api/v1/boards"): Case(ALL, lambda f, n: _fixed("/api/v1/boards")),
    ("POST", "/api/v1/boards"): Case(ADMIN, lambda f, n: _fixed("/api/v1/boards", {
        "id": f"moi-{n}", "name": "Bảng mới", "delivery": "poll"})),
    ("POST", "/api/v1/boards/import"): Case(ADMIN, lambda f, n: _fixed("/api/v1/boards/import", {
        "boards": [{"id": f"nhap-{n}", "name": "Bảng nhập", "delivery": "poll"}]})),
    ("GET", "/api/v1/boards/{board_id}"): Case(ALL, lambda f, n: _board(f, n)),
    ("PATCH", "/api/v1/boards/{board_id}"): Case(ADMIN, lambda f, n: _board(f, n, "", {"name": "Đổi tên"})),
    ("DELETE", "/api/v1/boards/{board_id}"): Case(ADMIN, lambda f, n: _board(f, n)),
    ("POST", "/api/v1/boards/{board_id}/credentials"): Case(ADMIN, lambda f, n: _board(f, n, "/credentials")),
    ("GET", "/api/v1/boards/{board_id}/current"): Case(ALL, lambda f, n: _board(f, n, "/current")),
    ("GET", "/api/v1/boards/{board_id}/schedule"): Case(ALL, lambda f, n: _board(
        f, n, "/schedule?from=2024-05-07T00:00:00Z&to=2024-05-07T01:00:00Z")),
    ("GET", "/api/v1/emergency-stop"): Case(ALL, lambda f, n: _fixed("/api/v1/emergency-stop")),
    ("POST", "/api/v1/emergency-stop"): Case(APPROVERS, lambda f, n: _fixed("/api/v1/emergency-stop",
                                                                            {"reason": f"Dừng {n}"})),
    ("DELETE", "/api/v1/emergency-stop"): Case(APPROVERS, _stop_holding),
    ("GET", "/api/v1/rotations"): Case(ALL, lambda f, n: _fixed("/api/v1/rotations")),
    ("GET", "/api/v1/reports/airtime"): Case(ALL, lambda f, n: _fixed("/api/v1/reports/airtime?by=day")),
    ("GET", "/api/v1/reports/campaigns/{campaign_id}"): Case(ALL, _report),
    ("GET", "/api/v1/audit"): Case(ADMIN, lambda f, n: _fixed("/api/v1/audit")),
    ("GET", "/api/v1/keys"): Case(ADMIN, lambda f, n: _fixed("/api/v1/keys")),
    ("POST", "/api/v1/keys"): Case(ADMIN, lambda f, n: _fixed("/api/v1/keys", {"name": f"Khoá {n}",
                                                                                "role": "operator"})),
    ("POST", "/api/v1/keys/{key_id}/revoke"): Case(ADMIN, lambda f, n: _revoke(f, n)),
}


def api_operations(app: FastAPI) -> set[tuple[str, str]]:
    """Every API operation the OpenAPI document advertises."""
    return {(method.upper(), path) for path, operations in app.openapi()["paths"].items()
            if path.startswith("/api/") for method in operations}


def test_every_operation_is_in_the_matrix(app: FastAPI) -> None:
    assert api_operations(app) == set(MATRIX)


@pytest.mark.parametrize(("method", "path"), sorted(MATRIX))
async def test_roles(client: httpx.AsyncClient, keys: Keys, factory: Factory, method: str, path: str) -> None:
    case = MATRIX[(method, path)]
    for n, who in enumerate((*ROLES, None, "wrong")):
        url, body = await case.prepare(factory, n)
        if who is None:
            headers: dict[str, str] = {}
        elif who == "wrong":
            headers = {"Authorization": "Bearer dk_this-key-does-not-exist"}
        else:
            headers = keys.auth(who)
        response = await client.request(method, url, json=body, headers=headers)
        if who in (None, "wrong"):
            expected = {401}
        elif who in case.allowed:
            expected = {200, 201, 204}
        else:
            expected = {403}
        assert response.status_code in expected, (who, method, url, response.text)
        if response.status_code >= 400:
            assert set(response.json()) == {"error", "detail"}


async def test_malformed_authorization_is_401(client: httpx.AsyncClient, keys: Keys) -> None:
    for header in ["Basic abc", "Bearer", "Bearer   ", keys.admin]:
        response = await client.get("/api/v1/slogans", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.headers["www-authenticate"] == "Bearer"


async def test_board_tokens_open_only_their_own_current(client: httpx.AsyncClient, factory: Factory) -> None:
    mine = await factory.board("bang-cua-toi")
    other = await factory.board("bang-khac")
    own = {"Authorization": f"Bearer {mine['token']}"}
    assert (await client.get("/api/v1/boards/bang-cua-toi/current", headers=own)).status_code == 200
    assert (await client.get("/api/v1/boards/bang-khac/current", headers=own)).status_code == 404
    assert (await client.get(f"/api/v1/boards/{other['id']}/current", headers={
        "Authorization": "Bearer bt_not-a-token"})).status_code == 401
    for method, path in sorted(MATRIX):
        if path.endswith("/current"):
            continue
        url = path.format(slogan_id=1, campaign_id=1, board_id="bang-cua-toi", key_id=1)
        response = await client.request(method, url, headers=own)
        assert response.status_code == 401, (method, url)
