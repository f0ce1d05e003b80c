"""`/api/v1/emergency-stop`: who may start and lift it, what it answers, what the audit log keeps;
on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from displayd.config import Settings
from tests.conftest import FakeClock, Keys, count_rows

URL = "/api/v1/emergency-stop"
REASON = "Nội dung sai trên bảng ngã tư"


async def start(client: httpx.AsyncClient, keys: Keys, who: str = "approver", reason: str = REASON) -> httpx.Response:
    return await client.post(URL, json={"reason": reason}, headers=keys.auth(who))


async def audited(client: httpx.AsyncClient, keys: Keys) -> list[dict[str, Any]]:
    """The audit log's emergency-stop events, newest first."""
    response = await client.get("/api/v1/audit", params={"entity_type": "emergency_stop"}, headers=keys.auth("admin"))
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_start_read_and_lift(client: httpx.AsyncClient, keys: Keys, clock: FakeClock) -> None:
    assert (await client.get(URL, headers=keys.auth("operator"))).json() == {"active": False}
    started = await start(client, keys)
    assert started.status_code == 201
    body = started.json()
    assert body == {"active": True, "id": body["id"], "reason": REASON, "started_at": "2024-05-07T00:00:00Z",
                    "started_by": "Lãnh đạo Sở", "lifted_at": None, "lifted_by": None}
    for who in ("admin", "editor", "approver", "operator"):
        assert (await client.get(URL, headers=keys.auth(who))).json() == body
    clock.advance(minutes=5)
    lifted = await client.delete(URL, headers=keys.auth("admin"))
    assert lifted.status_code == 200
    assert lifted.json() == {**body, "active": False, "lifted_at": "2024-05-07T00:05:00Z", "lifted_by": "Quản trị"}
    assert (await client.get(URL, headers=keys.auth("operator"))).json() == {"active": False}
    # A new stop after a lift is a new row.
    again = await start(client, keys, "admin", "Lần hai")
    assert again.status_code == 201 and again.json()["id"] != body["id"] and again.json()["reason"] == "Lần hai"


@pytest.mark.parametrize("who", ["admin", "approver"])
async def test_admins_and_approvers_start_and_lift(client: httpx.AsyncClient, keys: Keys, who: str) -> None:
    assert (await start(client, keys, who)).status_code == 201
    assert (await client.delete(URL, headers=keys.auth(who))).status_code == 200


async def test_editors_operators_and_strangers_may_not(client: httpx.AsyncClient, keys: Keys,
                                                       settings: Settings) -> None:
    for who in ("editor", "operator"):
        refused = await start(client, keys, who)
        assert refused.status_code == 403, who
        assert set(refused.json()) == {"error", "detail"} and refused.json()["error"] == "forbidden"
    for headers in ({}, {"Authorization": "Bearer dk_no-such-key"}):
        assert (await client.post(URL, json={"reason": REASON}, headers=headers)).status_code == 401
        assert (await client.get(URL, headers=headers)).status_code == 401
    assert await count_rows(settings, "emergency_stop") == 0
    assert (await start(client, keys)).status_code == 201
    for who in ("editor", "operator"):
        assert (await client.delete(URL, headers=keys.auth(who))).status_code == 403, who
    assert (await client.delete(URL)).status_code == 401
    assert (await client.get(URL, headers=keys.auth("operator"))).json()["active"] is True


@pytest.mark.parametrize(("reason", "why"), [
    ("", "at least 1 character"), ("   \t\n ", "empty"), ("x" * 301, "301 characters"),
    ("Dừng\u0007lại", "control character"), ("Dừng\u200blại", "zero-width"), ("Dừng\u202elại", "bidirectional"),
])
async def test_a_bad_reason_is_422_and_changes_nothing(client: httpx.AsyncClient, keys: Keys, settings: Settings,
                                                       reason: str, why: str) -> None:
    response = await start(client, keys, reason=reason)
    assert response.status_code == 422, response.text
    assert set(response.json()) == {"error", "detail"} and why in response.json()["detail"]
    assert await count_rows(settings, "emergency_stop") == 0
    assert await audited(client, keys) == []


@pytest.mark.parametrize("body", [None, {}, {"reason": None}, {"reason": 5}, {"reason": "x", "boards": ["a"]}])
async def test_a_malformed_body_is_422(client: httpx.AsyncClient, keys: Keys, body: Any) -> None:
    response = await client.post(URL, json=body, headers=keys.auth("admin"))
    assert response.status_code == 422 and set(response.json()) == {"error", "detail"}


async def test_the_reason_is_normalised(client: httpx.AsyncClient, keys: Keys) -> None:
    spaced = "  Dừng\u00a0 ngay\n" + " " * 600 + "lập tức  "
    body = (await start(client, keys, reason=spaced)).json()
    assert body["reason"] == "Dừng ngay lập tức"
    longest = "đ" * 300
    await client.delete(URL, headers=keys.auth("admin"))
    assert (await start(client, keys, reason=longest)).json()["reason"] == longest


async def test_a_second_press_answers_the_stop_that_holds(client: httpx.AsyncClient, keys: Keys,
                                                         settings: Settings, clock: FakeClock) -> None:
    first = await start(client, keys, "approver", "Lần một")
    clock.advance(seconds=3)
    second = await start(client, keys, "admin", "Lần hai")
    assert second.status_code == 200
    assert second.json() == first.json()  # the one that holds, unchanged: reason, time and person
    assert await count_rows(settings, "emergency_stop") == 1
    assert [e["action"] for e in await audited(client, keys)] == ["emergency_stop.start"]


async def test_presses_at_the_same_moment_make_one_stop(client: httpx.AsyncClient, keys: Keys,
                                                        settings: Settings) -> None:
    answers = await asyncio.gather(*[start(client, keys, who, f"Cùng lúc {n}")
                                     for n, who in enumerate(["admin", "approver", "approver2"] * 3)])
    assert sorted(a.status_code for a in answers) == [200] * 8 + [201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert await count_rows(settings, "emergency_stop") == 1
    lifts = await asyncio.gather(*[client.delete(URL, headers=keys.auth("admin")) for _ in range(4)])
    assert sorted(a.status_code for a in lifts) == [200, 404, 404, 404]


async def test_lifting_when_none_holds_is_404(client: httpx.AsyncClient, keys: Keys) -> None:
    response = await client.delete(URL, headers=keys.auth("approver"))
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "no emergency stop holds"}
    await start(client, keys)
    assert (await client.delete(URL, headers=keys.auth("approver"))).status_code == 200
    assert (await client.delete(URL, headers=keys.auth("approver"))).status_code == 404


async def test_start_and_lift_are_audited(client: httpx.AsyncClient, keys: Keys, clock: FakeClock) -> None:
    stop = (await start(client, keys, "approver")).json()
    await start(client, keys, "admin", "Bấm lại")  # no change, nothing audited
    clock.advance(minutes=1)
    await client.delete(URL, headers=keys.auth("approver2"))
    lifted, started = await audited(client, keys)  # newest first
    held = {"reason": REASON, "started_at": "2024-05-07T00:00:00+00:00", "started_by": "Lãnh đạo Sở",
            "lifted_at": None, "lifted_by": None}
    assert started["action"] == "emergency_stop.start" and started["entity_id"] == str(stop["id"])
    assert (started["actor"], started["role"], started["at"]) == ("Lãnh đạo Sở", "approver", "2024-05-07T00:00:00Z")
    assert started["before"] is None and started["after"] == held and started["detail"] == REASON
    assert lifted["action"] == "emergency_stop.lift" and lifted["entity_id"] == str(stop["id"])
    assert (lifted["actor"], lifted["role"], lifted["at"]) == ("Phó Giám đốc", "approver", "2024-05-07T00:01:00Z")
    assert lifted["before"] == held
    assert lifted["after"] == {**held, "lifted_at": "2024-05-07T00:01:00+00:00", "lifted_by": "Phó Giám đốc"}


async def test_it_is_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert set(paths[URL]) == {"get", "post", "delete"}
    assert {"200", "201", "403", "422"} <= set(paths[URL]["post"]["responses"])
