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
        ({"lead_seconds": -1}, "lead_seconds"),
        ({"lead_seconds": 301}, "lead_seconds"),
        ({"lead_seconds": "30"}, "lead_seconds"),
        ({"lead_seconds": 30.5}, "lead_seconds"),
        ({"lead_seconds": True}, "lead_seconds"),
        ({"delivery": "sse"}, "delivery"),
        ({"delivery": "stream"}, "stream boards are not pushed to"),
        ({"delivery": "stream", "endpoint_url": "http://8.8.8.8/show"}, "stream boards are not pushed to"),
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


async def test_lead_seconds_round_trips_through_create_read_list_and_patch(
    client: httpx.AsyncClient, keys: Keys
) -> None:
    made = await create(client, keys, lead_seconds=30)
    assert made.status_code == 201, made.text
    assert made.json()["lead_seconds"] == 30
    url = "/api/v1/boards/so-sanh-chinh"
    assert (await client.get(url, headers=keys.auth("operator"))).json()["lead_seconds"] == 30
    listed = (await client.get("/api/v1/boards", headers=keys.auth("operator"))).json()["items"]
    assert [(b["id"], b["lead_seconds"]) for b in listed] == [("so-sanh-chinh", 30)]

    longest = await client.patch(url, json={"lead_seconds": 300}, headers=keys.auth("admin"))
    assert longest.status_code == 200 and longest.json()["lead_seconds"] == 300
    renamed = await client.patch(url, json={"name": "Bảng sảnh"}, headers=keys.auth("admin"))
    assert renamed.json()["lead_seconds"] == 300, "a PATCH without it keeps it"
    at_start = await client.patch(url, json={"lead_seconds": 0}, headers=keys.auth("admin"))
    assert at_start.status_code == 200 and at_start.json()["lead_seconds"] == 0, "0 is a value, not 'unchanged'"

    audit = await client.get("/api/v1/audit", params={"entity_type": "board"}, headers=keys.auth("admin"))
    events = audit.json()["items"]  # newest first
    assert events[-1]["after"]["lead_seconds"] == 30
    assert (events[2]["before"]["lead_seconds"], events[2]["after"]["lead_seconds"]) == (30, 300)

    plain = await create(client, keys, id="bang-mac-dinh")
    assert plain.status_code == 201 and plain.json()["lead_seconds"] == 0, "omitted: sent at the slot's start"


@pytest.mark.parametrize("value", [-1, 301, "30", 12.5, None])
async def test_patch_refuses_a_lead_out_of_range_or_not_a_number(
    client: httpx.AsyncClient, keys: Keys, value: Any
) -> None:
    assert (await create(client, keys, lead_seconds=45)).status_code == 201
    response = await client.patch("/api/v1/boards/so-sanh-chinh", json={"lead_seconds": value},
                                  headers=keys.auth("admin"))
    if value is None:  # null means "unchanged" for every PATCH field
        assert response.status_code == 200 and response.json()["lead_seconds"] == 45
        return
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("lead_seconds:"), response.json()
    read = await client.get("/api/v1/boards/so-sanh-chinh", headers=keys.auth("operator"))
    assert read.json()["lead_seconds"] == 45


async def test_stream_boards_are_never_given_a_push_url(
    client: httpx.AsyncClient, keys: Keys, settings: Settings
) -> None:
    stream = await create(client, keys, id="bang-4g", delivery="stream", endpoint_url=None, lead_seconds=10)
    assert stream.status_code == 201, stream.text
    assert (stream.json()["delivery"], stream.json()["endpoint_url"]) == ("stream", None)
    assert stream.json()["token"].startswith("bt_")
    omitted = {k: v for k, v in BOARD.items() if k != "endpoint_url"}
    bare = await client.post("/api/v1/boards", json={**omitted, "id": "bang-4g-2", "delivery": "stream"},
                             headers=keys.auth("admin"))
    assert bare.status_code == 201 and bare.json()["endpoint_url"] is None

    url = "/api/v1/boards/bang-4g"
    given = await client.patch(url, json={"endpoint_url": "http://127.0.0.1:9/show"}, headers=keys.auth("admin"))
    assert given.status_code == 422 and "stream boards are not pushed to" in given.json()["detail"]
    to_push = await client.patch(url, json={"delivery": "push"}, headers=keys.auth("admin"))
    assert to_push.status_code == 422 and "needs an endpoint_url" in to_push.json()["detail"]
    to_both = await client.patch(url, json={"delivery": "both", "endpoint_url": "http://127.0.0.1:9/show"},
                                 headers=keys.auth("admin"))
    assert to_both.status_code == 200, to_both.text
    assert (to_both.json()["delivery"], to_both.json()["endpoint_url"]) == ("both", "http://127.0.0.1:9/show")
    assert (await _board_row(settings, "bang-4g")).lead_seconds == 10


async def test_changing_a_board_to_stream_clears_its_url_explicitly_or_is_refused(
    client: httpx.AsyncClient, keys: Keys, settings: Settings
) -> None:
    assert (await create(client, keys)).status_code == 201  # push, with an endpoint_url
    url = "/api/v1/boards/so-sanh-chinh"
    refused = await client.patch(url, json={"delivery": "stream"}, headers=keys.auth("admin"))
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"] == "invalid_input"
    assert "stream boards are not pushed to" in refused.json()["detail"]
    row = await _board_row(settings, "so-sanh-chinh")
    assert (row.delivery, row.endpoint_url) == ("push", "http://127.0.0.1:9/show"), "nothing changed"

    changed = await client.patch(url, json={"delivery": "stream", "endpoint_url": None}, headers=keys.auth("admin"))
    assert changed.status_code == 200, changed.text
    assert (changed.json()["delivery"], changed.json()["endpoint_url"]) == ("stream", None)
    audit = await client.get("/api/v1/audit", params={"entity_type": "board"}, headers=keys.auth("admin"))
    last = audit.json()["items"][0]
    assert last["before"]["endpoint_url"] == "http://127.0.0.1:9/show" and last["after"]["endpoint_url"] is None
    assert last["after"]["delivery"] == "stream"
