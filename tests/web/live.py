"""A real `displayd serve` on a port of our choosing, for the browser tests.

`tests.servers.start_server` picks a free port each time; the player's restart test needs
displayd to come back on the same port (the page's origin), so this starts the same
command with the same environment on a given port.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.cli import ROOT, run_displayd
from tests.servers import Server, free_port, start_server

SLOGANS_FILE = ROOT / "slogans" / "huong-dan-101-muc-IV.yaml"
XSS_TEXT = "<b>Đậm</b> <script>window.__xss=1</script>"


def start_on_port(database_url: str, log_dir: Path, port: int, name: str = "displayd") -> Server:
    return start_server(database_url, log_dir, name, port=port)


@dataclass
class Live:
    """One displayd with boards and campaigns made through its API; `restart()` keeps the port."""

    database_url: str
    log_dir: Path
    port: int
    server: Server | None = None
    keys: dict[str, str] = field(default_factory=dict)
    boards: dict[str, dict[str, Any]] = field(default_factory=dict)
    slogans: dict[int, str] = field(default_factory=dict)
    campaign_id: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.server = start_on_port(self.database_url, self.log_dir, self.port)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()  # SIGTERM to the process group, as an operator's stop would
            self.server = None

    def api(self, method: str, path: str, who: str = "admin", body: Any = None) -> Any:
        response = httpx.request(method, self.url + path, json=body, timeout=10,
                                 headers={"Authorization": f"Bearer {self.keys[who]}"})
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response.json() if response.content else None


def prepare(tmp: Path) -> Live:
    """A migrated SQLite database with keys and the section IV slogans, and displayd on it."""
    database_url = f"sqlite+aiosqlite:///{tmp / 'web.db'}"
    run_displayd("db", "upgrade", database_url=database_url)
    live = Live(database_url, tmp, free_port())
    for who, role, name in [("admin", "admin", "Quản trị"), ("approver", "approver", "Lãnh đạo Sở")]:
        out = run_displayd("keys", "create", "--role", role, "--name", name, database_url=database_url)
        live.keys[who] = out.stdout.strip().splitlines()[-1]
    run_displayd("slogans", "import", str(SLOGANS_FILE), database_url=database_url)
    live.start()
    return live


def populate(live: Live) -> None:
    """Boards, a 5-second campaign on three of them, and a marked-up slogan on a fourth."""
    approved = live.api("GET", "/api/v1/slogans?status=approved&limit=1000")["items"]
    live.slogans = {s["id"]: s["text"] for s in approved}
    playlist = [s["id"] for s in approved[:3]]
    for board_id, name, max_chars, lines in [("sanh-chinh", "Bảng sảnh chính", 32, 3),
                                             ("cong-truoc", "Bảng cổng trước", 40, 2),
                                             ("man-hinh", "Màn hình phòng họp", 60, 3),
                                             ("bang-thu", "Bảng thử nghiệm", 40, 2)]:
        live.boards[board_id] = live.api("POST", "/api/v1/boards", body={
            "id": board_id, "name": name, "location": "Trụ sở Sở", "delivery": "poll",
            "max_chars": max_chars, "lines": lines})
    xss = live.api("POST", "/api/v1/slogans", body={"text": XSS_TEXT})
    live.api("POST", f"/api/v1/slogans/{xss['id']}/approve", body={"content_hash": xss["content_hash"]},
             who="approver")
    live.slogans[xss["id"]] = XSS_TEXT
    # A whole minute in the past, so slot boundaries fall on multiples of 5 s.
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    window = {"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat(),
              "dwell_seconds": 5}
    campaign = live.api("POST", "/api/v1/campaigns", body={
        "name": "Kỷ niệm 70 năm Chiến thắng Điện Biên Phủ", **window,
        "playlist": [{"slogan_id": s, "weight": 1} for s in playlist],
        "targets": {"boards": ["sanh-chinh", "cong-truoc", "man-hinh"]}})
    live.campaign_id = campaign["id"]
    live.api("POST", "/api/v1/campaigns", body={
        "name": "Thử hiển thị ký tự đặc biệt", **window, "priority": 200,
        "playlist": [{"slogan_id": xss["id"], "weight": 1}], "targets": {"boards": ["bang-thu"]}})
