"""Real `displayd serve` processes on loopback, for tests that need more than one process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.cli import DISPLAYD, ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def kill(self) -> None:
        """`kill -9`: no clean-up of any kind."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPLAYD_")}
    env.update({
        "DISPLAYD_DATABASE_URL": database_url,
        "DISPLAYD_SECRET_KEY": "test-secret-key-0123456789abcdef0123456789",
        "DISPLAYD_ALLOWED_BOARD_NETWORKS": '["127.0.0.0/8"]',
        "DISPLAYD_CHANGE_POLL_SECONDS": "1",
    })
    env.update(extra)
    return env


def start_server(database_url: str, log_dir: Path, name: str = "displayd", *, port: int | None = None,
                 **extra: str) -> Server:
    """`displayd serve` on `port` (a free one by default), ready when it returns."""
    port = port or free_port()
    log = log_dir / f"{name}-{port}-{time.monotonic_ns()}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [DISPLAYD, "serve", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT,
            env=server_env(database_url, **extra), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{name} exited ({process.returncode}):\n{log.read_text()}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.kill()
    raise AssertionError(f"{name} did not become ready:\n{log.read_text()}")


@contextmanager
def servers(database_url: str, log_dir: Path, count: int, **extra: str) -> Iterator[list[Server]]:
    started: list[Server] = []
    try:
        for n in range(count):
            started.append(start_server(database_url, log_dir, f"displayd-{n}", **extra))
        yield started
    finally:
        for server in started:
            server.stop()
