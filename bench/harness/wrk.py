"""The load tool: wrk (Debian's `wrk` package), a Lua script of pre-formatted requests, its output read.

    wrk = require_wrk()                                        # exits 2 with how to install it when missing
    write_script(path, [("/api/v1/boards/b1/current", {"Authorization": "Bearer …"})])
    result = run_wrk(run.procs, wrk, "http://127.0.0.1:8000/", script=path, duration=10, threads=1,
                     connections=64, cwd=run.workdir)
    result.rps, result.non_2xx_3xx, result.socket_errors
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.harness.processes import BenchError, Processes


def require_wrk() -> str:
    """wrk's path; exits with status 2 and says how to get it when it is missing."""
    path = shutil.which("wrk")
    if path is None:
        print("wrk is not installed: run `apt-get install wrk` (Debian/Ubuntu) and try again.", file=sys.stderr)
        raise SystemExit(2)
    return path


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

    def check(self, label: str) -> WrkResult:
        """Itself, or BenchError when nothing completed or any answer was an error (they would inflate rps)."""
        if self.requests == 0:
            raise BenchError(f"{label}: wrk completed no requests:\n{self.output}")
        if self.non_2xx_3xx:
            raise BenchError(f"{label}: {self.non_2xx_3xx} of {self.requests} answers were not 2xx/3xx:\n{self.output}")
        if self.socket_error_count:
            raise BenchError(f"{label}: socket errors {self.socket_errors}:\n{self.output}")
        return self


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


def lua_string(value: str) -> str:
    """A Lua string literal for `value`: printable ASCII as is, anything else as 3-digit decimal byte escapes."""
    return '"' + "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "".join(
        f"\\{b:03d}" for b in ch.encode()) for ch in value) + '"'


def write_script(path: Path, requests: Sequence[tuple[str, Mapping[str, str]]]) -> None:
    """A wrk script cycling through GET `requests` (path, headers), pre-formatted in `init` so wrk spends
    as little CPU as it can; the URL given to wrk supplies only the host."""
    rows = ["  {" + lua_string(target) + ", {" + ", ".join(f"[{lua_string(k)}] = {lua_string(v)}"
                                                           for k, v in headers.items()) + "}},"
            for target, headers in requests]
    path.write_text("\n".join([
        "-- generated by bench/harness/wrk.py",
        "local rows = {", *rows, "}",
        "local requests = {}",
        "local n = #rows",
        "local i = 0",
        "function init(args)",
        "  for k, row in ipairs(rows) do",
        '    row[2]["Host"] = wrk.host .. ":" .. tostring(wrk.port)',
        '    requests[k] = wrk.format("GET", row[1], row[2])',
        "  end",
        "end",
        "function request()",
        "  i = i % n + 1",
        "  return requests[i]",
        "end",
        "",
    ]))
