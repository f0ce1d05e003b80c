"""Child processes of a benchmark: free ports, process groups stopped on every exit, readiness, memory.

    procs = Processes()
    child = procs.start("boards", module_argv("bench.harness.receiver", "fast", "--port", "8123"),
                        env=python_env(), cwd=workdir, log_path=workdir / "boards.log")
    wait_ready(child, "http://127.0.0.1:8123/stats")
    ...
    procs.stop_all()   # SIGTERM, then SIGKILL, to every child's process group

Every child is started in a process group of its own, so `stop_all()` also ends what a child
started itself; `bench.harness.running.run_bench` calls it on every exit, Ctrl-C and SIGTERM
included. Children run this checkout's code (`python_env()` puts it first on PYTHONPATH), not
whatever copy of displayd the virtualenv has installed.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

LOOPBACK = "127.0.0.1"
LOOPBACK_NETWORKS = ["127.0.0.0/8"]
REPO = Path(__file__).resolve().parents[2]  # the checkout: its displayd and its bench


class BenchError(RuntimeError):
    """Something broke: the measurement is not valid."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now (bind port 0 and give it back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def python_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process' environment with the checkout first on PYTHONPATH, plus `extra`."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(extra or {})
    return env


def module_argv(module: str, *args: str) -> list[str]:
    """`python -m module args…` with this interpreter (start it with `python_env()`)."""
    return [sys.executable, "-m", module, *args]


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path | None

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def check_alive(self) -> None:
        """BenchError with the log's last lines when the child has exited."""
        if self.process.poll() is not None:
            raise BenchError(f"{self.name} exited with status {self.process.returncode}:\n{self.log_tail(60)}")


class Processes:
    """The children a benchmark started; `stop_all()` ends every one of their process groups."""

    def __init__(self) -> None:
        self.children: list[Child] = []
        self._logs: list[IO[bytes]] = []

    def start(self, name: str, argv: list[str], *, env: dict[str, str], cwd: Path, log_path: Path | None = None,
              stdout: int | None = None, stderr: int | None = None, cpus: set[int] | None = None) -> Child:
        out: IO[bytes] | int | None = stdout
        if log_path is not None:
            log = log_path.open("ab")
            self._logs.append(log)
            out = log
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT if log_path else stderr,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        child = Child(name, process, log_path)
        self.children.append(child)
        if cpus:
            os.sched_setaffinity(process.pid, cpus)  # before it starts threads or serves: they inherit it
        return child

    @staticmethod
    def stop(child: Child, grace: float = 5.0) -> None:
        process = child.process
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(grace)
        # The leader may be gone while others in its group live on: SIGKILL the group regardless.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace)

    def kill(self, child: Child) -> None:
        """`kill -9` one child (its whole process group), with no warning, and forget it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(10)
        if child in self.children:
            self.children.remove(child)

    def finish(self, child: Child) -> None:
        """Stop one child now and forget it."""
        self.stop(child)
        if child in self.children:
            self.children.remove(child)

    def stop_all(self) -> None:
        for child in reversed(self.children):
            self.stop(child)
        self.children.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()


def wait_ready(child: Child, url: str, timeout: float = 30.0, status: int = 200) -> None:
    """Poll `url` until it answers `status`; fail if the child exits or time runs out."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        child.check_alive()
        try:
            response = httpx.get(url, timeout=2.0)
            if response.status_code == status:
                return
            last = f"status {response.status_code}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.1)
    raise BenchError(f"{child.name} not ready at {url} after {timeout:.0f} s ({last}):\n{child.log_tail()}")


def raise_open_files(wanted: int = 2 * 4096 + 512) -> None:
    """The soft open-file limit up to the hard one, for this process and the children it starts (a shell's
    default soft limit is often 1,024): displayd's pushes hold up to 4,096 connections, and the receiver as
    many. A warning when the limit stays below `wanted`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 1 << 16, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < wanted:
        print(f"warning: the open-file limit is {soft}; with thousands of boards the receiver may run out "
              f"(raise the hard limit: ulimit -Hn)", file=sys.stderr, flush=True)


def cpu_split(enabled: bool) -> tuple[set[int] | None, set[int] | None]:
    """(server CPUs, load CPUs): the first allowed CPU for the server, the rest for the load; None when off."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not enabled or len(allowed) < 2:
        return None, None
    return {allowed[0]}, set(allowed[1:])


def memory_mb(pid: int) -> tuple[float, float]:
    """(peak RSS, RSS) of `pid` in MB (10^6 bytes): VmHWM and VmRSS of /proc/<pid>/status."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            fields[name] = int(value.split()[0]) * 1024 / 1e6
    return fields["VmHWM"], fields["VmRSS"]
