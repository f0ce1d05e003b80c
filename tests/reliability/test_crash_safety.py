"""Crash safety (run by `make test-long`): 20 `kill -9`s of a pushing displayd at random
moments, on SQLite and on PostgreSQL, each followed by a restart. Afterwards every slot of
every board is in the rotation log exactly once, the slots that passed while displayd was
down are `missed`, no board received a slot twice, and pushes resumed within one slot of
every restart."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import fresh_database_url
from tests.delivery.boards import FakeBoards, Received
from tests.delivery.test_processes import log_rows, prepare, serve, setup_campaign, wait_for

pytestmark = pytest.mark.slow

CYCLES = 20
DWELL = 5
BOARDS = ["bang-1", "bang-2", "bang-3"]


def shows(received: list[Received]) -> list[Received]:
    return [r for r in received if json.loads(r.body)["type"] == "show"]


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from fresh_database_url(str(request.param), tmp_path)


async def test_kill_9_cycles_lose_and_double_nothing(url: str, tmp_path: Path) -> None:
    rng = random.Random(20240507)
    downtimes: list[tuple[float, float]] = []  # (killed, ready again), wall-clock seconds
    async with FakeBoards() as boards:
        auth = await prepare(url)
        server = await serve(url, tmp_path, "start")
        async with httpx.AsyncClient(timeout=10) as http:
            await setup_campaign(http, server, auth, boards, BOARDS)
        resumed_within: list[float] = []
        for cycle in range(CYCLES):
            await asyncio.sleep(rng.uniform(0.5, 2.5 * DWELL))  # kill at a random moment, often mid-push
            await asyncio.to_thread(server.kill)
            killed = time.time()
            await asyncio.sleep(rng.uniform(0, 2 * DWELL))
            before = len(shows(boards.received(BOARDS[0])))
            server = await serve(url, tmp_path, f"cycle-{cycle}")
            downtimes.append((killed, time.time()))
            try:
                resumed_within.append(await wait_for(
                    lambda before=before: len(shows(boards.received(BOARDS[0]))) > before, 3 * DWELL))
            except AssertionError:
                resumed_within.append(float("inf"))
        await asyncio.sleep(DWELL)
        await asyncio.to_thread(server.stop)

        # Pushes resumed within one slot (plus start-up slack) after every restart.
        assert max(resumed_within) <= DWELL + 2, resumed_within
        rows = await log_rows(url)
        for board_id in BOARDS:
            mine = [r for r in rows if r.board_id == board_id]
            indexes = [r.slot_index for r in mine]
            assert indexes == list(range(indexes[0], indexes[0] + len(indexes))), "every slot, once"
            statuses = Counter(r.push_status for r in mine)
            assert statuses["pending"] == 0, statuses
            # Downtime is in the log: every slot that began and ended while no displayd ran
            # (with half a second of slack for start-up and clocks) is `missed`.
            down = [r for r in mine if any(k + 0.5 <= r.starts_at.timestamp() and r.ends_at.timestamp() <= up - 0.5
                                           for k, up in downtimes)]
            assert down, "some slot passed entirely during a downtime"
            assert {r.push_status for r in down} == {"missed"}, [(r.slot_index, r.push_status) for r in down]
            received = Counter(r.headers["webhook-id"] for r in shows(boards.received(board_id)))
            assert max(received.values()) == 1, "no slot pushed twice"
            logged = {f"{r.board_id}:{r.campaign_id}:{r.slot_index}:0" for r in mine
                      if r.push_status in ("delivered", "failed")}
            assert set(received) <= logged, "every push a board received is in the log"
