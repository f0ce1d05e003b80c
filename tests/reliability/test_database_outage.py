"""PostgreSQL stopped for 30 s and started again (run by `make test-long`, which may stop the
machine's PostgreSQL: never run it beside other database work). Polls keep answering from
memory, no process exits, and once the database is back a leader takes over, pushes resume
and the slots nobody could give are in the log as `missed`."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import fresh_database_url
from tests.delivery.boards import FakeBoards
from tests.delivery.test_processes import log_rows, prepare, serve, setup_campaign, wait_for

pytestmark = pytest.mark.slow

OUTAGE = 30.0
DWELL = 5


def cluster(action: str) -> None:
    version = subprocess.run(["ls", "/etc/postgresql"], capture_output=True, text=True, check=True).stdout.split()[0]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action, *(
        ["-m", "fast"] if action == "stop" else [])], check=True, timeout=60)


def pg_ready() -> bool:
    return subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"], check=False).returncode == 0


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    yield from fresh_database_url("postgresql", tmp_path)


async def test_thirty_seconds_without_postgresql(pg_url: str, tmp_path: Path) -> None:
    async with FakeBoards() as boards:
        auth = await prepare(pg_url)
        servers = [await serve(pg_url, tmp_path, "a"), await serve(pg_url, tmp_path, "b")]
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                await setup_campaign(http, servers[0], auth, boards, ["bang-day"])
                poller = (await http.post(f"{servers[0].url}/api/v1/boards", headers=auth["admin"], json={
                    "id": "bang-keo", "name": "Bảng kéo", "delivery": "poll"})).json()
                bearer = {"Authorization": f"Bearer {poller['token']}"}
                for server in servers:
                    for _ in range(60):
                        if (await http.get(f"{server.url}/api/v1/boards/bang-keo/current",
                                           headers=bearer)).status_code == 200:
                            break
                        await asyncio.sleep(0.1)
                await wait_for(lambda: len(boards.received("bang-day")) >= 2, 3 * DWELL)

                await asyncio.to_thread(cluster, "stop")
                stopped = time.monotonic()
                answers: list[int] = []
                try:
                    while time.monotonic() - stopped < OUTAGE:
                        for server in servers:
                            response = await http.get(f"{server.url}/api/v1/boards/bang-keo/current", headers=bearer)
                            answers.append(response.status_code)
                            assert server.process.poll() is None, "a process exited"
                        await asyncio.sleep(0.5)
                    ready = await http.get(f"{servers[0].url}/readyz")
                    assert ready.status_code == 503 and ready.json()["error"] == "unavailable"
                finally:
                    await asyncio.to_thread(cluster, "start")
                await asyncio.to_thread(lambda: wait_for_sync(pg_ready, 30))
                assert set(answers) == {200}, answers  # polls answered from memory throughout

                before = len(boards.received("bang-day"))
                await wait_for(lambda: len(boards.received("bang-day")) > before, 20)
                await asyncio.sleep(2 * DWELL)
                for server in servers:
                    assert server.process.poll() is None, "a process exited"
        finally:
            if not pg_ready():
                await asyncio.to_thread(cluster, "start")
            for server in servers:
                await asyncio.to_thread(server.stop)
    rows = [r for r in await log_rows(pg_url) if r.board_id == "bang-day"]
    indexes = [r.slot_index for r in rows]
    assert indexes == list(range(indexes[0], indexes[0] + len(indexes))), "every slot accounted for"
    assert sum(r.push_status == "missed" for r in rows) >= OUTAGE // DWELL - 2
    shows = [json.loads(r.body) for r in boards.received("bang-day") if json.loads(r.body)["type"] == "show"]
    assert len({(s["slot"]["campaign_id"], s["slot"]["index"]) for s in shows}) == len(shows), "none twice"


def wait_for_sync(check: Callable[[], bool], limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("PostgreSQL did not come back")
