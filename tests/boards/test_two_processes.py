"""Two real `displayd serve` processes sharing one PostgreSQL database: a change made
through one is what boards polling the other see within 5 seconds."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.cli import ROOT, run_displayd
from tests.conftest import fresh_database_url
from tests.servers import servers

PROPAGATION_LIMIT = 5.0


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    yield from fresh_database_url("postgresql", tmp_path)


def key(url: str, role: str, name: str) -> dict[str, str]:
    result = run_displayd("keys", "create", "--role", role, "--name", name, database_url=url)
    return {"Authorization": f"Bearer {result.stdout.splitlines()[-1]}"}


def wait_for(check: Callable[[], bool], limit: float) -> float:
    """Seconds until `check()` held; fails after `limit`."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if check():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"not seen within {limit} s")


def test_changes_reach_the_other_process_within_5_s(pg_url: str, tmp_path: Path) -> None:
    run_displayd("db", "upgrade", database_url=pg_url)
    run_displayd("slogans", "import", str(ROOT / "slogans" / "huong-dan-101-muc-IV.yaml"), database_url=pg_url)
    admin, editor = key(pg_url, "admin", "Quản trị"), key(pg_url, "editor", "Chuyên viên")
    approver = key(pg_url, "approver", "Lãnh đạo")
    with servers(pg_url, tmp_path, 2) as (a, b), httpx.Client(timeout=5) as http:
        ids = [s["id"] for s in http.get(f"{a.url}/api/v1/slogans", headers=editor).json()["items"]]
        now = datetime.now(UTC)
        campaign = http.post(f"{a.url}/api/v1/campaigns", headers=editor, json={
            "name": "Kỷ niệm 70 năm", "starts_at": (now - timedelta(minutes=1)).isoformat(),
            "ends_at": (now + timedelta(days=1)).isoformat(), "dwell_seconds": 3600,
            "playlist": [{"slogan_id": i, "weight": 1} for i in ids], "targets": {"all": True}}).json()
        board = http.post(f"{a.url}/api/v1/boards", headers=admin,
                          json={"id": "bang-b", "name": "Bảng B", "delivery": "poll"}).json()
        token = {"Authorization": f"Bearer {board['token']}"}

        def poll_b() -> httpx.Response:
            return http.get(f"{b.url}/api/v1/boards/bang-b/current", headers=token)

        wait_for(lambda: poll_b().status_code == 200, PROPAGATION_LIMIT)
        first = poll_b()
        shown = first.json()["content"]["slogan_id"]

        retired = http.post(f"{a.url}/api/v1/slogans/{shown}/retire", headers=approver, json={"reason": "Thu hồi"})
        assert retired.status_code == 200
        # Process A answers at once; process B within 5 s, with a new ETag and without that slogan.
        assert http.get(f"{a.url}/api/v1/boards/bang-b/current", headers=token).json()["content"]["slogan_id"] != shown

        def b_moved_on() -> bool:
            response = http.get(f"{b.url}/api/v1/boards/bang-b/current",
                                headers={**token, "If-None-Match": first.headers["etag"]})
            return response.status_code == 200 and response.json()["content"]["slogan_id"] != shown

        wait_for(b_moved_on, PROPAGATION_LIMIT)

        paused = http.post(f"{a.url}/api/v1/campaigns/{campaign['id']}/pause", headers=editor)
        assert paused.status_code == 200
        wait_for(lambda: poll_b().json()["state"] == "idle", PROPAGATION_LIMIT)

        renewed = http.post(f"{a.url}/api/v1/boards/bang-b/credentials", headers=admin).json()
        wait_for(lambda: poll_b().status_code == 401, PROPAGATION_LIMIT)
        assert http.get(f"{b.url}/api/v1/boards/bang-b/current",
                        headers={"Authorization": f"Bearer {renewed['token']}"}).status_code == 200


NOTIFIED_LIMIT = 1.0  # well under the 5 s the version row would take: only the notification is this fast


def test_on_postgresql_a_change_reaches_the_other_process_by_notification(pg_url: str, tmp_path: Path) -> None:
    """With the version row checked only every 5 s, a change made through A still reaches B's
    memory at once: NOTIFY at commit, LISTEN in every process (DESIGN: within 200 ms)."""
    run_displayd("db", "upgrade", database_url=pg_url)
    run_displayd("slogans", "import", str(ROOT / "slogans" / "huong-dan-101-muc-IV.yaml"), database_url=pg_url)
    admin, editor = key(pg_url, "admin", "Quản trị"), key(pg_url, "editor", "Chuyên viên")
    with servers(pg_url, tmp_path, 2, DISPLAYD_CHANGE_POLL_SECONDS="5") as (a, b), httpx.Client(timeout=5) as http:
        ids = [s["id"] for s in http.get(f"{a.url}/api/v1/slogans", headers=editor).json()["items"]]
        board = http.post(f"{a.url}/api/v1/boards", headers=admin,
                          json={"id": "bang-b", "name": "Bảng B", "delivery": "poll"}).json()
        token = {"Authorization": f"Bearer {board['token']}"}
        wait_for(lambda: http.get(f"{b.url}/api/v1/boards/bang-b/current", headers=token).status_code == 200,
                 PROPAGATION_LIMIT)

        def shown_on_b() -> int | None:
            """The slogan B answers with; no content (before the first campaign arrives) is None."""
            content = http.get(f"{b.url}/api/v1/boards/bang-b/current", headers=token).json()["content"]
            return None if content is None else content["slogan_id"]

        now = datetime.now(UTC)
        timings = []
        for round_ in range(3):  # several changes: each one notified, none left to the 5 s check
            made = http.post(f"{a.url}/api/v1/campaigns", headers=editor, json={
                "name": f"Đợt {round_}", "starts_at": (now - timedelta(minutes=1)).isoformat(),
                "ends_at": (now + timedelta(days=1)).isoformat(), "dwell_seconds": 3600, "priority": 100 + round_,
                "playlist": [{"slogan_id": ids[round_], "weight": 1}], "targets": {"all": True}})
            assert made.status_code == 201, made.text
            timings.append(wait_for(lambda round_=round_: shown_on_b() == ids[round_], NOTIFIED_LIMIT))
        print(f"seen by the other process after {', '.join(f'{t * 1000:.0f} ms' for t in timings)}")
