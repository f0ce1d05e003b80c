"""On SQLite no client ever sees "database is locked": polls with hostile headers, slogan and
campaign writes and the leader's slot boundaries run together against one real `displayd
serve`, and every answer is below 500."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from displayd.app import create_app
from displayd.db import migrate
from displayd.db import session as session_module
from tests.conftest import make_keys, make_settings
from tests.delivery.boards import FakeBoards
from tests.delivery.test_processes import prepare, serve, setup_campaign

pytestmark = pytest.mark.db  # its own SQLite file, not the fixtures'

RUN_SECONDS = 12.0  # two slot boundaries and more at a 5 s dwell
PUSH_BOARDS = [f"bang-day-{n}" for n in range(40)]


async def test_writes_polls_and_boundaries_together_never_answer_5xx(tmp_path: Path, boards: FakeBoards) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'displayd.db'}"
    auth = await prepare(url)
    server = await serve(url, tmp_path, "contention")
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    rng = random.Random(7)
    try:
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=64)) as http:
            made = await setup_campaign(http, server, auth, boards, PUSH_BOARDS)
            tokens = {}
            for n in range(20):
                response = await http.post(f"{server.url}/api/v1/boards", headers=auth["admin"], json={
                    "id": f"bang-keo-{n}", "name": f"Bảng {n}", "delivery": "poll"})
                tokens[f"bang-keo-{n}"] = response.json()["token"]
            deadline = time.monotonic() + RUN_SECONDS

            def seen(response: httpx.Response, what: str) -> None:
                statuses[response.status_code] += 1
                if response.status_code >= 500:
                    failures.append(f"{what}: {response.status_code} {response.text[:200]}")

            async def hostile_polls() -> None:
                while time.monotonic() < deadline:
                    board_id, token = rng.choice(list(tokens.items()))
                    tags = ", ".join(f'"{rng.randint(1, 9)}-{rng.randint(0, 10**6)}-{rng.getrandbits(256):064x}"'
                                     for _ in range(rng.choice((1, 5, 300))))
                    response = await http.get(f"{server.url}/api/v1/boards/{board_id}/current", headers={
                        "Authorization": f"Bearer {token}", "If-None-Match": tags})
                    seen(response, "poll")

            async def slogan_writes(writer: int) -> None:
                n = 0
                while time.monotonic() < deadline:
                    n += 1
                    response = await http.post(f"{server.url}/api/v1/slogans", headers=auth["editor"],
                                               json={"text": f"Khẩu hiệu thử {writer}-{n}"})
                    seen(response, "slogan create")
                    if response.status_code == 201:
                        seen(await http.patch(f"{server.url}/api/v1/slogans/{response.json()['id']}",
                                              headers=auth["editor"], json={"tags": ["thu"]}), "slogan edit")

            async def campaign_writes() -> None:
                campaign_id = made["campaign"]["id"]
                while time.monotonic() < deadline:
                    # Each edit is a change: every board's plan is rebuilt and the leader syncs.
                    seen(await http.patch(f"{server.url}/api/v1/campaigns/{campaign_id}", headers=auth["editor"],
                                          json={"priority": rng.randint(1, 900)}), "campaign edit")
                    await asyncio.sleep(0.2)

            await asyncio.gather(*[hostile_polls() for _ in range(12)], slogan_writes(1), slogan_writes(2),
                                 campaign_writes())
            pushed = sum(1 for board_id in PUSH_BOARDS for _ in boards.received(board_id))
    finally:
        server.stop()
    log = server.log.read_text()
    assert not failures, failures[:5]
    assert "database is locked" not in log
    assert statuses[200] > 100 and statuses[201] > 10, statuses
    assert pushed >= 2 * len(PUSH_BOARDS)  # the boundaries ran all along


async def test_a_writer_that_waits_out_the_busy_timeout_gets_503_not_the_databases_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(session_module, "SQLITE_BUSY_TIMEOUT_MS", 200)
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'locked.db'}")
    await asyncio.to_thread(migrate.upgrade, settings)
    keys = await make_keys(settings)
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://displayd.test") as client:
        holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # another writer that never lets go
        try:
            response = await client.post("/api/v1/slogans", json={"text": "Khẩu hiệu"}, headers=keys.auth("editor"))
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "busy" and "locked" not in response.text
    assert response.headers["retry-after"] == "1"
