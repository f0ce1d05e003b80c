"""Campaigns through the REST API, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from displayd.config import Settings
from tests.conftest import FakeClock, Keys, count_rows
from tests.factories import Factory


async def post(client: httpx.AsyncClient, keys: Keys, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/api/v1/campaigns", json=body, headers=keys.auth("editor"))


async def test_create_and_read(client: httpx.AsyncClient, keys: Keys, factory: Factory) -> None:
    ids = await factory.approved_ids()
    await factory.board("so-sanh-chinh", groups=["so-tttt"])  # targets name what exists
    body = factory.campaign_body(
        "Cao điểm", ids[:2], starts_at="2024-03-01T00:00:00+07:00", ends_at="2024-06-01T00:00:00+07:00",
        daily_hours=[{"start": "06:00", "end": "22:00"}], priority=200, order="shuffle",
        targets={"groups": ["so-tttt", "so-tttt"]})
    body["playlist"][0]["weight"] = 2
    response = await post(client, keys, body)
    assert response.status_code == 201, response.text
    campaign = response.json()
    assert campaign["starts_at"] == "2024-02-29T17:00:00Z" and campaign["ends_at"] == "2024-05-31T17:00:00Z"
    assert campaign["timezone"] == "Asia/Ho_Chi_Minh"
    assert campaign["daily_hours"] == [{"start": "06:00", "end": "22:00"}]
    assert campaign["playlist"] == [{"slogan_id": ids[0], "weight": 2}, {"slogan_id": ids[1], "weight": 1}]
    assert campaign["targets"] == {"groups": ["so-tttt"]}
    assert campaign["state"] == "running" and campaign["paused"] is False
    assert campaign["created_by"] == "Chuyên viên A"
    read = await client.get(f"/api/v1/campaigns/{campaign['id']}", headers=keys.auth("operator"))
    assert read.json() == campaign
    listed = await client.get("/api/v1/campaigns", headers=keys.auth("approver"))
    assert [c["id"] for c in listed.json()["items"]] == [campaign["id"]]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"ends_at": "2024-05-01T00:00:00Z"}, "after"),
        ({"ends_at": "2024-04-01T00:00:00Z"}, "after"),
        ({"dwell_seconds": 4}, "dwell_seconds"),
        ({"dwell_seconds": 3601}, "dwell_seconds"),
        ({"timezone": "Asia/Hanoi_Nowhere"}, "zone"),
        ({"daily_hours": [{"start": "6:00", "end": "22:00"}]}, "daily_hours"),
        ({"daily_hours": [{"start": "06:00", "end": "25:00"}]}, "daily_hours"),
        ({"daily_hours": [{"start": "06:00", "end": "06:00"}]}, "daily_hours"),
        ({"daily_hours": [{"start": "06:00"}]}, "daily_hours"),
        ({"priority": 1001}, "priority"),
        ({"order": "random"}, "order"),
        ({"targets": {}}, "targets"),
        ({"targets": {"all": True, "groups": ["a"]}}, "targets"),
        ({"targets": {"all": False}}, "targets"),
        ({"targets": {"groups": []}}, "targets"),
        ({"starts_at": "2024-05-01T00:00:00"}, "timezone"),
        ({"name": "   "}, "name"),
    ],
)
async def test_invalid_campaigns_are_422(client: httpx.AsyncClient, keys: Keys, factory: Factory,
                                         settings: Settings, change: dict[str, Any], why: str) -> None:
    body = {**factory.campaign_body("Đợt", await factory.approved_ids()), **change}
    response = await post(client, keys, body)
    assert response.status_code == 422, response.text
    assert response.json()["error"] in ("invalid_input", "invalid_json")
    assert why.lower() in response.json()["detail"].lower()
    assert await count_rows(settings, "campaign") == 0


async def test_playlist_must_hold_approved_slogans(client: httpx.AsyncClient, keys: Keys, factory: Factory,
                                                   settings: Settings) -> None:
    ids = await factory.approved_ids()
    draft = await factory.draft("Bản nháp chưa duyệt")
    retired = await factory.approved("Sẽ thu hồi")
    await client.post(f"/api/v1/slogans/{retired['id']}/retire", json={"reason": "x"}, headers=keys.auth("approver"))
    for playlist, why in [
        ([{"slogan_id": draft["id"], "weight": 1}], "draft"),
        ([{"slogan_id": retired["id"], "weight": 1}], "retired"),
        ([{"slogan_id": 987654, "weight": 1}], "does not exist"),
        ([{"slogan_id": ids[0], "weight": 0}], "weight"),
        ([{"slogan_id": ids[0], "weight": 11}], "weight"),
        ([{"slogan_id": ids[0], "weight": 1}, {"slogan_id": ids[0], "weight": 2}], "twice"),
    ]:
        body = factory.campaign_body("Đợt", [])
        body["playlist"] = playlist
        response = await post(client, keys, body)
        assert response.status_code == 422, (playlist, response.text)
        assert why in response.json()["detail"]
    assert await count_rows(settings, "campaign") == 0


async def test_pause_resume_delete(client: httpx.AsyncClient, keys: Keys, factory: Factory) -> None:
    campaign = await factory.campaign()
    url = f"/api/v1/campaigns/{campaign['id']}"
    paused = await client.post(f"{url}/pause", headers=keys.auth("editor"))
    assert paused.json()["state"] == "paused"
    assert (await client.post(f"{url}/pause", headers=keys.auth("editor"))).status_code == 409
    resumed = await client.post(f"{url}/resume", headers=keys.auth("editor"))
    assert resumed.json()["state"] == "running"
    assert (await client.delete(url, headers=keys.auth("editor"))).status_code == 204
    assert (await client.get(url, headers=keys.auth("editor"))).status_code == 404
    assert (await client.patch(url, json={"priority": 1}, headers=keys.auth("editor"))).status_code == 404
    listed = await client.get("/api/v1/campaigns", headers=keys.auth("editor"))
    assert listed.json()["items"] == []
    audit = await client.get("/api/v1/audit", params={"entity_type": "campaign"}, headers=keys.auth("admin"))
    assert [e["action"] for e in audit.json()["items"]] == [
        "campaign.delete", "campaign.resume", "campaign.pause", "campaign.create"]


async def test_patch_validates_the_result(client: httpx.AsyncClient, keys: Keys, factory: Factory) -> None:
    campaign = await factory.campaign()
    url = f"/api/v1/campaigns/{campaign['id']}"
    bad = await client.patch(url, json={"ends_at": "2024-04-01T00:00:00Z"}, headers=keys.auth("editor"))
    assert bad.status_code == 422
    unchanged = await client.get(url, headers=keys.auth("editor"))
    assert unchanged.json()["ends_at"] == "2024-06-01T00:00:00Z"
    ok = await client.patch(url, json={"name": "Đổi tên", "priority": 300}, headers=keys.auth("editor"))
    assert ok.status_code == 200
    assert ok.json()["name"] == "Đổi tên" and ok.json()["priority"] == 300


async def test_state_follows_the_clock(client: httpx.AsyncClient, keys: Keys, factory: Factory,
                                       clock: FakeClock) -> None:
    campaign = await factory.campaign(starts_at="2024-05-08T00:00:00Z", ends_at="2024-05-09T00:00:00Z")
    url = f"/api/v1/campaigns/{campaign['id']}"
    assert campaign["state"] == "scheduled"
    clock.advance(days=1)
    assert (await client.get(url, headers=keys.auth("editor"))).json()["state"] == "running"
    clock.advance(days=1)
    assert (await client.get(url, headers=keys.auth("editor"))).json()["state"] == "ended"
