"""Every API endpoint with every role, no key and a wrong key.

The operations are read from the application's OpenAPI document, so an endpoint added without an entry
here fails `test_every_route_is_in_the_matrix`.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Keys

ROLES = ("admin", "editor", "approver", "operator")
ALL = set(ROLES)

# (method, path template) -> roles allowed
MATRIX: dict[tuple[str, str], set[str]] = {
    ("GET", "/api/v1/slogans"): ALL,
    ("POST", "/api/v1/slogans"): {"admin", "editor"},
    ("GET", "/api/v1/slogans/{slogan_id}"): ALL,
    ("PATCH", "/api/v1/slogans/{slogan_id}"): {"admin", "editor"},
    ("POST", "/api/v1/slogans/{slogan_id}/approve"): {"admin", "approver"},
    ("POST", "/api/v1/slogans/{slogan_id}/retire"): {"admin", "approver"},
    ("GET", "/api/v1/audit"): {"admin"},
}


def api_operations(app: FastAPI) -> set[tuple[str, str]]:
    """Every API operation the OpenAPI document advertises."""
    return {(method.upper(), path) for path, operations in app.openapi()["paths"].items()
            if path.startswith("/api/") for method in operations}


def test_every_route_is_in_the_matrix(app: FastAPI) -> None:
    assert api_operations(app) == set(MATRIX)


async def _fresh_draft(client: httpx.AsyncClient, keys: Keys, n: int) -> int:
    response = await client.post("/api/v1/slogans", json={"text": f"Khẩu hiệu kiểm tra {n}"},
                                 headers=keys.auth("editor2"))
    assert response.status_code == 201
    return int(response.json()["id"])


def _body(method: str, path: str) -> dict[str, object] | None:
    if path.endswith("/retire"):
        return {"reason": "kiểm tra"}
    if method == "POST" and path == "/api/v1/slogans":
        return {"text": "Khẩu hiệu mới"}
    if method == "PATCH":
        return {"tags": ["kiểm-tra"]}
    return None


@pytest.mark.parametrize(("method", "path"), sorted(MATRIX))
async def test_roles(client: httpx.AsyncClient, keys: Keys, method: str, path: str) -> None:
    for n, who in enumerate((*ROLES, None, "wrong")):
        slogan_id = await _fresh_draft(client, keys, n)
        url = path.format(slogan_id=slogan_id)
        if who is None:
            headers: dict[str, str] = {}
        elif who == "wrong":
            headers = {"Authorization": "Bearer dk_this-key-does-not-exist"}
        else:
            headers = keys.auth(who)
        body = _body(method, path)
        if method == "POST" and path == "/api/v1/slogans":
            body = {"text": f"Khẩu hiệu mới {n}"}
        response = await client.request(method, url, json=body, headers=headers)
        if who in (None, "wrong"):
            expected = {401}
        elif who in MATRIX[(method, path)]:
            expected = {200, 201}
        else:
            expected = {403}
        assert response.status_code in expected, (who, method, url, response.text)
        assert response.status_code < 300 or set(response.json()) == {"error", "detail"}


async def test_malformed_authorization_is_401(client: httpx.AsyncClient, keys: Keys) -> None:
    for header in ["Basic abc", "Bearer", "Bearer   ", keys.admin]:
        response = await client.get("/api/v1/slogans", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.headers["www-authenticate"] == "Bearer"
