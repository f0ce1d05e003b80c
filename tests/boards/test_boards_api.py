"""Boards through the REST API: settings, credentials, endpoint URL rules."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from displayd.config import Settings
from displayd.db.session import create_engine
from displayd.keyring import board_secret
from tests.conftest import Keys, count_rows
from tests.factories import Factory

BOARD = {"id": "so-sanh-chinh", "name": "Bảng sảnh chính", "location": "Sảnh tầng 1", "groups": ["so-tttt"],
         "delivery": "push", "endpoint_url": "http://127.0.0.1:9/show", "charset": "utf-8", "max_chars": 40,
         "lines": 2, "offset": 0}


async def create(client: httpx.AsyncClient, keys: Keys, **changes: Any) -> httpx.Response:
    return await client.post("/api/v1/boards", json={**BOARD, **changes}, headers=keys.auth("admin"))


async def _board_row(settings: Settings, board_id: str) -> Any:
    engine = create_engine(settings)
    async with engine.connect() as connection:
        row = (await connection.execute(text("SELECT * FROM board WHERE id = :id"), {"id": board_id})).one()
    await engine.dispose()
    return row


async def test_create_returns_credentials_once_and_keeps_only_hashes(
    client: httpx.AsyncClient, keys: Keys, settings: Settings
) -> None:
    response = await create(client, keys)
    assert response.status_code == 201, response.text
    board = response.json()
    assert board["token"].startswith("bt_") and board["secret"].startswith("whsec_")
    assert board["health"]["reachable"] is True and board["current"]["state"] == "idle"
    row = await _board_row(settings, "so-sanh-chinh")
    assert row.token_hash == hashlib.sha256(board["token"].encode()).hexdigest()
    assert row.secret_hash == hashlib.sha256(board["secret"].encode()).hexdigest()
    assert board["token"] not in str(tuple(row)) and board["secret"] not in str(tuple(row))
    # The secret is derived from the master key; the database alone cannot produce it.
    assert board_secret(settings.secret_key.get_secret_value().encode(), row.secret_nonce) == board["secret"]  # type: ignore[union-attr]
    read = await client.get("/api/v1/boards/so-sanh-chinh", headers=keys.auth("operator"))
    assert "token" not in read.json() and "secret" not in read.json()
    assert read.json()["groups"] == ["so-tttt"] and read.json()["location"] == "Sảnh tầng 1"


async def test_new_credentials_replace_the_old(client: httpx.AsyncClient, keys: Keys, factory: Factory) -> None:
    board = await factory.board("bang-a")
    renewed = await client.post("/api/v1/boards/bang-a/credentials", headers=keys.auth("admin"))
    assert renewed.status_code == 200
    fresh = renewed.json()
    assert fresh["token"] != board["token"] and fresh["secret"] != board["secret"]
    old = await factory.current(board)
    assert old.status_code == 401
    new = await factory.current({"id": "bang-a", "token": fresh["token"]})
    assert new.status_code == 200


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"id": "Bảng A"}, "id"),
        ({"id": "-a"}, "id"),
        ({"id": "a" * 65}, "id"),
        ({"endpoint_url": "ftp://127.0.0.1/show"}, "http"),
        ({"endpoint_url": "http://user:pw@127.0.0.1/show"}, "credentials"),
        ({"endpoint_url": "http://169.254.169.254/latest"}, "metadata"),
        ({"endpoint_url": "http://169.254.10.10/show"}, "link-local"),
        ({"endpoint_url": "http://[fe80::1]/show"}, "link-local"),
        ({"endpoint_url": "http://8.8.8.8/show"}, "outside"),
        ({"endpoint_url": "http://172.16.0.5/show"}, "outside"),
        ({"endpoint_url": "http://0.0.0.0/show"}, "not a host"),
        ({"endpoint_url": "http://no-such-host.invalid/show"}, "resolve"),
        ({"endpoint_url": None}, "endpoint_url"),
        ({"delivery": "both", "endpoint_url": None}, "endpoint_url"),
        ({"charset": "latin-1"}, "charset"),
        ({"max_chars": 0}, "max_chars"),
        ({"lines": 0}, "lines"),
        ({"offset": -1}, "offset"),
        ({"name": "\u202eevil"}, "bidirectional"),
    ],
)
async def test_invalid_boards_are_422(client: httpx.AsyncClient, keys: Keys, settings: Settings,
                                      changes: dict[str, Any], why: str) -> None:
    response = await create(client, keys, **changes)
    assert response.status_code == 422, response.text
    assert why in response.json()["detail"]
    assert await count_rows(settings, "board") == 0


async def test_poll_boards_need_no_endpoint(client: httpx.AsyncClient, keys: Keys) -> None:
    response = await create(client, keys, delivery="poll", endpoint_url=None)
    assert response.status_code == 201


async def test_duplicate_and_deleted_ids_are_409(client: httpx.AsyncClient, keys: Keys) -> None:
    assert (await create(client, keys)).status_code == 201
    assert (await create(client, keys)).status_code == 409
    assert (await client.delete("/api/v1/boards/so-sanh-chinh", headers=keys.auth("admin"))).status_code == 204
    assert (await client.get("/api/v1/boards/so-sanh-chinh", headers=keys.auth("admin"))).status_code == 404
    again = await create(client, keys)
    assert again.status_code == 409 and "deleted" in again.json()["detail"]


async def test_patch_revalidates_the_endpoint(client: httpx.AsyncClient, keys: Keys) -> None:
    await create(client, keys)
    url = "/api/v1/boards/so-sanh-chinh"
    bad = await client.patch(url, json={"endpoint_url": "http://169.254.169.254/"}, headers=keys.auth("admin"))
    assert bad.status_code == 422
    poll_only = await client.patch(url, json={"delivery": "poll", "endpoint_url": None}, headers=keys.auth("admin"))
    assert poll_only.status_code == 200 and poll_only.json()["endpoint_url"] is None
    moved = await client.patch(url, json={"name": "Bảng mới", "groups": ["a", "b"], "offset": 3},
                               headers=keys.auth("admin"))
    assert moved.json()["groups"] == ["a", "b"] and moved.json()["offset"] == 3
    audit = await client.get("/api/v1/audit", params={"entity_type": "board"}, headers=keys.auth("admin"))
    actions = [e["action"] for e in audit.json()["items"]]
    assert actions == ["board.update", "board.update", "board.create"]
    assert all("token" not in str(e) and "whsec_" not in str(e) for e in audit.json()["items"])


async def test_refused_networks_follow_the_setting(client: httpx.AsyncClient, keys: Keys, settings: Settings) -> None:
    # 127.0.0.0/8 is allowed in the tests' settings; the default (private ranges) refuses it.
    assert Settings(database_url=settings.database_url).allowed_board_networks == [
        "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]
    assert (await create(client, keys, endpoint_url="http://localhost:9/show")).status_code == 201
