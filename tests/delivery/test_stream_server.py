"""The event stream of a real `displayd serve` (uvicorn, the scheduler leading, the wall clock):
each slot arrives at least the stream lead before it starts, its rotation row is logged
delivered before it starts, and stopping the server ends every stream cleanly."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from displayd.protocol import STREAM_LEAD
from tests.cli import ROOT, run_displayd
from tests.servers import start_server

DWELL = 5
SLOTS = 3  # slots sent ahead to watch: about 15 s


def key(url: str, role: str) -> dict[str, str]:
    result = run_displayd("keys", "create", "--role", role, "--name", role, database_url=url)
    return {"Authorization": f"Bearer {result.stdout.splitlines()[-1]}"}


def parse(t: str) -> datetime:
    return datetime.fromisoformat(t.replace("Z", "+00:00"))


def read_events(lines: Any, count: int) -> list[tuple[float, str, dict[str, Any]]]:
    """(arrival wall-clock time, id, data) of the next `count` `show` events."""
    shows: list[tuple[float, str, dict[str, Any]]] = []
    fields: dict[str, str] = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
            continue
        if fields.get("event") == "show":
            shows.append((time.time(), fields["id"], json.loads(fields["data"])))
            if len(shows) == count:
                return shows
        fields = {}
    raise AssertionError(f"the stream ended after {len(shows)} shows")


def test_a_served_stream_sends_each_slot_ahead_logs_it_and_ends_when_the_server_stops(tmp_path: Path) -> None:
    database = tmp_path / "displayd.db"
    url = f"sqlite+aiosqlite:///{database}"
    run_displayd("db", "upgrade", database_url=url)
    run_displayd("slogans", "import", str(ROOT / "slogans" / "huong-dan-101-muc-IV.yaml"), database_url=url)
    admin, editor = key(url, "admin"), key(url, "editor")
    server = start_server(url, tmp_path)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            board = http.post("/api/v1/boards", headers=admin, json={"id": "bang-s", "name": "Bảng S",
                                                                     "delivery": "poll"}).json()
            with sqlite3.connect(database) as db:  # `delivery: stream` is not taken by the API (yet)
                db.execute("UPDATE board SET delivery = 'stream' WHERE id = 'bang-s'")
                db.execute("UPDATE change_version SET version = version + 1")
            time.sleep(1.5)  # the server notices within change_poll_seconds (1)
            ids = [s["id"] for s in http.get("/api/v1/slogans", headers=editor).json()["items"]]
            start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
            made = http.post("/api/v1/campaigns", headers=editor, json={
                "name": "Luồng", "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1)).isoformat(),
                "dwell_seconds": DWELL, "playlist": [{"slogan_id": i, "weight": 1} for i in ids],
                "targets": {"all": True}})
            assert made.status_code == 201, made.text

            events = f"/api/v1/boards/bang-s/events?token={board['token']}"
            with http.stream("GET", events) as response:
                assert response.status_code == 200
                assert response.headers["content-type"] == "text/event-stream"
                shows = read_events(response.iter_lines(), SLOTS + 1)
            ahead = shows[1:]  # the first is the slot under way when the stream opened
            print("slots arrived " + ", ".join(f"{parse(d['slot']['starts_at']).timestamp() - t:.3f} s"
                                               for t, _, d in ahead) + " before they started")
            for arrived, ident, data in ahead:
                starts_at = parse(data["slot"]["starts_at"]).timestamp()
                assert ident == f"bang-s:{made.json()['id']}:{data['slot']['index']}:0"
                assert starts_at - arrived >= STREAM_LEAD - 0.5, (ident, starts_at - arrived)

            # Each slot streamed is logged delivered, before it started (the log is written every 2 s).
            slots = [data["slot"]["index"] for _, _, data in ahead]
            deadline = time.monotonic() + 10
            while True:
                with sqlite3.connect(database) as db:
                    rows = db.execute(
                        f"SELECT slot_index, push_status, delivered_at, starts_at FROM rotation WHERE board_id = "
                        f"'bang-s' AND slot_index IN ({','.join(map(str, slots))})").fetchall()
                if (len(rows) == len(slots) and all(row[1] == "delivered" for row in rows)) or \
                        time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert sorted(row[0] for row in rows) == slots
            for _, status, delivered_at, starts_at in rows:
                assert status == "delivered" and delivered_at is not None and delivered_at < starts_at

            with http.stream("GET", events) as response:
                lines = response.iter_lines()
                read_events(lines, 1)
                stopping = time.monotonic()
                os.killpg(server.process.pid, signal.SIGTERM)
                rest = list(lines)  # the last chunk arrives: a clean end, not a broken connection
                assert time.monotonic() - stopping < 5, rest
            server.process.wait(10)
            assert time.monotonic() - stopping < 8
        log = server.log.read_text()
        assert "ERROR" not in log and "Traceback" not in log, log
    finally:
        server.stop()
