"""While an emergency stop holds every board is blank: polls answer idle at once, in every
process and after a restart, until it is lifted; `/metrics` says so. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from fastapi import FastAPI

from displayd.app import create_app
from displayd.config import Settings
from tests.conftest import FakeClock, Keys
from tests.factories import Factory
from tests.test_metrics import scrape

URL = "/api/v1/emergency-stop"
STOP = {"reason": "Kiểm tra dừng khẩn cấp"}


async def state(factory: Factory, board: dict[str, Any]) -> str:
    response = await factory.current(board)
    assert response.status_code == 200, response.text
    value: str = response.json()["state"]
    return value


async def test_polls_answer_idle_while_it_holds(client: httpx.AsyncClient, keys: Keys, factory: Factory,
                                                clock: FakeClock) -> None:
    await factory.campaign()  # live since 2024-05-01: boards show its slogans now
    board = await factory.board("bang-a")
    other = await factory.board("bang-b", delivery="both", endpoint_url="http://10.0.0.7/hook")
    showing = await factory.current(board)
    assert showing.json()["state"] == "showing"
    assert (await client.post(URL, json=STOP, headers=keys.auth("approver"))).status_code == 201
    # The very next poll, with no time passing: the process rebuilt its snapshot at commit.
    idle = await factory.current(board)
    assert idle.json() == {"board_id": "bang-a", "state": "idle", "slot": None, "content": None,
                           "content_hash": None, "valid_until": None, "next": None}
    assert await state(factory, other) == "idle"
    # A board that cached the last answer is told it changed.
    assert (await factory.current(board, **{"If-None-Match": showing.headers["etag"]})).status_code == 200
    listed = (await client.get("/api/v1/boards", headers=keys.auth("operator"))).json()["items"]
    assert {b["id"]: b["current"]["state"] for b in listed} == {"bang-a": "idle", "bang-b": "idle"}
    clock.advance(hours=3)  # slots come and go: still idle
    assert await state(factory, board) == "idle"
    assert (await client.delete(URL, headers=keys.auth("approver"))).status_code == 200
    back = await factory.current(board)
    assert back.json()["state"] == "showing" and back.json()["content"]["text"]
    assert await state(factory, other) == "showing"


async def test_a_board_added_during_the_stop_is_idle_too(client: httpx.AsyncClient, keys: Keys,
                                                         factory: Factory) -> None:
    await factory.campaign()
    await client.post(URL, json=STOP, headers=keys.auth("admin"))
    board = await factory.board("bang-moi")
    assert await state(factory, board) == "idle"
    await factory.campaign("Đợt mới")
    assert await state(factory, board) == "idle"
    await client.delete(URL, headers=keys.auth("admin"))
    assert await state(factory, board) == "showing"


async def test_it_holds_across_a_restart(app: FastAPI, client: httpx.AsyncClient, keys: Keys, factory: Factory,
                                         settings: Settings, clock: FakeClock) -> None:
    await factory.campaign()
    board = await factory.board("bang-a")
    await client.post(URL, json=STOP, headers=keys.auth("approver"))
    for attempt in range(2):
        # A process started afterwards on the same database (displayd restarted): idle from its first poll.
        restarted = create_app(settings, clock=clock)
        async with restarted.router.lifespan_context(restarted), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=restarted), base_url="http://displayd.test") as fresh:
            poll = await fresh.get("/api/v1/boards/bang-a/current",
                                   headers={"Authorization": f"Bearer {board['token']}"})
            assert poll.json()["state"] == ("idle" if attempt == 0 else "showing")
            assert (await scrape(fresh))[("displayd_emergency_stop", ())] == (1 if attempt == 0 else 0)
            stop = (await fresh.get(URL, headers=keys.auth("operator"))).json()
            assert stop["active"] is (attempt == 0)
            if attempt == 0:
                assert stop["reason"] == STOP["reason"] and stop["started_by"] == "Lãnh đạo Sở"
                assert (await fresh.delete(URL, headers=keys.auth("admin"))).status_code == 200


async def test_another_process_goes_idle_within_the_change_poll(client: httpx.AsyncClient, keys: Keys,
                                                                factory: Factory, settings: Settings,
                                                                clock: FakeClock) -> None:
    await factory.campaign()
    board = await factory.board("bang-a")
    other = create_app(settings, clock=clock)
    async with other.router.lifespan_context(other), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=other), base_url="http://displayd.test") as second:
        async def polled() -> str:
            response = await second.get("/api/v1/boards/bang-a/current",
                                        headers={"Authorization": f"Bearer {board['token']}"})
            value: str = response.json()["state"]
            return value

        assert await polled() == "showing"
        for method, expected in (("POST", "idle"), ("DELETE", "showing")):
            response = await client.request(method, URL, json=STOP if method == "POST" else None,
                                            headers=keys.auth("admin"))
            assert response.status_code < 300
            started = time.monotonic()
            while await polled() != expected:
                assert time.monotonic() - started < settings.change_poll_seconds * 10 + 1, expected
                await asyncio.sleep(0.05)


async def test_the_metrics_gauge(client: httpx.AsyncClient, keys: Keys) -> None:
    assert (await scrape(client))[("displayd_emergency_stop", ())] == 0
    await client.post(URL, json=STOP, headers=keys.auth("admin"))
    assert (await scrape(client))[("displayd_emergency_stop", ())] == 1
    await client.post(URL, json=STOP, headers=keys.auth("approver"))  # a second press: still one stop
    assert (await scrape(client))[("displayd_emergency_stop", ())] == 1
    await client.delete(URL, headers=keys.auth("admin"))
    assert (await scrape(client))[("displayd_emergency_stop", ())] == 0
