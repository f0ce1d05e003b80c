"""`displayd demo` as a newcomer runs it: a real process, its printed URLs and keys, simulated
boards that verify signatures and show the imported slogans slot after slot, a forged push
refused, Ctrl-C exiting 0, and a second run on the same directory starting afresh."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx

from displayd.catalog.importer import parse_document
from displayd.demo import PUSH_BOARDS, slogans_file
from tests.cli import DISPLAYD
from tests.servers import free_port

SHOWN = re.compile(r"^\[(?P<board>[a-z0-9-]+)\] \d\d:\d\d:\d\d ✓ (?P<text>.+)  \(slot (?P<slot>\d+), until ")


class Demo:
    """`displayd demo` in `cwd`, its stdout read line by line in the background."""

    def __init__(self, cwd: Path, port: int, dwell: int = 5) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DISPLAYD_")}
        self.process = subprocess.Popen([DISPLAYD, "demo", "--port", str(port), "--dwell", str(dwell)], cwd=cwd,
                                        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        encoding="utf-8")
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, done: object, limit: float) -> list[str]:
        """Read lines until `done(lines)` is true (or fail after `limit` seconds)."""
        deadline = time.monotonic() + limit
        while not done(self.lines):  # type: ignore[operator]
            try:
                line = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.stop()
                raise AssertionError("demo ended or timed out:\n" + "\n".join(self.lines) + "\n" + self.stderr())
            self.lines.append(line)
        return self.lines

    def interrupt(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(20)
        self.until(lambda lines: "displayd demo stopped." in lines, 5)
        return code, self.stderr()

    def stderr(self) -> str:
        if self.process.poll() is None:
            return ""
        assert self.process.stderr is not None
        return self.process.stderr.read()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def banner_done(lines: list[str]) -> bool:
    return "Ctrl-C stops the demo." in lines


def field(lines: list[str], label: str) -> str:
    [value] = [line.split()[-1] for line in lines if line.strip().startswith(label + " ")]
    return value


def slots_shown(lines: list[str]) -> dict[int, dict[str, str]]:
    """What each board showed, by slot index."""
    slots: dict[int, dict[str, str]] = defaultdict(dict)
    for line in lines:
        if match := SHOWN.match(line):
            slots[int(match["slot"])][match["board"]] = match["text"]
    return slots


def two_full_slots(lines: list[str]) -> bool:
    slots = slots_shown(lines)
    return any(len(slots.get(k, {})) == 3 and len(slots.get(k + 1, {})) == 3 for k in slots)


def test_demo_rotates_verified_slogans_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    demo = Demo(tmp_path, port)
    try:
        lines = demo.until(banner_done, 60)
        assert field(lines, "dashboard") == f"{base}/ui"
        assert field(lines, "API docs") == f"{base}/docs"
        player = field(lines, "player")
        assert player.startswith(f"{base}/play/man-hinh-le-tan?token=bt_")
        keys = {role: field(lines, role) for role in ("admin", "editor", "approver", "operator")}
        assert all(key.startswith("dk_") for key in keys.values())
        assert (tmp_path / "var" / "demo.db").is_file()  # relative to the working directory

        with httpx.Client(base_url=base, timeout=10) as http:
            assert http.get("/docs").status_code == 200
            boards = http.get("/api/v1/boards", headers={"Authorization": f"Bearer {keys['operator']}"})
            assert boards.status_code == 200
            assert {b["id"] for b in boards.json()["items"]} == {*(b.id for b in PUSH_BOARDS), "man-hinh-le-tan"}
            token = player.split("token=", 1)[1]
            current = http.get("/api/v1/boards/man-hinh-le-tan/current", headers={"Authorization": f"Bearer {token}"})
            assert current.status_code == 200 and current.json()["state"] == "showing"
            assert http.get("/metrics").status_code == 200
            # A push signed with the wrong secret is refused, and the board says so.
            [listed] = [line for line in lines if "simulated push boards:" in line]
            [board_url] = [url for url in listed.split(": ", 1)[1].split(", ") if url.endswith("/bang-sanh")]
            forged = httpx.post(board_url, content=b'{"type":"show"}', headers={
                "webhook-id": "bang-sanh:0:0", "webhook-timestamp": str(int(time.time())),
                "webhook-signature": "v1,bm90IHRoZSByaWdodCBzaWduYXR1cmU="}, timeout=5)
            assert forged.status_code == 401
        demo.until(lambda lines: any("[bang-sanh]" in ln and "✗" in ln for ln in lines), 5)

        lines = demo.until(two_full_slots, 30)
        imported = {item.text for item in parse_document(slogans_file())[2]}
        slots = slots_shown(lines)
        assert slots and all(text in imported for shown in slots.values() for text in shown.values())
        for shown in slots.values():  # offsets 0, 1, 2: three different slogans in a slot
            if len(shown) == 3:
                assert len(set(shown.values())) == 3
        code, stderr = demo.interrupt()
        assert code == 0
        assert "Traceback" not in stderr, stderr
    finally:
        demo.stop()

    # Again in the same directory: the old demo database is deleted, and it comes up as before.
    again = Demo(tmp_path, port)
    try:
        lines = again.until(lambda lines: banner_done(lines) and bool(slots_shown(lines)), 60)
        assert any("deleted the previous demo database" in line for line in lines)
        code, stderr = again.interrupt()
        assert code == 0 and "Traceback" not in stderr, stderr
    finally:
        again.stop()
