"""Slot-start benchmark: how late slots start on 1,000 push boards, and displayd's peak RSS with 10,000.

What it measures:
1. Lateness of slot starts. `--boards` (default 1,000) push boards and one campaign with
   `--dwell` (default 5 s) slots; over `--slots` (default 20) slot boundaries, the arrival
   time of every push at its board − the slot's `starts_at` (from the push body).
   - The target (p99 <= 50 ms) is on the slot starts: per slot, the first of its pushes to
     reach a board, i.e. how late displayd starts a slot. A (board, slot) pair that never
     arrived also fails it.
   - Per (board, slot) pair, the lateness adds the fan-out itself: 1,000 requests take one
     core 145-210 ms even with bare aiohttp on this machine. So the same run measures bare
     aiohttp (`--bare-rounds`, default 5) POSTing to the same 1,000 boards on the same
     receiver, connections warm, displayd stopped, and prints displayd's per-pair p99 next
     to it as a ratio. From displayd's side, the rotation log's `delivered_at − starts_at`
     is printed too (the boundary job's own lateness is the `displayd_slot_lateness_seconds`
     histogram on /metrics).
2. Peak RSS (`VmHWM` of /proc/<pid>/status) of the `displayd serve` process after at least
   `--rss-slots` (default 3) boundaries with `--rss-boards` (default 10,000) push boards
   configured. Target: <= 250 MB.

How:
- Loopback only, free ports, a temporary directory removed at the end, a scratch database
  (a SQLite file, or with `--database-url` a database created on that PostgreSQL server and
  dropped at the end): `displayd db upgrade`, an admin key, the section IV slogans.
- The fake boards: one receiver in a process of its own (bench/harness/receiver.py `recording`),
  200 to every POST /<board_id>, each arrival's time.time() listed on GET /dump; they share
  no loop or CPU accounting with displayd. The boards (endpoint `<receiver>/<board_id>`) are
  created with displayd's board service while displayd is stopped (bench/harness/boards.py;
  the API takes ~60 boards/s).
- `displayd serve` is then started; the campaign (dwell `--dwell`, all approved slogans,
  all boards) is created through the API, starting at a whole minute in the past. The
  slot current at its creation is pushed on the change, mid-slot, and is not counted: once
  those pushes have arrived, the measured slots are the next `--slots` boundaries.
- Then displayd is stopped, boards are added up to `--rss-boards`, displayd is started
  again (it first records the slots it missed while down, then pushes the current one);
  after its first push it runs `--rss-slots` more boundaries (their lateness is printed as
  well, informational); VmHWM is read just before it is stopped.
- displayd runs at log level WARNING (`--log-level`); its warnings and errors, tracebacks
  included, are printed at the end (`--keep-log PATH` keeps the whole log). The machine
  has 2 cores: a load average above 0.5 before the run is warned about, since anything
  else running delays the event loop and shows up directly as lateness.
- Every process started is in its own process group and stopped in `finally`.

Run: `.venv/bin/python bench/slots.py [--boards 1000] [--slots 20] [--dwell 5] [--rss-boards 10000]
[--database-url URL]`, or `--quick` (20 boards, 2 slots, 30 for the RSS run) to check it works.
"""


from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's displayd and bench.harness

from bench.harness.api import admin_client, create_campaign, iso, parse_iso
from bench.harness.bare_aiohttp import post_all
from bench.harness.boards import board_ids, create_boards
from bench.harness.databases import postgresql_url, scratch_database
from bench.harness.deployment import Displayd, isolate_environment
from bench.harness.figures import percentile, ratio, verdict
from bench.harness.processes import memory_mb
from bench.harness.receiver import received, records, start_receiver, wait_received
from bench.harness.running import Run, parse_args, run_bench

LATENESS_TARGET_MS = 50.0
RSS_TARGET_MB = 250.0
QUICK = {"boards": 20, "slots": 2, "rss_boards": 30, "rss_slots": 1, "bare_rounds": 1}


@dataclass
class Lateness:
    label: str
    expected: int
    values_ms: list[float]
    missing: int
    duplicates: int = 0
    other: int = 0

    def quantile(self, q: float) -> float:
        return percentile(self.values_ms, q)

    def line(self) -> str:
        return (f"  {self.label}: {len(self.values_ms)} of {self.expected} (board, slot) pushes arrived, "
                f"{self.missing} never arrived, {self.duplicates} duplicates, {self.other} other requests; "
                f"lateness p50 {self.quantile(0.5):.1f} ms, p95 {self.quantile(0.95):.1f} ms, "
                f"p99 {self.quantile(0.99):.1f} ms, max {max(self.values_ms, default=math.nan):.1f} ms, "
                f"min {min(self.values_ms, default=math.nan):.1f} ms")


def boundaries(campaign_start: datetime, dwell: int, after: datetime, count: int) -> list[datetime]:
    """The first `count` slot starts strictly after `after` (plus a margin)."""
    k = math.floor((after - campaign_start).total_seconds() / dwell) + 1
    first = campaign_start + timedelta(seconds=k * dwell)
    if (first - after).total_seconds() < 0.5:  # too close to the creation's own sync: skip it
        first += timedelta(seconds=dwell)
    return [first + timedelta(seconds=i * dwell) for i in range(count)]


# ------------------------------------------------------------------ what the receiver saw

def receiver_lateness(label: str, seen: list[dict[str, Any]], ids: list[str], starts: list[datetime]) -> Lateness:
    wanted = {iso(s) for s in starts}
    arrived: dict[tuple[str, str], float] = {}
    duplicates = other = 0
    for record in seen:
        starts_at = record.get("starts_at")
        if record.get("type") in ("bare", "warm"):
            continue  # the baseline's
        if record.get("type") != "show" or starts_at is None:
            other += 1
            continue
        key = (record["board"], iso(parse_iso(starts_at)))
        if key[1] not in wanted:
            continue
        if key in arrived:
            duplicates += 1
            continue
        arrived[key] = (record["arrival"] - parse_iso(starts_at).timestamp()) * 1000
    expected = len(ids) * len(starts)
    return Lateness(label, expected, list(arrived.values()), expected - len(arrived), duplicates, other)


def slot_starts(seen: list[dict[str, Any]], starts: list[datetime]) -> list[float]:
    """Per slot: ms from the slot's start to the first of its pushes arriving at any board,
    i.e. how late displayd started the slot (the per-board figure adds the fan-out)."""
    wanted = {iso(s): s.timestamp() for s in starts}
    first: dict[str, float] = {}
    for record in seen:
        starts_at = record.get("starts_at")
        if record.get("type") == "show" and starts_at is not None and (key := iso(parse_iso(starts_at))) in wanted:
            first[key] = min(first.get(key, math.inf), record["arrival"])
    return sorted((first[k] - wanted[k]) * 1000 for k in first)


def displayd_lateness(label: str, displayd: Displayd, starts: list[datetime]) -> tuple[Lateness, dict[str, int]]:
    """From the rotation log: delivered_at − starts_at of the measured slots, and their statuses."""
    statuses: dict[str, int] = {}
    values: list[float] = []
    rows = displayd.rotation_log(starts)
    for status, starts_at, delivered_at in rows:
        statuses[status] = statuses.get(status, 0) + 1
        if delivered_at is not None:
            values.append((delivered_at - starts_at).total_seconds() * 1000)
    return Lateness(label, len(rows), values, len(rows) - len(values)), statuses


def measured(displayd: Displayd, receiver: str, ids: list[str], starts: list[datetime]) -> tuple[Lateness, Lateness]:
    """Print the receiver's and displayd's view of the slots `starts`; (the receiver's, displayd's)."""
    ours = receiver_lateness(f"{len(ids)} boards, receiver", records(receiver), ids, starts)
    theirs, statuses = displayd_lateness(f"{len(ids)} boards, displayd delivered_at", displayd, starts)
    print(ours.line(), flush=True)
    print(theirs.line() + f"; statuses {statuses}", flush=True)
    return ours, theirs


# ------------------------------------------------------------------ the bare baseline

def bare_aiohttp(receiver: str, ids: list[str], rounds: int) -> Lateness:
    """The floor for the per-(board, slot) figure: bare aiohttp (bench/harness/bare_aiohttp.py), from
    this (otherwise idle) process with displayd stopped, POSTs a document of a push's size to every
    board on the same receiver at `rounds` chosen instants, connections warm as displayd's are
    between slots. Records have type "bare"."""
    async def work() -> None:
        text = "Nhiệt liệt chào mừng kỷ niệm 70 năm Chiến thắng Điện Biên Phủ (07/5/1954 - 07/5/2024)! " * 3
        urls = [f"{receiver}/{board_id}" for board_id in ids]
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4096)) as session:
            for number in range(rounds + 1):  # the first round opens the connections and is not counted
                at = math.ceil(time.time()) + 0.5
                body = json.dumps({"type": "bare" if number else "warm", "slot": {"starts_at": iso(
                    datetime.fromtimestamp(at, UTC))}, "content": {"text": text}}).encode()
                await asyncio.sleep(max(0.0, at - time.time()))
                await post_all(session, urls, [body] * len(urls), concurrency=len(urls))

    asyncio.run(work())
    values = [(r["arrival"] - parse_iso(r["starts_at"]).timestamp()) * 1000 for r in records(receiver)
              if r.get("type") == "bare" and r.get("starts_at")]
    expected = len(ids) * rounds
    return Lateness(f"{len(ids)} boards, bare aiohttp x {rounds} rounds", expected, values, expected - len(values))


# ------------------------------------------------------------------ the run

def lateness_run(args: argparse.Namespace, displayd: Displayd, admin_key: str, receiver: str,
                 ids: list[str]) -> tuple[datetime, list[str]]:
    """Start displayd, create the campaign, measure `--slots` boundaries and bare aiohttp; (campaign start, lines)."""
    base = displayd.serve(name="displayd-1")
    created = datetime.now(UTC)
    start = created.replace(second=0, microsecond=0) - timedelta(minutes=1)
    with admin_client(base, admin_key) as client:
        create_campaign(client, name="bench slots", starts_at=start, ends_at=start + timedelta(days=1),
                        dwell_seconds=args.dwell, targets={"all": True})
    # The change pushes the current slot at once; wait for it, so the measured slots follow a working start.
    wait_received(receiver, args.boards, sender=displayd.serving, timeout=60)
    starts = boundaries(start, args.dwell, max(created, datetime.now(UTC)), args.slots)
    print(f"campaign from {iso(start)}, dwell {args.dwell} s, {displayd.kind}; measuring {args.slots} "
          f"slots {iso(starts[0])} .. {iso(starts[-1])}", flush=True)
    displayd.wait_until(starts[-1] + timedelta(seconds=args.dwell + 2))  # + the last slot's recording
    hwm, _ = memory_mb(displayd.serving.process.pid)
    ours, theirs = measured(displayd, receiver, ids, starts)
    firsts = slot_starts(records(receiver), starts)
    slot_p99 = percentile(firsts, 0.99)
    print(f"  slot starts (first push of each of {len(firsts)} slots): p50 {firsts[len(firsts) // 2]:.1f} ms, "
          f"p99 {slot_p99:.1f} ms" if firsts else "  slot starts: no slot arrived", flush=True)
    print(f"  displayd VmHWM with {args.boards} boards: {hwm:.0f} MB", flush=True)
    displayd.stop()
    bare = bare_aiohttp(receiver, ids, args.bare_rounds)
    print(bare.line(), flush=True)
    p99 = ours.quantile(0.99), bare.quantile(0.99), theirs.quantile(0.99)
    return start, [
        f"slot starts p99 lateness: {slot_p99:.0f} ms (target <= {LATENESS_TARGET_MS:.0f} ms, "
        f"{verdict(slot_p99 <= LATENESS_TARGET_MS and ours.missing == 0)}; the first push of each of {args.slots} "
        f"slots to reach a board; {ours.missing} of {ours.expected} (board, slot) pushes never arrived)",
        f"per (board, slot) arrival p99: displayd {p99[0]:.0f} ms, bare aiohttp {p99[1]:.0f} ms: the fan-out at "
        f"{ratio(p99[1], p99[0]):.2f} of bare aiohttp's speed (displayd-side p99 {p99[2]:.0f} ms)"]


def rss_run(args: argparse.Namespace, displayd: Displayd, receiver: str, ids: list[str],
            campaign_start: datetime) -> str:
    """Restart displayd with `ids` (`--rss-boards` of them), run `--rss-slots` boundaries; the peak RSS line."""
    before = received(receiver)
    displayd.serve(name="displayd-2")
    up = datetime.now(UTC)
    # On taking over it first records the slots missed while it was down, then pushes the current one.
    waited = wait_received(receiver, before + 1, sender=displayd.serving, timeout=120)
    print(f"  restarted with {len(ids)} boards: first push {waited:.1f} s after /readyz answered", flush=True)
    starts = boundaries(campaign_start, args.dwell, max(up, datetime.now(UTC)), args.rss_slots)
    displayd.wait_until(starts[-1] + timedelta(seconds=args.dwell + 2))
    hwm, rss = memory_mb(displayd.serving.process.pid)
    measured(displayd, receiver, ids, starts)
    print(f"  displayd with {len(ids)} boards after {args.rss_slots} slots: VmHWM {hwm:.0f} MB, "
          f"VmRSS {rss:.0f} MB", flush=True)
    displayd.stop()
    return f"peak RSS with {len(ids)} boards: {hwm:.0f} MB (target <= {RSS_TARGET_MB:.0f} MB, " \
           f"{verdict(hwm <= RSS_TARGET_MB)})"


def slots(run: Run, args: argparse.Namespace) -> int:
    isolate_environment()
    if args.keep_log is not None:  # unwound after the children have stopped
        run.stack.callback(lambda: (run.workdir / "displayd.log").exists() and shutil.copyfile(
            run.workdir / "displayd.log", args.keep_log))
    url = run.stack.enter_context(scratch_database(run.workdir, "slots", server=args.database_url))
    displayd = Displayd(run, url, log_level=args.log_level)
    admin_key = displayd.prepare()
    _, receiver = start_receiver(run, "recording", name="receiver")

    def add_boards(first: int, count: int) -> list[str]:
        ids = board_ids(first, count)
        _, took = create_boards(displayd.settings(), ids, delivery="push", endpoint=lambda b: f"{receiver}/{b}")
        print(f"created {count} {'more ' if first else ''}push boards in {took:.1f} s (service layer)", flush=True)
        return ids

    ids = add_boards(0, args.boards)
    campaign_start, lines = lateness_run(args, displayd, admin_key, receiver, ids)
    if args.rss_boards > args.boards:
        lines.append(rss_run(args, displayd, receiver, ids + add_boards(args.boards, args.rss_boards - args.boards),
                             campaign_start))
    problems = displayd.logged_problems()
    if problems:
        print(f"displayd logged {len(problems)} warning/error lines (with tracebacks); the first ones:", flush=True)
        for line in problems[:args.log_lines]:
            print(f"  | {line}", flush=True)
    print(*lines, sep="\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--boards", type=int, default=1000, help="push boards for the lateness run (default 1000)")
    parser.add_argument("--slots", type=int, default=20, help="slot boundaries measured (default 20)")
    parser.add_argument("--dwell", type=int, default=5, help="campaign dwell seconds, >= 5 (default 5)")
    parser.add_argument("--rss-boards", type=int, default=10_000,
                        help="boards for the peak RSS run (default 10000; <= --boards skips it)")
    parser.add_argument("--rss-slots", type=int, default=3, help="slot boundaries in the RSS run (default 3)")
    parser.add_argument("--bare-rounds", type=int, default=5,
                        help="rounds of the bare aiohttp baseline to the same boards (default 5)")
    parser.add_argument("--log-level", default="WARNING", help="displayd's log level (default WARNING)")
    parser.add_argument("--log-lines", type=int, default=80, help="warning/error log lines shown (default 80)")
    parser.add_argument("--keep-log", type=Path, default=None, help="copy displayd's log here at the end")
    parser.add_argument("--database-url", type=postgresql_url, default=None,
                        help="run on this PostgreSQL server, in a scratch database created beside the one named "
                             "(default: a temporary SQLite file)")
    args = parse_args(parser, argv, QUICK)
    if (args.boards < 1 or args.slots < 1 or args.dwell < 5 or args.rss_slots < 1 or args.bare_rounds < 1
            or args.boards > 99_999 or args.rss_boards > 99_999):
        parser.error("--boards (up to 99999), --slots, --rss-slots and --bare-rounds must be positive "
                     "and --dwell at least 5")
    return run_bench("slots", lambda run: slots(run, args))


if __name__ == "__main__":
    sys.exit(main())
