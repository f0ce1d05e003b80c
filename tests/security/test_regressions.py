"""Inputs that made displayd answer 500 (an unhandled exception), each now a 4xx.

Found by the security tests; each case names the fix. On PostgreSQL the id columns are
32-bit and text refuses NUL bytes, so a number or a string that SQLite quietly took became
a database error there; on SQLite a number over 64 bits overflowed the driver.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from tests.conftest import Keys


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps({"id": value}).encode()).decode().rstrip("=")


BIG = 2**63
BODY_START = {"name": "Đợt", "starts_at": "2024-05-01T00:00:00Z", "ends_at": "2024-06-01T00:00:00Z",
              "targets": {"all": True}}

CASES: list[tuple[str, str, Any, set[int]]] = [
    # catalog/service.get, campaigns/service.get: ids no row can have are simply not found
    ("GET", f"/api/v1/slogans/{BIG}", None, {404}),
    ("GET", f"/api/v1/slogans/{2**31}", None, {404}),
    ("GET", "/api/v1/slogans/-1", None, {404}),
    ("POST", f"/api/v1/slogans/{BIG}/approve", {"content_hash": "sha256:" + "0" * 64}, {404}),
    ("GET", f"/api/v1/campaigns/{BIG}", None, {404}),
    ("DELETE", f"/api/v1/campaigns/{2**31}", None, {404}),
    ("GET", f"/api/v1/reports/airtime?campaign_id={BIG}", None, {422}),
    # logbook/endpoints: filters bounded like the columns they compare with
    ("GET", f"/api/v1/rotations?campaign_id={BIG}", None, {422}),
    ("GET", f"/api/v1/rotations?slogan_id={2**31}", None, {422}),
    ("GET", "/api/v1/rotations?board_id=a%00b", None, {422}),
    # boards/service.get: a board id that is not a slug names no board
    ("GET", "/api/v1/boards/%00", None, {404}),
    ("PATCH", "/api/v1/boards/a%00b", {"name": "x"}, {404}),
    ("DELETE", "/api/v1/boards/a%00b", None, {404}),
    # http.decode_cursor: values must have the type and range of the key they stand for
    ("GET", f"/api/v1/slogans?cursor={_cursor('abc')}", None, {422}),
    ("GET", f"/api/v1/slogans?cursor={_cursor(10**21)}", None, {422}),
    ("GET", f"/api/v1/campaigns?cursor={_cursor(2**31)}", None, {422}),
    ("GET", f"/api/v1/boards?cursor={_cursor(1)}", None, {422}),
    ("GET", f"/api/v1/boards?cursor={_cursor('a' + chr(0))}", None, {422}),
    ("GET", f"/api/v1/rotations?cursor={_cursor(True)}", None, {422}),
    ("GET", f"/api/v1/audit?cursor={_cursor('x')}", None, {422}),
    # campaigns/schemas.PlaylistItem: slogan ids bounded
    ("POST", "/api/v1/campaigns", {**BODY_START, "playlist": [{"slogan_id": BIG}]}, {422}),
    # schemas._to_utc: an instant that leaves datetime's range once moved to UTC
    ("POST", "/api/v1/campaigns", {**BODY_START, "starts_at": "0001-01-01T00:00:00+01:00"}, {422}),
    ("POST", "/api/v1/campaigns", {**BODY_START, "ends_at": "9999-12-31T23:59:59-01:00"}, {422}),
    ("GET", "/api/v1/rotations?from=0001-01-01T00:00:00%2B05:00", None, {422}),
    # schemas.UTCDatetime: a number is not an ISO 8601 instant (pydantic read it as a Unix time)
    ("POST", "/api/v1/campaigns", {**BODY_START, "starts_at": 12345}, {422}),
    # campaigns/schemas: a time zone is an IANA name (a NUL byte in it was a PostgreSQL error)
    ("POST", "/api/v1/campaigns", {**BODY_START, "timezone": "Asia/Ho_\u0000Chi_Minh"}, {422}),
    ("POST", "/api/v1/campaigns", {**BODY_START, "timezone": "../../etc/passwd"}, {422}),
    # boards/service._check_delivery: hosts the IDNA codec refuses, control characters in the URL
    ("POST", "/api/v1/boards", {"id": "b1", "name": "x", "endpoint_url": "http://" + "a" * 70 + "/"}, {422}),
    ("POST", "/api/v1/boards", {"id": "b2", "name": "x", "endpoint_url": "http://a..b/"}, {422}),
    ("POST", "/api/v1/boards", {"id": "b3", "name": "x", "endpoint_url": "http://127.0.0.1/a\u0000b"}, {422}),
    ("POST", "/api/v1/boards", {"id": "b4", "name": "x", "endpoint_url": "http://127.0.0.1/\u202eb"}, {422}),
]


@pytest.mark.parametrize(("method", "url", "body", "expected"), CASES)
async def test_no_server_error(client: httpx.AsyncClient, keys: Keys, no_dns: list[str], method: str, url: str,
                               body: Any, expected: set[int]) -> None:
    response = await client.request(method, url, json=body, headers=keys.auth("admin"))
    assert response.status_code in expected, response.text
    assert set(response.json()) == {"error", "detail"}


@pytest.mark.parametrize("body", [b"\xff\xfe{", b'{"text": "\xc3"}'])
async def test_body_that_is_not_utf8_is_invalid_json(client: httpx.AsyncClient, keys: Keys, body: bytes) -> None:
    """http.on_http: FastAPI's undocumented 400 for an undecodable body becomes the 422 of bad JSON."""
    response = await client.post("/api/v1/slogans", content=body,
                                 headers={**keys.auth("editor"), "Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json() == {"error": "invalid_json", "detail": "the request body is not valid JSON"}


async def test_audit_filter_with_nul(client: httpx.AsyncClient, keys: Keys) -> None:
    """auth/endpoints: a NUL byte in a filter is refused, not passed to PostgreSQL."""
    try:
        response = await client.get("/api/v1/audit?entity_id=a%00b", headers=keys.auth("admin"))
    except Exception as exc:  # the ASGI transport re-raises the app's exception
        pytest.fail(f"server error: {exc!r}")
    assert response.status_code == 422


async def test_search_text_is_not_a_like_pattern(client: httpx.AsyncClient, keys: Keys) -> None:
    """catalog/service.list_slogans: `%`, `_` and a trailing `\\` are searched for literally."""
    texts = ["Tăng 100% chỉ tiêu", "Khẩu hiệu thường", 'Dấu " OR 1=1 -- \\']
    for text in texts:
        assert (await client.post("/api/v1/slogans", json={"text": text}, headers=keys.auth("editor"))).is_success
    for q, expected in [("%", [texts[0]]), ("_", []), ("\\", [texts[2]]), ("1=1 -- \\", [texts[2]])]:
        found = await client.get("/api/v1/slogans", params={"q": q}, headers=keys.auth("operator"))
        assert [s["text"] for s in found.json()["items"]] == expected, q
