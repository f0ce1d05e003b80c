"""PostgreSQL stopped for 60 s and started again (run by `make test-long`, which may stop the
machine's PostgreSQL: never run it beside other database work). Two replicas lead the push
boards between them; while the database is away they go on pushing from memory:

- every push board receives every slot, on time (by the slot's start, give or take
  ON_TIME; all but the first, pushed when the board was made), and none twice;
- polls keep answering 200 on both replicas, and no process exits; `displayd_rows_waiting`
  shows what the leaders keep half way through, and is 0 on both once the database is back;
- once the database is back the log is complete: a row for every slot of every board,
  the push boards' `delivered`, none `missed`, and each slot's row the one that was pushed.

It needs the leadership rule of issue 15 (a replica that loses its lock's connection because
the database is unreachable keeps leading its shards) as well as the leaders' backlog
(`displayd.delivery.backlog`)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.conftest import fresh_database_url
from tests.delivery.boards import FakeBoards, Received
from tests.delivery.test_processes import log_rows, prepare, serve, setup_campaign, wait_for
from tests.servers import Server

pytestmark = pytest.mark.slow

OUTAGE = 60.0
DWELL = 5
ON_TIME = 1.0  # seconds after a slot's start its push may arrive at the latest
PUSH_BOARDS = [f"bang-{n:02d}" for n in range(20)]


def cluster(action: str) -> None:
    version = subprocess.run(["ls", "/etc/postgresql"], capture_output=True, text=True, check=True).stdout.split()[0]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action, *(
        ["-m", "fast"] if action == "stop" else [])], check=True, timeout=60)


def pg_ready() -> bool:
    return subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"], check=False).returncode == 0


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    yield from fresh_database_url("postgresql", tmp_path)


def shows(boards: FakeBoards, board_id: str) -> list[tuple[Received, dict[str, object]]]:
    return [(r, body) for r in boards.received(board_id) if (body := json.loads(r.body))["type"] == "show"]


def slot_of(body: dict[str, object]) -> dict[str, object]:
    slot = body["slot"]
    assert isinstance(slot, dict)
    return slot


async def test_sixty_seconds_without_postgresql(pg_url: str, tmp_path: Path) -> None:
    async with FakeBoards() as boards:
        auth = await prepare(pg_url)
        servers = [await serve(pg_url, tmp_path, "a"), await serve(pg_url, tmp_path, "b")]
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                await setup_campaign(http, servers[0], auth, boards, PUSH_BOARDS)
                poller = (await http.post(f"{servers[0].url}/api/v1/boards", headers=auth["admin"], json={
                    "id": "bang-keo", "name": "Bảng kéo", "delivery": "poll"})).json()
                bearer = {"Authorization": f"Bearer {poller['token']}"}
                for server in servers:
                    for _ in range(60):
                        if (await http.get(f"{server.url}/api/v1/boards/bang-keo/current",
                                           headers=bearer)).status_code == 200:
                            break
                        await asyncio.sleep(0.1)
                await wait_for(lambda: all(len(shows(boards, b)) >= 2 for b in PUSH_BOARDS), 4 * DWELL)

                await asyncio.to_thread(cluster, "stop")
                stopped = time.time()
                answers: list[int] = []
                waiting: list[float] = []
                try:
                    while time.time() - stopped < OUTAGE:
                        for server in servers:
                            response = await http.get(f"{server.url}/api/v1/boards/bang-keo/current", headers=bearer)
                            answers.append(response.status_code)
                            assert server.process.poll() is None, "a process exited"
                        if not waiting and time.time() - stopped > OUTAGE / 2:
                            waiting = [await rows_waiting(http, server) for server in servers]
                        await asyncio.sleep(0.5)
                finally:
                    await asyncio.to_thread(cluster, "start")
                restarted = time.time()
                await asyncio.to_thread(lambda: wait_for_sync(pg_ready, 30))
                assert set(answers) == {200}, answers  # polls answered from memory throughout
                await asyncio.sleep(3 * DWELL)  # the backlogs are written within seconds
                for server in servers:
                    assert server.process.poll() is None, "a process exited"
                assert sum(waiting) > 0, waiting  # the leaders kept what they could not write
                assert [await rows_waiting(http, server) for server in servers] == [0, 0]  # and wrote it
        finally:
            if not pg_ready():
                await asyncio.to_thread(cluster, "start")
            for server in servers:
                await asyncio.to_thread(server.stop)

    rows = await log_rows(pg_url)
    for board_id in PUSH_BOARDS:
        received = shows(boards, board_id)
        indexes = [int(str(slot_of(body)["index"])) for _, body in received]
        assert len(set(indexes)) == len(indexes), f"{board_id}: a slot pushed twice"
        assert indexes == list(range(indexes[0], indexes[0] + len(indexes))), f"{board_id}: a slot not pushed"
        during = [(r, body) for r, body in received
                  if stopped <= datetime.fromisoformat(str(slot_of(body)["starts_at"])).timestamp() < restarted]
        assert len(during) >= OUTAGE // DWELL - 1, f"{board_id}: {len(during)} slots pushed during the outage"
        for r, body in received[1:]:  # the first came when the board was made, in the middle of its slot
            starts = datetime.fromisoformat(str(slot_of(body)["starts_at"])).timestamp()
            assert r.at <= starts + ON_TIME, f"{board_id}: slot {slot_of(body)['index']} {r.at - starts:.2f} s late"
        logged = {r.slot_index: r for r in rows if r.board_id == board_id}
        assert set(indexes) <= set(logged), f"{board_id}: slots pushed but not in the log"
        span = sorted(logged)
        assert span == list(range(span[0], span[-1] + 1)), f"{board_id}: the log has a gap"
        assert {logged[i].push_status for i in indexes} == {"delivered"}, board_id
        assert "missed" not in {r.push_status for r in logged.values()}, board_id
        for _, body in received:  # the row is what was pushed
            assert logged[int(str(slot_of(body)["index"]))].content_hash == body["content_hash"]
    polled = sorted(r.slot_index for r in rows if r.board_id == "bang-keo")
    assert polled == list(range(polled[0], polled[-1] + 1)), "the poll board's log has a gap"
    assert {r.push_status for r in rows if r.board_id == "bang-keo"} == {"not_pushed"}


async def rows_waiting(http: httpx.AsyncClient, server: Server) -> float:
    text = (await http.get(f"{server.url}/metrics", timeout=15)).text
    [line] = [line for line in text.splitlines() if line.startswith("displayd_rows_waiting ")]
    return float(line.split()[1])


def wait_for_sync(check: Callable[[], bool], limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("PostgreSQL did not come back")
