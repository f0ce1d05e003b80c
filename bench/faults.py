"""Faulty boards in a slot's fan-out: healthy boards' delivery p99 with and without a fault mix.

    .venv/bin/python bench/faults.py                        # 1,000 boards, 10 s slots, 5 slots of each run
    .venv/bin/python bench/faults.py --slots 3 --slot 6 --loop asyncio
    .venv/bin/python bench/faults.py --quick                # 100 boards, one 3 s slot of each run

The issue's item: with 5 % hanging, 5 % dripping, 5 % resetting and 5 % erroring boards among 1,000,
every slot completes by its end and healthy boards' delivery p99 grows by no more than 10 % against a
run with no faulty boards.

How:
- The boards are one raw-asyncio server (bench/harness/receiver.py `faulty`, uvloop when installed)
  in a child process of its own, so it does not share the measured event loop. The path names the
  behaviour: `/ok/<i>` checks the Standard Webhooks signature (its own check, not displayd's) and
  answers 204 at once, `/hang/<i>` reads the request and never answers, `/drip/<i>` sends a valid
  status line and headers, then one body byte a second, `/reset/<i>` answers with a TCP RST
  (SO_LINGER 0), `/error500/<i>` answers 500. Every answer carries `Connection: close`: each board is
  its own host in production, so nothing is reused within a slot (as in bench/fanout.py).
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
import contextlib
import gc
import math
import os
import random
import statistics
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's displayd and bench.harness

from bench.harness.figures import percentile, ratio, verdict
from bench.harness.processes import cpu_split
from bench.harness.pushes import document, push_client, secret, signed_requests
from bench.harness.receiver import FAULTS, start_receiver
from bench.harness.running import Run, loop_runner, parse_args, run_bench
from displayd.delivery import Pusher, PushResult
from displayd.delivery.dispatch import PUSH_CONCURRENCY

SECRET = secret(b"fault-bench-0123456789abcdef0123")
QUICK = {"boards": 100, "slots": 1, "slot": 3.0, "attempt_timeout": 1.0, "pause": 0.2}
TARGET = 1.10
ATTEMPT_TIMEOUT = 5.0  # Settings.push_timeout_seconds' default
MAX_ATTEMPTS = 3  # Pusher's default, as displayd/app.py builds it


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
    requests = signed_requests([f"{base}/{kind}/{i}" for i, kind in enumerate(kinds)], bodies, secret=SECRET,
                               deadline=deadline, slot=number)
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


async def measure(base: str, args: argparse.Namespace, kinds_b: Sequence[str]) -> list[Slot]:
    kinds_a = ["ok"] * len(kinds_b)
    bodies = [document(i) for i in range(len(kinds_b))]
    slots: list[Slot] = []
    async with push_client() as client:
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


def summarise(slots: Sequence[Slot], kinds_b: Sequence[str], slack: float) -> tuple[str, bool]:
    """(report, every check passed)."""
    same = [i for i, kind in enumerate(kinds_b) if kind == "ok"]

    def latencies(slot: Slot, boards: Sequence[int] | None) -> list[float]:
        return [slot.latencies[i] for i in (boards or slot.latencies) if i in slot.latencies]

    rows = {"A, all boards": ("A", None), "A, B's healthy boards": ("A", same), "B, healthy boards": ("B", None)}
    lines = ["healthy delivery latency (from push_all's call to finished_at):",
             f"  {'':<24} {'p50 pooled':>10} {'p99 pooled':>10} {'p99 median':>10}   per-slot p99 (ms)"]
    medians: dict[str, float] = {}
    for label, (run, boards) in rows.items():
        per_slot = [percentile(latencies(s, boards), 0.99) for s in slots if s.run == run and s.latencies]
        pooled = [value for s in slots if s.run == run for value in latencies(s, boards)]
        medians[label] = statistics.median(per_slot) if per_slot else math.nan
        p50, p99 = percentile(pooled, 0.5) * 1000, percentile(pooled, 0.99) * 1000
        lines.append(f"  {label:<24} {p50:7.1f} ms {p99:7.1f} ms {medians[label] * 1000:7.1f} ms   "
                     + " ".join(f"{v * 1000:.0f}" for v in per_slot))
    a, a_all, b = medians["A, B's healthy boards"], medians["A, all boards"], medians["B, healthy boards"]
    growth = ratio(b, a)
    ok = all(not slot.problems for slot in slots) and len(slots) > 0
    overrun = max((slot.overrun for slot in slots), default=math.nan)
    returned = max((slot.returned_after for slot in slots), default=math.nan)
    failed = sum(len(s.problems) for s in slots)
    lines.append(f"  B/A on the same boards {growth:.3f}; B/(A, all boards) {ratio(b, a_all):.3f}")
    lines.append(f"every slot done by its end: latest result {overrun:+.3f} s, latest return of push_all "
                 f"{returned:+.3f} s vs the deadline; {failed} problems")
    on_time = bool(slots) and overrun <= slack and returned <= slack
    lines.append(f"faults healthy p99: A {a * 1000:.0f} ms, B {b * 1000:.0f} ms, ratio {growth:.2f} "
                 f"(target <= {TARGET:.2f}: {verdict(growth <= TARGET)}); every slot done by its end: "
                 f"{'yes' if on_time else 'NO'}; " + ("every check passed" if ok else f"{failed} check(s) FAILED"))
    return "\n".join(lines), ok


def faults(run: Run, args: argparse.Namespace, kinds_b: list[str]) -> int:
    board_cpus, pusher_cpus = cpu_split(args.pin)
    _, base = start_receiver(run, "faulty", "--secret", SECRET, cpus=board_cpus)
    if pusher_cpus:
        os.sched_setaffinity(0, pusher_cpus)
    counts = Counter(kinds_b)
    print(f"faults: {args.boards} boards, run B with " + ", ".join(f"{counts[k]} {k}" for k in FAULTS)
          + f"; {args.slot:g} s slots, attempt timeout {args.attempt_timeout:g} s, "
          f"{args.concurrency} in flight, {args.loop} loop, "
          f"{args.slots} slots each, interleaved{', pinned' if args.pin else ''}", flush=True)
    slots = loop_runner(args.loop)(measure(base, args, kinds_b))
    stats: dict[str, int] = {}
    with contextlib.suppress(httpx.HTTPError, ValueError):
        stats = httpx.get(f"{base}/stats", timeout=5).json()
    print("board server saw: " + (", ".join(f"{n} {k}" for k, n in sorted(stats.items())) or "(no stats)"))
    report, ok = summarise(slots, kinds_b, args.slack)
    print(report)
    if stats.get("bad signature"):
        print(f"PROBLEM: {stats['bad signature']} pushes with a bad signature reached the board server")
        ok = False
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
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
    args = parse_args(parser, argv, QUICK)
    if args.boards < 1 or args.slots < 1 or args.slot <= 0:
        parser.error("--boards, --slots and --slot must be positive")
    kinds_b = plan(args.boards, args.fault_share, args.seed)
    return run_bench("faults", lambda run: faults(run, args, kinds_b))


if __name__ == "__main__":
    raise SystemExit(main())
