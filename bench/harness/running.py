"""One benchmark run from start to exit status: a temp directory, children stopped, errors explained.

    def measure(run: Run) -> int:
        child = run.procs.start(...)       # stopped on every exit
        run.stack.callback(cleanup)        # after the children have stopped
        return 0

    raise SystemExit(run_bench("poll", measure))

Exit statuses every script shares: 0 measured (whether or not a target was met, unless the
script says otherwise), 1 something broke (`BenchError`; the last lines of every `*.log` under
the temp directory are printed), 2 a tool is missing or an option is wrong, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from bench.harness.processes import BenchError, Processes

T = TypeVar("T")


@dataclass
class Run:
    name: str
    workdir: Path  # removed at the end
    procs: Processes  # stopped at the end, before `stack` unwinds
    stack: ExitStack  # for clean-ups that need the children gone (a scratch database, a log copy)


def sigterm_as_interrupt() -> None:
    """Turn SIGTERM into KeyboardInterrupt so `finally` blocks stop the children."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def warn_if_busy() -> None:
    """The machine has 2 cores: anything else running skews a timing, so say so before it starts."""
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.2f} before the run; other work sharing the CPUs skews the figures",
              file=sys.stderr, flush=True)


def run_bench(name: str, body: Callable[[Run], int]) -> int:
    """Run `body` in a fresh temp directory; its exit status, or 1 on BenchError, 130 on Ctrl-C or SIGTERM."""
    sigterm_as_interrupt()
    warn_if_busy()
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix=f"displayd-bench-{name}-") as tmp:
            workdir = Path(tmp)
            try:
                with ExitStack() as stack:
                    procs = Processes()
                    try:
                        status = body(Run(name, workdir, procs, stack))
                    finally:
                        procs.stop_all()
            except BenchError as exc:
                print(f"bench/{name}.py failed: {exc}", file=sys.stderr)
                for log in sorted(workdir.rglob("*.log")):
                    tail = log.read_text(errors="replace").splitlines()[-40:]
                    print(f"--- {log.relative_to(workdir)} (last lines) ---", *tail, sep="\n", file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        print(f"bench/{name}.py interrupted; every process it started has been stopped", file=sys.stderr)
        return 130
    sys.stdout.flush()
    print(f"load average at the end {os.getloadavg()[0]:.2f} (1 min); total time {time.monotonic() - started:.0f} s",
          file=sys.stderr)
    return status


def loop_runner(loop: str) -> Callable[[Coroutine[Any, Any, T]], T]:
    """`asyncio.run` or `uvloop.run` (what `displayd serve` runs under uvicorn[standard])."""
    if loop == "uvloop":
        import uvloop

        return uvloop.run
    return asyncio.run


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None,
               quick: Mapping[str, Any]) -> argparse.Namespace:
    """Parse with a `--quick` flag that makes `quick` the defaults: a short run; options given still win."""
    parser.add_argument("--quick", action="store_true",
                        help="a short, small run to check the script works: " + ", ".join(
                            f"--{k.replace('_', '-')} {v}" for k, v in quick.items()))
    first, _ = parser.parse_known_args(argv)
    if first.quick:
        parser.set_defaults(**quick)
    return parser.parse_args(argv)
