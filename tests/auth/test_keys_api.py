"""`/api/v1/keys`: list, create and revoke staff keys (admin), on SQLite and PostgreSQL.

A revoked key stops working at once on the process that revoked it and within
`change_poll_seconds` on every other; `last_used_at` is written at most once a minute.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import httpx
from fastapi import FastAPI

from displayd.app import create_app
from displayd.config import Settings
from displayd.runtime import runtime_of
from tests.conftest import FakeClock, Keys
from tests.factories import Factory

FIELDS = {"id", "name", "role", "created_at", "last_used_at", "revoked_at"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def listed(client: httpx.AsyncClient, keys: Keys) -> dict[str, dict[str, Any]]:
    response = await client.get("/api/v1/keys", headers=keys.auth("admin"))
    assert response.status_code == 200, response.text
    return {k["name"]: k for k in response.json()["items"]}


async def test_create_list_revoke(client: httpx.AsyncClient, keys: Keys, clock: FakeClock) -> None:
    created = await client.post("/api/v1/keys", json={"name": "  Thanh  tra Sở ", "role": "operator"},
                                headers=keys.auth("admin"))
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == FIELDS | {"key"}
    key = body["key"]
    assert key.startswith("dk_") and len(key) > 40
    assert body["name"] == "Thanh tra Sở" and body["role"] == "operator"
    assert body["created_at"] == "2024-05-07T00:00:00Z" and body["revoked_at"] is None

    assert (await client.get("/api/v1/slogans", headers=bearer(key))).status_code == 200
    page = await client.get("/api/v1/keys", headers=keys.auth("admin"))
    assert all(set(item) == FIELDS for item in page.json()["items"])
    # Never the key, nor its hash, nor any of the fixture keys.
    for secret in (key, hashlib.sha256(key.encode()).hexdigest(), keys.admin, keys.editor):
        assert secret not in page.text
    assert len(page.json()["items"]) == 7

    clock.advance(minutes=5)
    revoked = await client.post(f"/api/v1/keys/{body['id']}/revoke", headers=keys.auth("admin"))
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] == "2024-05-07T00:05:00Z" and set(revoked.json()) == FIELDS
    # At once on this process, even though the key was in its cache.
    refused = await client.get("/api/v1/slogans", headers=bearer(key))
    assert refused.status_code == 401
    assert (await listed(client, keys))["Thanh tra Sở"]["revoked_at"] == "2024-05-07T00:05:00Z"

    again = await client.post(f"/api/v1/keys/{body['id']}/revoke", headers=keys.auth("admin"))
    assert again.status_code == 409 and set(again.json()) == {"error", "detail"}
    for missing in ("999999", str(2**40)):
        response = await client.post(f"/api/v1/keys/{missing}/revoke", headers=keys.auth("admin"))
        assert response.status_code == 404, response.text

    events = (await client.get("/api/v1/audit", params={"entity_type": "api_key", "entity_id": str(body["id"])},
                               headers=keys.auth("admin"))).json()["items"]
    assert [(e["action"], e["actor"]) for e in reversed(events)] == [("key.create", "Quản trị"),
                                                                     ("key.revoke", "Quản trị")]
    assert key not in str(events)


async def test_bad_requests(client: httpx.AsyncClient, keys: Keys) -> None:
    for body in [{"name": "x", "role": "root"}, {"name": "", "role": "admin"}, {"name": "   ", "role": "admin"},
                 {"name": "a\u200bb", "role": "admin"}, {"name": "x" * 101, "role": "admin"}, {"role": "admin"},
                 {"name": "x", "role": "admin", "key": "dk_mine"}]:
        response = await client.post("/api/v1/keys", json=body, headers=keys.auth("admin"))
        assert response.status_code == 422, (body, response.text)
        assert set(response.json()) == {"error", "detail"}
    assert len(await listed(client, keys)) == 6


async def test_only_admins_manage_keys(client: httpx.AsyncClient, keys: Keys) -> None:
    for role in ("editor", "approver", "operator"):
        assert (await client.get("/api/v1/keys", headers=keys.auth(role))).status_code == 403
        made = await client.post("/api/v1/keys", json={"name": "x", "role": "admin"}, headers=keys.auth(role))
        assert made.status_code == 403
        assert (await client.post("/api/v1/keys/1/revoke", headers=keys.auth(role))).status_code == 403


async def test_a_revoked_key_stops_working_on_another_process(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, keys: Keys, factory: Factory, clock: FakeClock
) -> None:
    """Two apps on one database: the key is cached on the second when the first revokes it."""
    made = await factory.key("operator", "Thanh tra lưu động")
    board = await factory.board("bang-hai")
    other = create_app(settings, clock=clock)
    async with other.router.lifespan_context(other), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=other), base_url="http://displayd.test") as second:
        # Cached on the second process, for the API and the poll path alike.
        assert (await second.get("/api/v1/slogans", headers=bearer(made["key"]))).status_code == 200
        current = f"/api/v1/boards/{board['id']}/current"
        assert (await second.get(current, headers=bearer(made["key"]))).status_code == 200
        revoked = await client.post(f"/api/v1/keys/{made['id']}/revoke", headers=keys.auth("admin"))
        assert revoked.status_code == 200
        start = time.monotonic()
        limit = settings.change_poll_seconds * 10 + 1  # a watcher tick, with room for a busy machine
        while (await second.get("/api/v1/slogans", headers=bearer(made["key"]))).status_code != 401:
            assert time.monotonic() - start < limit, "the revoked key still works on the other process"
            await asyncio.sleep(0.05)
        assert (await second.get(current, headers=bearer(made["key"]))).status_code == 401
        assert (await second.get("/api/v1/slogans", headers=keys.auth("operator"))).status_code == 200


async def test_last_used_is_written_at_most_once_a_minute(app: FastAPI, client: httpx.AsyncClient, keys: Keys,
                                                          factory: Factory, clock: FakeClock) -> None:
    made = await factory.key("operator", "Bảng điều khiển")
    assert (await listed(client, keys))["Bảng điều khiển"]["last_used_at"] is None
    start = clock.now
    for _ in range(5):
        assert (await client.get("/api/v1/slogans", headers=bearer(made["key"]))).status_code == 200
    clock.advance(seconds=30)
    assert (await client.get("/api/v1/slogans", headers=bearer(made["key"]))).status_code == 200
    await runtime_of(app).key_cache.flush()
    assert (await listed(client, keys))["Bảng điều khiển"]["last_used_at"] == start.isoformat().replace("+00:00", "Z")
    # Half a minute later and ten uses on: still nothing to write.
    for _ in range(10):
        await client.get("/api/v1/slogans", headers=bearer(made["key"]))
    await runtime_of(app).key_cache.flush()
    assert (await listed(client, keys))["Bảng điều khiển"]["last_used_at"] == "2024-05-07T00:00:00Z"
    clock.advance(seconds=31)
    await client.get("/api/v1/boards", headers=bearer(made["key"]))
    await runtime_of(app).key_cache.flush()
    assert (await listed(client, keys))["Bảng điều khiển"]["last_used_at"] == "2024-05-07T00:01:01Z"
