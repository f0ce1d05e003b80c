"""Helpers shared by the benchmark scripts: free ports, child processes, wrk, a bare ASGI app.

Every child is started in a process group of its own and `Processes.stop_all()` ends each
group (SIGTERM, then SIGKILL), so a benchmark leaves nothing running behind it, also after
Ctrl-C or an exception.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

import httpx

LOOPBACK = "127.0.0.1"
SLOGANS = Path(__file__).resolve().parent.parent / "slogans" / "huong-dan-101-muc-IV.yaml"  # the section IV slogans


class BenchError(RuntimeError):
    """Something broke: the measurement is not valid."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now (bind port 0 and give it back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def require_wrk() -> str:
    """wrk's path; exits with status 2 and says how to get it when it is missing."""
    path = shutil.which("wrk")
    if path is None:
        print("wrk is not installed: run `apt-get install wrk` (Debian/Ubuntu) and try again.", file=sys.stderr)
        raise SystemExit(2)
    return path


def sigterm_as_interrupt() -> None:
    """Turn SIGTERM into KeyboardInterrupt so `finally` blocks stop the children."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path | None

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


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
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # The leader may be gone while others in its group live on: SIGKILL the group regardless.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace)

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


def warn_if_busy() -> None:
    """The machine has 2 cores: anything else running skews a timing, so say so before it starts."""
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.2f} before the run; other work sharing the CPUs skews the figures",
              file=sys.stderr, flush=True)


def wait_ready(child: Child, url: str, timeout: float = 30.0, status: int = 200) -> None:
    """Poll `url` until it answers `status`; fail if the child exits or time runs out."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise BenchError(f"{child.name} exited with status {child.process.returncode}:\n{child.log_tail()}")
        try:
            response = httpx.get(url, timeout=2.0)
            if response.status_code == status:
                return
            last = f"status {response.status_code}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.1)
    raise BenchError(f"{child.name} not ready at {url} after {timeout:.0f} s ({last}):\n{child.log_tail()}")


BARE_APP = '''\
"""A bare ASGI app: no framework, one fixed answer. The baseline the benchmarks divide by."""

import os
from pathlib import Path

STATUS = int(os.environ.get("BARE_STATUS", "304"))
BODY = Path(os.environ["BARE_BODY"]).read_bytes() if STATUS == 200 else b""
HEADERS = [(b"etag", os.environ.get("BARE_ETAG", '"1-0-0123456789abcdef0123456789abcdef"').encode()),
           (b"cache-control", b"max-age=3600")]
if STATUS == 200:
    HEADERS += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]
START = {"type": "http.response.start", "status": STATUS, "headers": HEADERS}
END = {"type": "http.response.body", "body": BODY}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send(START)
    await send(END)
'''

# The same uvicorn.run keyword arguments as `displayd serve` (displayd/cli.py).
UVICORN_RUNNER = (
    "import sys, uvicorn; sys.path.insert(0, sys.argv[1]); import bare_app; "
    "uvicorn.run(bare_app.app, host=sys.argv[2], port=int(sys.argv[3]), "
    "log_config=None, access_log=False, server_header=False)"
)


def start_bare(procs: Processes, workdir: Path, *, name: str, env: dict[str, str],
               cpus: set[int] | None = None) -> tuple[Child, str]:
    """Write the bare app into `workdir` and serve it on a free loopback port; returns (child, base URL)."""
    (workdir / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    argv = [sys.executable, "-c", UVICORN_RUNNER, str(workdir), LOOPBACK, str(port)]
    child = procs.start(name, argv, env=env, cwd=workdir, log_path=workdir / f"{name}.log", cpus=cpus)
    return child, f"http://{LOOPBACK}:{port}"


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    rps: float
    non_2xx_3xx: int
    socket_errors: dict[str, int]
    latency_avg: str
    output: str

    @property
    def socket_error_count(self) -> int:
        return sum(self.socket_errors.values())


_REQUESTS = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)", re.MULTILINE)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_NON = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_LATENCY = re.compile(r"^\s*Latency\s+(\S+)", re.MULTILINE)
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def parse_wrk(output: str) -> WrkResult:
    requests, rps = _REQUESTS.search(output), _RPS.search(output)
    if requests is None or rps is None:
        raise BenchError(f"could not read wrk's output:\n{output}")
    non = _NON.search(output)
    sock = _SOCKET.search(output)
    latency = _LATENCY.search(output)
    errors = dict(zip(("connect", "read", "write", "timeout"), map(int, sock.groups()), strict=True)) if sock else {}
    return WrkResult(requests=int(requests.group(1)), seconds=float(requests.group(2)) * _UNITS[requests.group(3)],
                     rps=float(rps.group(1)), non_2xx_3xx=int(non.group(1)) if non else 0, socket_errors=errors,
                     latency_avg=latency.group(1) if latency else "?", output=output)


def run_wrk(procs: Processes, wrk: str, url: str, *, script: Path, duration: float, threads: int, connections: int,
            cwd: Path, cpus: set[int] | None = None) -> WrkResult:
    """One bounded wrk run against `url`; raises BenchError when wrk fails."""
    argv = [wrk, f"--threads={threads}", f"--connections={connections}", f"--duration={max(1, round(duration))}s",
            "--timeout=5s", f"--script={script}", "--latency", url]
    child = procs.start("wrk", argv, env=dict(os.environ), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        cpus=cpus)
    try:
        out, err = child.process.communicate(timeout=duration + 30)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish within {duration + 30:.0f} s") from exc
    finally:
        procs.finish(child)
    text, errors = out.decode(errors="replace"), err.decode(errors="replace").strip()
    if child.process.returncode != 0 or errors:  # a Lua error is only reported on stderr
        raise BenchError(f"wrk exited with status {child.process.returncode}:\n{errors}\n{text}")
    return parse_wrk(text)


def cpu_split(enabled: bool) -> tuple[set[int] | None, set[int] | None]:
    """(server CPUs, load tool CPUs): the first allowed CPU for the server, the rest for wrk; None when off."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not enabled or len(allowed) < 2:
        return None, None
    return {allowed[0]}, set(allowed[1:])


def lua_string(value: str) -> str:
    """A Lua string literal for `value`: printable ASCII as is, anything else as 3-digit decimal byte escapes."""
    return '"' + "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "".join(
        f"\\{b:03d}" for b in ch.encode()) for ch in value) + '"'


DISPLAYD = Path(sys.executable).parent / "displayd"
SECRET_KEY = "bench-secret-key-0123456789abcdef0123456789abcdef"


def displayd_env(workdir: Path, log_level: str = "WARNING") -> dict[str, str]:
    """The environment of a benchmarked displayd: its own SQLite file, loopback boards."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPLAYD_")}
    env.update({
        "DISPLAYD_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'bench.db'}",
        "DISPLAYD_SECRET_KEY": SECRET_KEY,
        "DISPLAYD_ALLOWED_BOARD_NETWORKS": '["127.0.0.0/8"]',
        "DISPLAYD_CONFIG": str(workdir / "none.toml"),  # not the repository's config file
        "DISPLAYD_LOG_LEVEL": log_level,  # at INFO, a line per push: 1,000 lines a slot
    })
    return env


def cli(args: list[str], *, env: dict[str, str], cwd: Path) -> str:
    """Run one `displayd` command to completion; its stdout, or BenchError with its output."""
    done = subprocess.run([str(DISPLAYD), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120,
                          check=False, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise BenchError(f"displayd {' '.join(args)} exited with {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout
