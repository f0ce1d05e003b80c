"""The scheduler in real `displayd serve` processes, pushing to real loopback boards:
boundaries, signatures, retirements within 5 s, two replicas sharing the boards, take-over
after `kill -9`, and missed slots after a crash."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from displayd.config import Settings
from displayd.db.models import Rotation
from displayd.db.session import create_engine, create_sessionmaker
from tests.cli import ROOT, run_displayd
from tests.conftest import fresh_database_url
from tests.delivery.boards import FakeBoards, Received
from tests.delivery.test_dispatch import verify
from tests.servers import Server, start_server

DWELL = 5


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from fresh_database_url(str(request.param), tmp_path)


@pytest.fixture
def pg_database(tmp_path: Path) -> Iterator[str]:
    yield from fresh_database_url("postgresql", tmp_path)


async def prepare(url: str) -> dict[str, dict[str, str]]:
    """Migrate, import the slogans, make keys; the auth headers by role."""
    def work() -> dict[str, dict[str, str]]:
        run_displayd("db", "upgrade", database_url=url)
        run_displayd("slogans", "import", str(ROOT / "slogans" / "huong-dan-101-muc-IV.yaml"), database_url=url)
        headers = {}
        for role in ("admin", "editor", "approver"):
            out = run_displayd("keys", "create", "--role", role, "--name", f"{role} thử", database_url=url)
            headers[role] = {"Authorization": f"Bearer {out.stdout.splitlines()[-1]}"}
        return headers
    return await asyncio.to_thread(work)


async def serve(url: str, tmp_path: Path, name: str) -> Server:
    return await asyncio.to_thread(start_server, url, tmp_path, name)


async def setup_campaign(http: httpx.AsyncClient, server: Server, auth: dict[str, dict[str, str]],
                         boards: FakeBoards, board_ids: list[str], dwell: int = DWELL) -> dict[str, Any]:
    slogans = (await http.get(f"{server.url}/api/v1/slogans", headers=auth["editor"])).json()["items"]
    now = datetime.now(UTC)
    start = now.replace(second=0, microsecond=0)
    campaign = (await http.post(f"{server.url}/api/v1/campaigns", headers=auth["editor"], json={
        "name": "Kỷ niệm 70 năm", "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1)).isoformat(),
        "dwell_seconds": dwell, "playlist": [{"slogan_id": s["id"], "weight": 1} for s in slogans],
        "targets": {"all": True}})).json()
    secrets = {}
    for board_id in board_ids:
        response = await http.post(f"{server.url}/api/v1/boards", headers=auth["admin"], json={
            "id": board_id, "name": board_id, "delivery": "push", "endpoint_url": boards.url("ok", board_id)})
        assert response.status_code == 201, response.text
        secrets[board_id] = response.json()["secret"]
    return {"campaign": campaign, "secrets": secrets}


async def wait_for(check: Any, limit: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if check():
            return time.monotonic() - start
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {limit} s")


def shows(received: list[Received]) -> list[Received]:
    return [r for r in received if json.loads(r.body)["type"] == "show"]


async def log_rows(url: str) -> list[Rotation]:
    engine = create_engine(Settings(database_url=url))
    async with create_sessionmaker(engine)() as session:
        rows = list(await session.scalars(select(Rotation).order_by(Rotation.starts_at, Rotation.board_id)))
    await engine.dispose()
    return rows


async def test_pushes_at_slot_boundaries_signed_and_logged(database: str, tmp_path: Path,
                                                           boards: FakeBoards) -> None:
    auth = await prepare(database)
    server = await serve(database, tmp_path, "leader")
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            made = await setup_campaign(http, server, auth, boards, ["bang-1", "bang-2"])
            await wait_for(lambda: len(shows(boards.received("bang-1"))) >= 3, 4 * DWELL)
            for board_id in ("bang-1", "bang-2"):
                pushes = shows(boards.received(board_id))
                for push in pushes:
                    assert verify(made["secrets"][board_id], push.headers, push.body)
                    body = json.loads(push.body)
                    slot = body["slot"]
                    assert push.headers["webhook-id"] == f"{board_id}:{slot['campaign_id']}:{slot['index']}:0"
                    assert body["content_hash"].startswith("sha256:")
                    schedule = (await http.get(f"{server.url}/api/v1/boards/{board_id}/schedule", headers=auth["admin"],
                                               params={"from": slot["starts_at"], "to": slot["ends_at"]})).json()
                    assert schedule["items"][0]["content_hash"] == body["content_hash"]
                # Consecutive slots, each pushed once.
                indexes = [json.loads(p.body)["slot"]["index"] for p in pushes]
                assert indexes == list(range(indexes[0], indexes[0] + len(indexes)))
    finally:
        await asyncio.to_thread(server.stop)
    rows = await log_rows(database)
    delivered = [r for r in rows if r.push_status == "delivered"]
    assert len(delivered) >= 4
    for row in delivered:
        assert row.starts_at <= row.delivered_at < row.ends_at  # type: ignore[operator]


async def test_a_retirement_reaches_push_boards_within_5_s(tmp_path: Path, boards: FakeBoards) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'retire.db'}"
    auth = await prepare(url)
    server = await serve(url, tmp_path, "leader")
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            await setup_campaign(http, server, auth, boards, ["bang-1"], dwell=600)
            await wait_for(lambda: shows(boards.received("bang-1")), 10)
            shown = json.loads(boards.received("bang-1")[-1].body)["content"]["slogan_id"]
            before = len(boards.received("bang-1"))
            retired = await http.post(f"{server.url}/api/v1/slogans/{shown}/retire", headers=auth["approver"],
                                      json={"reason": "Thu hồi"})
            assert retired.status_code == 200
            await wait_for(lambda: len(boards.received("bang-1")) > before, 5)
            assert json.loads(boards.received("bang-1")[-1].body)["type"] == "blank"
    finally:
        await asyncio.to_thread(server.stop)


def sender(received: Received, servers: list[Server]) -> int:
    """The pid of the replica that pushed it: the push user-agent names it."""
    return next(s.process.pid for s in servers if f":{s.process.pid})" in received.headers["user-agent"])


async def test_two_replicas_share_the_boards_and_a_kill_9_moves_its_shards(
        pg_database: str, tmp_path: Path, boards: FakeBoards) -> None:
    """Both replicas push (each its shards' boards: `displayd.delivery.shards`); after a `kill -9`
    of one, the other pushes its boards within 15 s; no slot is pushed twice by either."""
    board_ids = [f"bang-{n}" for n in range(1, 9)]  # shards on both sides of 32
    auth = await prepare(pg_database)
    first = await serve(pg_database, tmp_path, "a")
    second = await serve(pg_database, tmp_path, "b")
    servers = [first, second]

    def latest_senders() -> dict[str, int]:
        return {b: sender(shows(boards.received(b))[-1], servers) for b in board_ids if shows(boards.received(b))}

    try:
        async with httpx.AsyncClient(timeout=10) as http:
            await setup_campaign(http, first, auth, boards, board_ids)
            # The first alone led every shard; the second joined and took its fair share.
            pids = {first.process.pid, second.process.pid}
            await wait_for(lambda: set(latest_senders().values()) == pids, 30)
            victim = first if latest_senders()["bang-1"] == first.process.pid else second
            survivor = (pids - {victim.process.pid}).pop()
            orphans = [b for b, pid in latest_senders().items() if pid == victim.process.pid]
            await asyncio.to_thread(victim.kill)
            killed_at = time.monotonic()
            await wait_for(lambda: all(latest_senders()[b] == survivor for b in orphans), 15)
            assert time.monotonic() - killed_at <= 15
            await asyncio.sleep(DWELL)
    finally:
        for server in servers:
            await asyncio.to_thread(server.stop)
    for board_id in board_ids:
        ids = Counter(r.headers["webhook-id"] for r in shows(boards.received(board_id)))
        assert ids and max(ids.values()) == 1, ids  # no slot pushed twice, by either
    rows = await log_rows(pg_database)
    assert len({(r.board_id, r.campaign_id, r.slot_index) for r in rows}) == len(rows)


async def test_kill_9_and_restart_records_missed_slots(tmp_path: Path, boards: FakeBoards) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}"
    auth = await prepare(url)
    server = await serve(url, tmp_path, "before")
    async with httpx.AsyncClient(timeout=10) as http:
        await setup_campaign(http, server, auth, boards, ["bang-1"])
    await wait_for(lambda: shows(boards.received("bang-1")), 2 * DWELL)
    await asyncio.to_thread(server.kill)
    await asyncio.sleep(3 * DWELL)
    restarted = await serve(url, tmp_path, "after")
    try:
        pushed = len(shows(boards.received("bang-1")))
        await wait_for(lambda: len(shows(boards.received("bang-1"))) > pushed, 2 * DWELL)
        # The missed slots are written in the background once the present is pushed.
        for _ in range(int(2 * DWELL / 0.1)):
            if [r.push_status for r in await log_rows(url)].count("missed") >= 2:
                break
            await asyncio.sleep(0.1)
    finally:
        await asyncio.to_thread(restarted.stop)
    rows = await log_rows(url)
    statuses = [r.push_status for r in rows]
    assert statuses.count("missed") >= 2, statuses
    indexes = [r.slot_index for r in rows]
    assert indexes == list(range(indexes[0], indexes[0] + len(indexes))), "every slot accounted for, once"
    assert all(r.push_status in ("delivered", "missed", "failed") for r in rows)
