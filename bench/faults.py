"""Faulty boards in a slot's fan-out: healthy boards' delivery p99 with and without a fault mix.

    .venv/bin/python bench/faults.py                        # 1,000 boards, 10 s slots, 5 slots of each run
    .venv/bin/python bench/faults.py --slots 3 --slot 6 --loop asyncio

The issue's item: with 5 % hanging, 5 % dripping, 5 % resetting and 5 % erroring boards among 1,000,
every slot completes by its end and healthy boards' delivery p99 grows by no more than 10 % against a
run with no faulty boards.

How:
- The boards are one raw-asyncio server (uvloop when installed) in a child process of its own (this
  script with `--serve-boards`), so it does not share the measured event loop. The path names the
  behaviour: `/ok/<i>` checks the Standard Webhooks signature and answers 204 at once, `/hang/<i>`
  reads the request and never answers, `/drip/<i>` sends a valid status line and headers, then one
  body byte a second, `/reset/<i>` answers with a TCP RST (SO_LINGER 0), `/error500/<i>` answers 500.
  Every answer carries `Connection: close`: each board is its own host in production, so nothing is
  reused within a slot (as in bench/fanout.py).
- One slot is `Pusher.push_all` of `--boards` signed requests with `deadline = loop.time() + --slot`,
  through displayd's own `make_client` and `Pusher` as `displayd serve` builds and calls them:
  `concurrency` = the dispatcher's `PUSH_CONCURRENCY` (`--concurrency`), `attempt_timeout` = the
  `push_timeout_seconds` default of 5 s, 3 attempts.
- Run A: every board healthy. Run B: the same boards, of which a fixed-seed sample of 5 % each hangs,
  drips, resets and answers 500. Slots alternate A, B, A, B… (after one unmeasured warm-up slot of
  each) so drift on a shared machine hits both runs alike.
- A healthy board's delivery latency is its `PushResult.finished_at` minus the loop time at which
  `push_all` was called. Per slot the p50/p99 are taken over the healthy boards; the figure of a run is
  the median over its slots of the per-slot p99 (the pooled p99 of all slots is printed too). The ratio
  compares B's healthy boards with the *same* boards in A (A over all boards is printed alongside).
- Checks (exit status 1 when one fails): every result of every slot finished by the slot's deadline
  (+ `--slack`, 0.25 s) and `push_all` returned by then; every healthy board delivered in every slot;
  no faulty board delivered; the resetting and 500 boards were tried `max_attempts` times. The p99
  ratio against its target (<= 1.10) is a measurement: it prints `met` or `MISSED` and does not change
  the exit status.
- Loopback only, a free port, each slot bounded by `--slot` + 10 s, the board server's process group
  is stopped on any exit (also Ctrl-C and SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import hmac
import json
import math
import os
import random
import socket
import statistics
import struct
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._support import LOOPBACK, BenchError, Processes, cpu_split, free_port, sigterm_as_interrupt, wait_ready
from bench.fanout import document
from displayd.delivery import Pusher, PushRequest, PushResult, make_client, sign
from displayd.delivery.dispatch import PUSH_CONCURRENCY

SECRET = "whsec_" + base64.b64encode(b"fault-bench-0123456789abcdef0123").decode()
FAULTS = ("hang", "drip", "reset", "error500")
KINDS = ("ok", *FAULTS)
TARGET = 1.10
ATTEMPT_TIMEOUT = 5.0  # Settings.push_timeout_seconds' default
MAX_ATTEMPTS = 3  # Pusher's default, as displayd/app.py builds it


# --- the board server (child process) -----------------------------------------------------------------

_ANSWERS = {
    "ok": b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
    "unsigned": b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    "error500": b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    "drip": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n",
    "unknown": b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
}


class _BoardConnection(asyncio.Protocol):
    """One connection to the board server: reads one request, then behaves as its path says."""

    def __init__(self, stats: Counter[str]) -> None:
        self.stats = stats
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.done = False
        self.drip: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def connection_lost(self, exc: Exception | None) -> None:
        if self.drip is not None:
            self.drip.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        if self.done:
            return  # one request per connection: every answer closes it (or never comes)
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        lines = self.buffer[:end].decode("latin-1").split("\r\n")
        headers = {name.strip().lower(): value.strip()
                   for name, _, value in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        if len(self.buffer) < end + 4 + length:
            return
        body = self.buffer[end + 4:end + 4 + length]
        self.done, self.buffer = True, b""
        method, path = [*lines[0].split(" "), "", ""][:2]
        kind = path.split("/")[1] if path.startswith("/") else ""
        if method == "GET" and path == "/stats":
            answer = json.dumps(self.stats).encode()
            self._answer(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n%s" % (len(answer), answer))
            return
        self.stats[kind if kind in KINDS else "unknown"] += 1
        if kind == "ok":
            expected = sign(SECRET, headers.get("webhook-id", ""), int(headers.get("webhook-timestamp", "0") or 0),
                            body)
            if hmac.compare_digest(expected, headers.get("webhook-signature", "")):
                self._answer(_ANSWERS["ok"])
            else:
                self.stats["bad signature"] += 1
                self._answer(_ANSWERS["unsigned"])
        elif kind == "error500":
            self._answer(_ANSWERS["error500"])
        elif kind == "hang":
            pass  # read, never answer; the connection ends when the client gives up
        elif kind == "drip":
            assert self.transport is not None
            self.transport.write(_ANSWERS["drip"])
            self._drip()
        elif kind == "reset":
            assert self.transport is not None
            sock = self.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()
        else:
            self._answer(_ANSWERS["unknown"])

    def _answer(self, answer: bytes) -> None:
        assert self.transport is not None
        self.transport.write(answer)
        self.transport.close()

    def _drip(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(b" ")
        self.drip = asyncio.get_running_loop().call_later(1.0, self._drip)


async def _serve_boards(port: int) -> None:
    stats: Counter[str] = Counter()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _BoardConnection(stats), LOOPBACK, port, backlog=4096)
    async with server:
        await server.serve_forever()


def serve_boards(port: int) -> None:
    """The child process' main: serve the fake boards on LOOPBACK:port until killed."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve_boards(port))
    else:
        uvloop.run(_serve_boards(port))


# --- the pusher (this process) ------------------------------------------------------------------------


@dataclass
class Slot:
    run: str  # "A" or "B"
    number: int
    latencies: dict[int, float]  # healthy board index -> seconds from push_all's call to finished_at
    overrun: float  # max(finished_at) - deadline, seconds (negative: finished early)
    returned_after: float  # when push_all returned, seconds after the deadline
    took: float
    problems: list[str] = field(default_factory=list)
    faults: dict[str, Counter[str]] = field(default_factory=dict)  # kind -> Counter of "error / attempts"


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..1) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * share // 1))  # ceil(n * share), at least 1
    return ordered[int(rank) - 1]


def plan(boards: int, share: float, seed: int) -> list[str]:
    """Each board's behaviour in run B: `share` of the boards per fault kind, a fixed-seed sample."""
    per_kind = round(boards * share)
    if per_kind * len(FAULTS) > boards:
        raise SystemExit(f"--fault-share {share} leaves no healthy boards")
    kinds = ["ok"] * boards
    faulty = random.Random(seed).sample(range(boards), per_kind * len(FAULTS))
    for n, index in enumerate(faulty):
        kinds[index] = FAULTS[n // per_kind]
    return kinds


async def push_slot(pusher: Pusher, base: str, kinds: Sequence[str], bodies: Sequence[bytes], *, run: str,
                    number: int, slot: float, slack: float, concurrency: int) -> Slot:
    loop = asyncio.get_running_loop()
    gc.collect()
    deadline = loop.time() + slot  # the slot's end; building 1,000 requests takes a millisecond or two of it
    requests = [PushRequest(board_id=f"bang-{i:05d}", url=f"{base}/{kind}/{i}", body=bodies[i],
                            webhook_id=f"bang-{i:05d}:3:{number}", secret=SECRET, deadline=deadline)
                for i, kind in enumerate(kinds)]
    started = loop.time()  # latencies count from the call of push_all
    problems: list[str] = []
    try:
        async with asyncio.timeout(slot + 10.0):
            results: list[PushResult] = await pusher.push_all(requests, concurrency=concurrency)
    except TimeoutError:
        returned = loop.time()
        return Slot(run, number, {}, returned - deadline, returned - deadline, returned - started,
                    [f"push_all had not returned {slot + 10.0:.0f} s after the slot started"])
    returned = loop.time()
    if [r.board_id for r in results] != [r.board_id for r in requests]:
        problems.append(f"{len(results)} results for {len(requests)} requests, or out of order")
    latencies: dict[int, float] = {}
    faults: dict[str, Counter[str]] = {kind: Counter() for kind in FAULTS}
    for index, (kind, result) in enumerate(zip(kinds, results, strict=False)):
        if kind == "ok":
            if result.delivered:
                latencies[index] = result.finished_at - started
            else:
                problems.append(f"healthy board {index} not delivered: {result.error} after {result.attempts}")
        else:
            faults[kind][f"{result.error} ×{result.attempts}"] += 1
            if result.delivered:
                problems.append(f"{kind} board {index} counted as delivered")
            elif kind in ("reset", "error500") and result.attempts != pusher.max_attempts:
                problems.append(f"{kind} board {index} tried {result.attempts} times, not {pusher.max_attempts}")
    overrun = max((r.finished_at for r in results), default=started) - deadline
    if overrun > slack:
        problems.append(f"a result finished {overrun:.3f} s after the slot's end")
    if returned - deadline > slack:
        problems.append(f"push_all returned {returned - deadline:.3f} s after the slot's end")
    return Slot(run, number, latencies, overrun, returned - deadline, returned - started, problems,
                {kind: counter for kind, counter in faults.items() if counter})


def describe(slot: Slot, healthy: int, note: str = "") -> str:
    values = list(slot.latencies.values())
    figures = (f"p50 {percentile(values, 0.5) * 1000:6.1f} ms, p99 {percentile(values, 0.99) * 1000:6.1f} ms"
               if values else "no deliveries")
    line = (f"  slot {slot.number:>2} {slot.run}: healthy {len(values)}/{healthy} delivered, {figures}, "
            f"took {slot.took:5.2f} s, last result {slot.overrun:+.3f} s vs its end{note}")
    for kind, counter in slot.faults.items():
        line += f"\n      {kind:<8} " + ", ".join(f"{n} {what}" for what, n in counter.most_common())
    return line


async def measure(port: int, args: argparse.Namespace, kinds_b: Sequence[str]) -> list[Slot]:
    base = f"http://{LOOPBACK}:{port}"
    kinds_a = ["ok"] * len(kinds_b)
    bodies = [document(i) for i in range(len(kinds_b))]
    slots: list[Slot] = []
    async with make_client(networks=["127.0.0.0/8"]) as client:
        pusher = Pusher(client, attempt_timeout=args.attempt_timeout, user_agent="displayd-bench")
        # Warm-up, not counted: imports, first connections, the allocator, the JIT-less interpreter caches.
        for run, kinds in (("A", kinds_a), ("B", kinds_b)):
            warm = await push_slot(pusher, base, kinds, bodies, run=run, number=0, slot=args.slot, slack=args.slack,
                                   concurrency=args.concurrency)
            print(describe(warm, kinds.count("ok"), " (warm-up, not counted)"), flush=True)
            await asyncio.sleep(args.pause)
        for number in range(1, args.slots + 1):
            for run, kinds in (("A", kinds_a), ("B", kinds_b)):
                slot = await push_slot(pusher, base, kinds, bodies, run=run, number=number, slot=args.slot,
                                       slack=args.slack, concurrency=args.concurrency)
                slots.append(slot)
                print(describe(slot, kinds.count("ok")), flush=True)
                for problem in slot.problems[:5]:
                    print(f"      PROBLEM: {problem}", flush=True)
                if len(slot.problems) > 5:
                    print(f"      … and {len(slot.problems) - 5} more problems", flush=True)
                await asyncio.sleep(args.pause)  # let the board server close what the slot left
    return slots


def summarise(slots: Sequence[Slot], kinds_b: Sequence[str], slack: float) -> tuple[str, float | None, bool]:
    """(report, ratio, every check passed)."""
    same = [i for i, kind in enumerate(kinds_b) if kind == "ok"]

    def p99s(run: str, boards: Sequence[int] | None) -> list[float]:
        out = []
        for slot in slots:
            if slot.run == run and slot.latencies:
                values = [slot.latencies[i] for i in (boards or slot.latencies) if i in slot.latencies]
                out.append(percentile(values, 0.99))
        return out

    def pooled(run: str, boards: Sequence[int] | None, share: float) -> float:
        values = [s.latencies[i] for s in slots if s.run == run for i in (boards or s.latencies) if i in s.latencies]
        return percentile(values, share) if values else float("nan")

    rows = {"A, all boards": ("A", None), "A, B's healthy boards": ("A", same), "B, healthy boards": ("B", None)}
    lines = ["healthy delivery latency (from push_all's call to finished_at):",
             f"  {'':<24} {'p50 pooled':>10} {'p99 pooled':>10} {'p99 median':>10}   per-slot p99 (ms)"]
    medians: dict[str, float] = {}
    for label, (run, boards) in rows.items():
        per_slot = p99s(run, boards)
        medians[label] = statistics.median(per_slot) if per_slot else float("nan")
        p50, p99 = pooled(run, boards, 0.5) * 1000, pooled(run, boards, 0.99) * 1000
        lines.append(f"  {label:<24} {p50:7.1f} ms {p99:7.1f} ms {medians[label] * 1000:7.1f} ms   "
                     + " ".join(f"{v * 1000:.0f}" for v in per_slot))
    a, a_all, b = medians["A, B's healthy boards"], medians["A, all boards"], medians["B, healthy boards"]
    ratio = b / a if a > 0 and not math.isnan(a) and not math.isnan(b) else None
    ok = all(not slot.problems for slot in slots) and len(slots) > 0
    overrun = max(slot.overrun for slot in slots) if slots else float("nan")
    returned = max(slot.returned_after for slot in slots) if slots else float("nan")
    lines.append(f"  B/A on the same boards {ratio or float('nan'):.3f}; B/(A, all boards) "
                 f"{b / a_all if a_all else float('nan'):.3f}")
    lines.append(f"every slot done by its end: latest result {overrun:+.3f} s, latest return of push_all "
                 f"{returned:+.3f} s vs the deadline; {sum(len(s.problems) for s in slots)} problems")
    verdict = "met" if ratio is not None and ratio <= TARGET else "MISSED"
    on_time = bool(slots) and overrun <= slack and returned <= slack
    failed = sum(len(s.problems) for s in slots)
    lines.append(f"faults healthy p99: A {a * 1000:.0f} ms, B {b * 1000:.0f} ms, ratio {ratio or float('nan'):.2f} "
                 f"(target <= {TARGET:.2f}: {verdict}); every slot done by its end: {'yes' if on_time else 'NO'}; "
                 + ("every check passed" if ok else f"{failed} check(s) FAILED"))
    return "\n".join(lines), ratio, ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--boards", type=int, default=1000)
    parser.add_argument("--fault-share", type=float, default=0.05, help="share of the boards per fault kind in B")
    parser.add_argument("--slot", type=float, default=10.0, help="slot length, seconds (the push deadline)")
    parser.add_argument("--slots", type=int, default=5, help="measured slots of each run, interleaved A, B, …")
    parser.add_argument("--attempt-timeout", type=float, default=ATTEMPT_TIMEOUT)
    parser.add_argument("--concurrency", type=int, default=PUSH_CONCURRENCY,
                        help="pushes in flight (push_all's workers); default: the dispatcher's PUSH_CONCURRENCY")
    parser.add_argument("--slack", type=float, default=0.25, help="seconds a result may end past the slot's end")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between slots")
    parser.add_argument("--seed", type=int, default=20240507, help="picks the faulty boards")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="the pusher's loop; uvloop, as `displayd serve` runs under uvicorn[standard]")
    parser.add_argument("--pin", action="store_true", help="board server on the first CPU, the pusher on the rest")
    parser.add_argument("--serve-boards", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_boards is not None:
        serve_boards(args.serve_boards)
        return 0
    if args.boards < 1 or args.slots < 1 or args.slot <= 0:
        parser.error("--boards, --slots and --slot must be positive")

    kinds_b = plan(args.boards, args.fault_share, args.seed)
    runner: Callable[..., object] = asyncio.run
    if args.loop == "uvloop":
        import uvloop
        runner = uvloop.run
    sigterm_as_interrupt()
    server_cpus, pusher_cpus = cpu_split(args.pin)
    procs = Processes()
    began = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
            port = free_port()
            child = procs.start("boards", [sys.executable, str(Path(__file__).resolve()), "--serve-boards", str(port)],
                                env=dict(os.environ), cwd=Path(tmp), log_path=Path(tmp) / "boards.log",
                                cpus=server_cpus)
            wait_ready(child, f"http://{LOOPBACK}:{port}/stats", timeout=20)
            if pusher_cpus:
                os.sched_setaffinity(0, pusher_cpus)
            counts = Counter(kinds_b)
            print(f"faults: {args.boards} boards, run B with " + ", ".join(f"{counts[k]} {k}" for k in FAULTS)
                  + f"; {args.slot:g} s slots, attempt timeout {args.attempt_timeout:g} s, "
                  f"{args.concurrency} in flight, {args.loop} loop, "
                  f"{args.slots} slots each, interleaved{', pinned' if args.pin else ''}", flush=True)
            slots = runner(measure(port, args, kinds_b))
            assert isinstance(slots, list)
            stats: dict[str, int] = {}
            with contextlib.suppress(httpx.HTTPError, ValueError):
                stats = httpx.get(f"http://{LOOPBACK}:{port}/stats", timeout=5).json()
            print("board server saw: " + (", ".join(f"{n} {k}" for k, n in sorted(stats.items())) or "(no stats)"))
    except BenchError as exc:
        print(f"faults: {exc}", file=sys.stderr)
        return 1
    finally:
        procs.stop_all()
    report, _, ok = summarise(slots, kinds_b, args.slack)
    print(report)
    if stats.get("bad signature"):
        print(f"PROBLEM: {stats['bad signature']} pushes with a bad signature reached the board server")
        ok = False
    print(f"run time {time.perf_counter() - began:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
