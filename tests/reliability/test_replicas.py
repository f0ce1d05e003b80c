"""Two replicas on PostgreSQL (run by `make test-long`): 200 push boards for 50 slots with
a `kill -9` of the leader in the middle. No board receives a slot twice, leadership moves
within 15 s, and a retirement is seen by polls on both replicas within 5 s."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import fresh_database_url
from tests.delivery.boards import FakeBoards
from tests.delivery.test_processes import prepare, serve, setup_campaign, wait_for

pytestmark = pytest.mark.slow

DWELL = 5
SLOTS = 50
BOARD_COUNT = 200


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    yield from fresh_database_url("postgresql", tmp_path)


async def test_two_replicas_200_boards_50_slots(pg_url: str, tmp_path: Path) -> None:
    board_ids = [f"bang-{n:03d}" for n in range(BOARD_COUNT)]
    async with FakeBoards() as boards:
        auth = await prepare(pg_url)
        replicas = [await serve(pg_url, tmp_path, "a"), await serve(pg_url, tmp_path, "b")]
        try:
            async with httpx.AsyncClient(timeout=20) as http:
                made = await setup_campaign(http, replicas[0], auth, boards, board_ids)
                await wait_for(lambda: boards.received(board_ids[-1]), 3 * DWELL)
                started = time.monotonic()

                # Half-way: kill -9 the leader; the other takes over within 15 s.
                await asyncio.sleep(SLOTS * DWELL / 2)
                pids = {r.headers["user-agent"] for r in boards.received(board_ids[0])[-1:]}
                leader = next(r for r in replicas if any(f":{r.process.pid})" in p for p in pids))
                standby = next(r for r in replicas if r is not leader)
                await asyncio.to_thread(leader.kill)
                killed = time.monotonic()
                await wait_for(lambda: any(f":{standby.process.pid})" in r.headers["user-agent"]
                                           for r in boards.received(board_ids[0])), 15)
                assert time.monotonic() - killed <= 15
                restarted = await serve(pg_url, tmp_path, "a2")
                replicas = [standby, restarted]

                # A retirement through one replica is seen by polls on both within 5 s.
                token = (await http.post(f"{standby.url}/api/v1/boards/{board_ids[0]}/credentials",
                                         headers=auth["admin"])).json()["token"]
                bearer = {"Authorization": f"Bearer {token}"}
                current = (await http.get(f"{restarted.url}/api/v1/boards/{board_ids[0]}/current",
                                          headers=bearer))
                for _ in range(50):  # the restarted replica learns of the new token within seconds
                    if current.status_code == 200:
                        break
                    await asyncio.sleep(0.2)
                    current = await http.get(f"{restarted.url}/api/v1/boards/{board_ids[0]}/current", headers=bearer)
                shown = current.json()["content"]["slogan_id"]
                retired_at = time.monotonic()
                assert (await http.post(f"{standby.url}/api/v1/slogans/{shown}/retire", headers=auth["approver"],
                                        json={"reason": "Thu hồi"})).status_code == 200
                for replica in replicas:
                    while True:
                        body = (await http.get(f"{replica.url}/api/v1/boards/{board_ids[0]}/current",
                                               headers=bearer)).json()
                        if body["content"] is None or body["content"]["slogan_id"] != shown:
                            break
                        assert time.monotonic() - retired_at <= 5, "retirement not seen within 5 s"
                        await asyncio.sleep(0.1)

                remaining = SLOTS * DWELL - (time.monotonic() - started)
                await asyncio.sleep(max(0.0, remaining))
        finally:
            for replica in replicas:
                await asyncio.to_thread(replica.stop)
        assert made["campaign"]["dwell_seconds"] == DWELL
        for board_id in board_ids:
            shows = [r for r in boards.received(board_id) if json.loads(r.body)["type"] == "show"]
            assert len(shows) >= SLOTS - 3, (board_id, len(shows))
            counts = Counter(r.headers["webhook-id"] for r in shows)
            assert max(counts.values()) == 1, (board_id, counts.most_common(2))
