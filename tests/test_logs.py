"""`DISPLAYD_LOG_FORMAT=json`: a real `displayd serve` writes one JSON object a line, with an
event for each push, poll error, leadership change and retirement."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from displayd.config import Settings
from displayd.logs import JsonFormatter, configure_logging
from tests.conftest import fresh_database_url
from tests.delivery.boards import FakeBoards
from tests.delivery.test_processes import prepare, setup_campaign, shows, wait_for
from tests.servers import start_server


@pytest.fixture
async def fake_boards() -> AsyncIterator[FakeBoards]:
    async with FakeBoards() as fake:
        yield fake


def events(log: Path) -> list[dict[str, Any]]:
    lines = [line for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
    return parsed


def kinds(log: Path) -> set[str]:
    return {event.get("event", "") for event in events(log)}


async def test_serve_logs_json_events(tmp_path: Path, fake_boards: FakeBoards) -> None:
    [url] = list(fresh_database_url("sqlite", tmp_path))
    auth = await prepare(url)
    server = await asyncio.to_thread(start_server, url, tmp_path, "json", DISPLAYD_LOG_FORMAT="json")
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            made = await setup_campaign(http, server, auth, fake_boards, ["bang-json"])
            await wait_for(lambda: len(shows(fake_boards.received("bang-json"))) >= 1, 15)
            bad = await http.get(f"{server.url}/api/v1/boards/bang-json/current",
                                 headers={"Authorization": "Bearer bt_not-a-token"})
            assert bad.status_code == 401
            slogan_id = made["campaign"]["playlist"][0]["slogan_id"]
            retired = await http.post(f"{server.url}/api/v1/slogans/{slogan_id}/retire", headers=auth["approver"],
                                      json={"reason": "thử nhật ký"})
            assert retired.status_code == 200, retired.text
            await wait_for(lambda: {"push", "poll_error", "leadership", "retirement"} <= kinds(server.log), 10)
    finally:
        server.stop()
    logged = events(server.log)  # every line, including shutdown, is JSON
    assert all({"ts", "level", "logger", "message"} <= set(event) for event in logged)
    by_kind = {event.get("event"): event for event in logged}
    assert by_kind["push"]["board_id"] == "bang-json" and by_kind["push"]["webhook_id"].startswith("bang-json:")
    assert by_kind["poll_error"] == {**by_kind["poll_error"], "board_id": "bang-json", "status": 401}
    assert by_kind["leadership"]["leader"] is True
    assert by_kind["retirement"]["slogan_id"] == slogan_id and by_kind["retirement"]["reason"] == "thử nhật ký"
    assert by_kind["retirement"]["actor"] == "approver thử"


def test_json_formatter_keeps_extras_and_text_is_default(capsys: pytest.CaptureFixture[str]) -> None:
    record = logging.makeLogRecord({"name": "displayd.x", "levelname": "INFO", "msg": "poll answered %d",
                                    "args": (404,), "event": "poll_error", "status": 404})
    event = json.loads(JsonFormatter().format(record))
    assert event.pop("ts").endswith("Z")
    assert event == {"level": "info", "logger": "displayd.x", "message": "poll answered 404",
                     "event": "poll_error", "status": 404}
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging(Settings(log_format="json"))
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
        configure_logging(Settings())
        assert not isinstance(root.handlers[0].formatter, JsonFormatter)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        logging.captureWarnings(False)
