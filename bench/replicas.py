"""Replicas benchmark: two `displayd serve` on one PostgreSQL share the pushes and survive a `kill -9` of one.

What it measures (issue 15's benchmark): 4,000 push boards with `lead_seconds` 2, a campaign of
dwell 5 s, two replicas (`displayd serve` processes on the same database), 50 measured slots
(as tests/reliability/test_replicas.py: a run long enough that one slot lost on half the boards
stays within the 1 % the on-time target allows) and a `kill -9` of one replica in the middle of
them, during a fan-out. Who sent a push is read from its `user-agent` header, which carries
the sending process' pid (`displayd/<version> (<host>:<pid>)`).
- Shares, before the kill: of the measured slots' pushes that arrived before it, the share each
  replica sent, and the share of the boards each pushed to (target 40–60 % each: the replicas
  share the work).
- Led again, after it: from the kill to the survivor's first push to the last board to get one
  (target <= 15 s): every board, so every shard, is pushed again. A board gets one push a slot,
  at starts_at − lead, so this includes the wait for the next send instant (up to a dwell) after
  the survivor took over; the survivor's own word is printed beside it, from its /metrics polled
  every 0.5 s: how long until it led as much as both replicas led before the kill
  (`displayd_shards_led` when displayd has it, else `displayd_scheduler_leader`).
- On time, over the whole run, kill included: the share of (board, slot) pairs of the measured
  slots whose first `show` reached the board at or before the slot's `starts_at` (target
  >= 99 %; a pair that never arrived counts against it); see bench/harness/recorded.py.
- Duplicates, over every push of the run: a webhook-id (`<board>:<campaign>:<slot>:<revision>`)
  received more than once (target 0): the `(board, campaign, slot)` row is the claim, so no two
  replicas push the same slot, and a leader killed halfway through a fan-out leaves none to push twice.
Each measured slot is printed too (its first and last push from its send instant, the pairs on
time, who sent them), with the rotation log (displayd's own view), each replica's /metrics
(the killed one's read just before the kill) and the replicas' warnings and errors. There is no
bare baseline: the targets are shares and a deadline, not speeds.

How: loopback only, free ports, a temporary directory, a scratch PostgreSQL database created
beside `--database-url`'s (default the local one, postgres@127.0.0.1:5432/test) and dropped at
the end: `displayd db upgrade`, an admin key, the section IV slogans, the boards created with
displayd's board service and their `lead_seconds` set by one UPDATE (bench/harness/recorded.py).
The fake boards: one `recording` receiver in a process of its own (bench/harness/receiver.py).
The two replicas start one after the other, a campaign of every approved slogan on every board
is created through the first, starting at a whole minute in the past; its current slot is
pushed at once (not counted); the measured slots are the next `--slots` whose send instant is
more than 0.5 s after that and at least `--settle` s after both replicas answered /readyz (time
for shares to settle). `--kill-at` s after the first measured send instant (default: the middle
slot's send instant + 0.5 s, during its fan-out) the replica that sent the most measured pushes
so far (asked of the receiver half a dwell earlier, between two fan-outs) gets a SIGKILL. The
run waits until the last measured slot has ended, then reads the receiver. The machine has 2
cores: a load average above 0.5 before the run is warned about.

Run: `.venv/bin/python bench/replicas.py [--boards 4000] [--lead 2] [--dwell 5] [--slots 50]
[--kill-at S] [--settle 20] [--database-url URL]` (about six minutes), or `--quick` (400 boards,
12 slots: about a minute and a half) to check it works.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's displayd and bench.harness

from bench.harness.api import admin_client, create_campaign, iso, metric, parse_iso, read_metrics
from bench.harness.databases import LOCAL_POSTGRESQL, postgresql_url, scratch_database
from bench.harness.deployment import Displayd, isolate_environment, wait_until
from bench.harness.figures import ms, percentile, verdict
from bench.harness.processes import raise_open_files
from bench.harness.receiver import records, senders, wait_received
from bench.harness.recorded import at_boards, in_log, lead_boards, measured_slots, on_time, repeated
from bench.harness.running import Run, parse_args, run_bench

SHARE = (0.40, 0.60)  # of the pushes and of the boards, each replica, before the kill
LED_AGAIN = 15.0  # seconds from the kill until every board is pushed by the survivor
ON_TIME = 0.99
QUICK = {"boards": 400, "slots": 12}
METRICS_EVERY = 0.5  # seconds between two reads of the survivor's /metrics after the kill


@dataclass
class Replica:
    displayd: Displayd
    base: str
    pid: int

    @property
    def name(self) -> str:
        return self.displayd.name

    def sent(self, user_agent: str) -> bool:
        """Whether a push with this `user-agent` came from this replica's process."""
        return f":{self.pid})" in user_agent


def sender(replicas: list[Replica], record: dict[str, Any]) -> str:
    return next((r.name for r in replicas if r.sent(record.get("user_agent", ""))), "other")


@dataclass
class Killed:
    """The replicas, which one was killed when, and what their /metrics said."""

    both: list[Replica]
    victim: Replica
    survivor: Replica
    at: float  # time.time() just before the SIGKILL
    led_again: float | None  # seconds until the survivor's /metrics said it led everything
    before: list[dict[str, float]]  # /metrics of each replica just before the kill
    after: dict[str, float]  # the survivor's at the end


def leading(values: dict[str, float]) -> str:
    """What a replica's /metrics says of its leading and pushing."""
    leader, shards = metric(values, "displayd_scheduler_leader"), metric(values, "displayd_shards_led")
    pushed = {outcome: int(values.get(f'displayd_pushes_total{{outcome="{outcome}"}}', 0))
              for outcome in ("delivered", "failed")}
    return (f"scheduler_leader {'-' if leader is None else f'{leader:.0f}'}"
            + ("" if shards is None else f", shards_led {shards:.0f}")
            + f", pushes delivered {pushed['delivered']}, failed {pushed['failed']}")


def lead_gauge(readings: list[dict[str, float]]) -> tuple[str, float] | None:
    """(the gauge saying how much a replica leads, its sum over the replicas), or None when none has it."""
    for gauge in ("displayd_shards_led", "displayd_scheduler_leader"):
        found = [metric(values, gauge) for values in readings]
        if any(v is not None for v in found):
            return gauge, sum(v or 0.0 for v in found)
    return None


def watch_survivor(survivor: Replica, killed: float, until: datetime, gauge: tuple[str, float] | None) -> float | None:
    """Wait until `until`, reading the survivor's /metrics until its `gauge` reaches what both replicas led
    before the kill; seconds from `killed` (time.time()) until it did, or None."""
    led_again: float | None = None
    while (left := (until - datetime.now(UTC)).total_seconds()) > 0:
        survivor.displayd.serving.check_alive()
        if gauge is not None and led_again is None:
            try:
                value = metric(read_metrics(survivor.base, timeout=METRICS_EVERY * 4), gauge[0])
            except httpx.HTTPError:
                value = None
            if value is not None and value >= gauge[1] > 0:
                led_again = time.time() - killed
            time.sleep(min(left, METRICS_EVERY))
        else:
            time.sleep(min(left, 1.0))
    return led_again


# ------------------------------------------------------------------ the figures

@dataclass
class Shares:
    pushes: dict[str, float]  # of the measured slots' pushes that arrived before the kill
    boards: dict[str, float]  # of every board: those it pushed one of them to
    counted: int


def shares_before(seen: list[dict[str, Any]], replicas: list[Replica], ids: list[str], keys: set[str],
                  killed: float) -> Shares:
    pushes: Counter[str] = Counter()
    boards: dict[str, set[str]] = {r.name: set() for r in replicas}
    for record in seen:
        if (record["arrival"] >= killed or not record.get("starts_at")
                or iso(parse_iso(record["starts_at"])) not in keys):
            continue
        name = sender(replicas, record)
        pushes[name] += 1
        boards.setdefault(name, set()).add(record["board"])
    total = sum(pushes.values())
    return Shares({r.name: pushes[r.name] / total if total else math.nan for r in replicas},
                  {r.name: len(boards[r.name]) / len(ids) for r in replicas}, total)


def first_pushes_after(seen: list[dict[str, Any]], survivor: Replica, ids: list[str],
                       killed: float) -> dict[str, float]:
    """Each board's first push from the survivor after the kill: seconds after it."""
    wanted, first = set(ids), dict[str, float]()
    for record in seen:
        if record["arrival"] >= killed and record["board"] in wanted and survivor.sent(record.get("user_agent", "")):
            first.setdefault(record["board"], record["arrival"] - killed)
    return first


def per_slot(boards_seen: dict[tuple[str, str], dict[str, Any]], replicas: list[Replica],
             spans: list[tuple[str, float, float]], starts: list[datetime], lead: int, killed: float,
             count: int) -> list[str]:
    """A line per measured slot: pairs on time, who sent them, its first and last push from its send instant."""
    by_slot: dict[str, list[dict[str, Any]]] = {}
    for (_, key), record in boards_seen.items():
        by_slot.setdefault(key, []).append(record)
    span = {key: (first, last) for key, first, last in spans}
    lines = []
    for start in starts:
        key = iso(start)
        firsts = by_slot.get(key, [])
        senders_ = Counter(sender(replicas, r) for r in firsts)
        send = start.timestamp() - lead
        mark = "  <- kill -9" if send <= killed < send + (starts[1] - starts[0]).total_seconds() else ""
        first, last = span.get(key, (math.nan, math.nan))
        lines.append(f"  slot {key}: {sum(on_time(r) for r in firsts)} of {count} on time, {len(firsts)} arrived "
                     f"({', '.join(f'{n} {c}' for n, c in sorted(senders_.items())) or 'none'}); first push "
                     f"{first:+.0f} ms, last {last:+.0f} ms after its send instant{mark}")
    return lines


# ------------------------------------------------------------------ the run

def keep_log(path: Path, directory: Path) -> None:
    if path.exists():
        shutil.copyfile(path, directory / path.name)


def replicas(run: Run, args: argparse.Namespace) -> int:
    isolate_environment()
    raise_open_files(2 * args.boards + 512)  # the receiver: a connection from each replica to each board
    url = run.stack.enter_context(scratch_database(run.workdir, "replicas", server=args.database_url))
    pair = [Displayd(run, url, name=f"replica-{n}", log_level=args.log_level) for n in "ab"]
    if args.keep_log is not None:  # unwound after the children have stopped
        args.keep_log.mkdir(parents=True, exist_ok=True)
        for displayd in pair:
            run.stack.callback(keep_log, displayd.log_path, args.keep_log)
    admin_key = pair[0].prepare()
    receiver_child, receiver, ids, took = lead_boards(run, pair[0], count=args.boards, lead=args.lead)
    print(f"created {args.boards} push boards with lead_seconds {args.lead} in {took:.1f} s (service layer)",
          flush=True)

    both: list[Replica] = []
    for displayd in pair:
        base = displayd.serve()
        both.append(Replica(displayd, base, displayd.serving.process.pid))
    settled = datetime.now(UTC) + timedelta(seconds=args.settle)
    print(f"serving: {', '.join(f'{r.name} pid {r.pid} at {r.base}' for r in both)}", flush=True)
    campaign_start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    with admin_client(both[0].base, admin_key) as client:
        create_campaign(client, name="bench replicas", starts_at=campaign_start,
                        ends_at=campaign_start + timedelta(days=1), dwell_seconds=args.dwell, targets={"all": True})
    waited = wait_received(receiver, args.boards, sender=pair[0].serving, timeout=120)
    starts = measured_slots(campaign_start, dwell=args.dwell, lead=args.lead, count=args.slots,
                            after=max(datetime.now(UTC), settled))
    first_send = starts[0] - timedelta(seconds=args.lead)
    kill_at = first_send + timedelta(seconds=args.kill_at)
    print(f"the current slot reached every board {waited:.1f} s after the campaign was created; measuring "
          f"{args.slots} slots of {args.dwell} s, {iso(starts[0])} .. {iso(starts[-1])}; kill -9 at {iso(kill_at)} "
          f"(+{args.kill_at:.1f} s)", flush=True)

    look = kill_at - timedelta(seconds=args.dwell / 2)  # between two fan-outs
    wait_until(look, *pair)
    sent = senders(receiver, since=first_send.timestamp() if look > first_send else 0.0)
    before = [read_metrics(r.base) for r in both]
    victim = max(both, key=lambda r: sum(n for agent, n in sent.items() if r.sent(agent)))
    survivor = next(r for r in both if r is not victim)
    wait_until(kill_at, *pair)
    killed = time.time()
    victim.displayd.kill()
    print(f"killed {victim.name} (pid {victim.pid}) with SIGKILL; {survivor.name} goes on", flush=True)
    led_again = watch_survivor(survivor, killed, starts[-1] + timedelta(seconds=args.dwell + 1),
                               lead_gauge(before))
    seen, rows = records(receiver), survivor.displayd.rotation_log(starts)
    after = read_metrics(survivor.base)
    survivor.displayd.stop()
    run.procs.finish(receiver_child)
    report(args, Killed(both, victim, survivor, killed, led_again, before, after), ids, starts, seen, rows)
    return 0


def report(args: argparse.Namespace, k: Killed, ids: list[str], starts: list[datetime], seen: list[dict[str, Any]],
           rows: list[tuple[str, datetime, datetime | None]]) -> None:
    """Print what the boards, the rotation log, the /metrics and the logs say, then the four summary lines."""
    both, victim, survivor, killed = k.both, k.victim, k.survivor, k.at
    boards = at_boards(seen, ids, starts, args.lead)
    shares = shares_before(seen, both, ids, {iso(s) for s in starts}, killed)
    resumed = first_pushes_after(seen, survivor, ids, killed)
    duplicates = repeated(seen)
    logged, statuses = in_log(rows)
    print(*per_slot(boards.firsts, both, boards.per_slot, starts, args.lead, killed, args.boards), sep="\n")
    for replica, values in zip(both, k.before, strict=True):
        print(f"  /metrics of {replica.name} just before the kill: {leading(values)}", flush=True)
    print(f"  /metrics of {survivor.name} at the end: {leading(k.after)}", flush=True)
    print(f"  at the boards: {boards.on_time} of {boards.expected} on time, {boards.arrived} arrived, "
          f"{len(boards.late_ms)} late (p50 {ms(boards.late_ms, 0.5)} ms, p99 {ms(boards.late_ms, 0.99)} ms, "
          f"max {ms(boards.late_ms, 1.0)} ms); {boards.revisions} later revisions; {len(seen)} pushes received "
          f"over the run", flush=True)
    strangers = sum(1 for record in seen if sender(both, record) == "other")
    if strangers:
        print(f"  warning: {strangers} pushes carried neither replica's pid in their user-agent (the shares count "
              f"them as neither's), e.g. {next(r.get('user_agent') for r in seen if sender(both, r) == 'other')!r}",
              flush=True)
    print(f"  rotation log: {len(rows)} rows of {boards.expected}, {logged} delivered by their start; "
          f"statuses {statuses}", flush=True)
    for displayd in (r.displayd for r in both):
        problems = displayd.logged_problems()
        if problems:
            print(f"  {displayd.name} logged {len(problems)} warning/error lines (with tracebacks); the first ones:",
                  flush=True)
            for line in problems[:args.log_lines]:
                print(f"  | {line}", flush=True)

    each = "; ".join(f"{r.name} {100 * shares.pushes[r.name]:.1f} % of the pushes, {100 * shares.boards[r.name]:.1f} "
                     f"% of the boards" for r in both)
    balanced = all(SHARE[0] <= s <= SHARE[1] for s in (*shares.pushes.values(), *shares.boards.values()))
    victim_boards = {r["board"] for r in seen if r["arrival"] < killed and victim.sent(r.get("user_agent", ""))}
    victims = [t for board, t in resumed.items() if board in victim_boards]
    every = max(resumed.values()) if len(resumed) == len(ids) else math.inf
    said = "-" if k.led_again is None else f"{k.led_again:.1f} s"
    share = boards.on_time / boards.expected
    print(f"replicas shares before the kill: {each} ({shares.counted} pushes; target {100 * SHARE[0]:.0f}–"
          f"{100 * SHARE[1]:.0f} % each: {verdict(balanced)})")
    print(f"replicas led again: every board pushed by {survivor.name} "
          f"{'never' if math.isinf(every) else f'{every:.1f} s'} after the kill -9 of {victim.name} "
          f"({len(resumed)} of {len(ids)} boards; target <= {LED_AGAIN:.0f} s: {verdict(every <= LED_AGAIN)}); "
          f"{victim.name}'s {len(victims)} boards p50 {percentile(victims, 0.5):.1f} s; {survivor.name}'s /metrics "
          f"said it led everything after {said}")
    print(f"replicas on time: {100 * share:.2f} % of {boards.expected} (board, slot) pushes at the board by the "
          f"slot's start over the run (target >= {100 * ON_TIME:.0f} %: {verdict(share >= ON_TIME)}); "
          f"{boards.expected - boards.arrived} missing, {len(boards.late_ms)} late")
    print(f"replicas duplicates: {duplicates} pushes of a (board, campaign, slot, revision) received before, "
          f"over the run (target 0: {verdict(duplicates == 0)}) ({args.boards} boards, lead {args.lead} s, "
          f"dwell {args.dwell} s, {args.slots} slots, kill at +{args.kill_at:.1f} s, postgresql)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--boards", type=int, default=4000, help="push boards (default 4000)")
    parser.add_argument("--lead", type=int, default=2, help="the boards' lead_seconds, 0..300 (default 2)")
    parser.add_argument("--dwell", type=int, default=5, help="campaign dwell seconds, >= 5 (default 5)")
    parser.add_argument("--slots", type=int, default=50,
                        help="slots measured: the run lasts slots × dwell seconds (default 50)")
    parser.add_argument("--kill-at", type=float, default=None,
                        help="seconds after the first measured slot's send instant to kill -9 the replica that "
                             "pushed the most (default: the middle slot's send instant + 0.5 s)")
    parser.add_argument("--settle", type=float, default=20.0,
                        help="seconds after both replicas are ready before the measured slots (default 20)")
    parser.add_argument("--log-level", default="WARNING", help="the replicas' log level (default WARNING)")
    parser.add_argument("--log-lines", type=int, default=40,
                        help="warning/error log lines shown per replica (default 40)")
    parser.add_argument("--keep-log", type=Path, default=None,
                        help="copy the replicas' logs (replica-a.log, replica-b.log) into this directory at the end")
    parser.add_argument("--database-url", type=postgresql_url, default=postgresql_url(LOCAL_POSTGRESQL),
                        help="the PostgreSQL server: a scratch database is created beside the one named "
                             "(default the local one, postgres@127.0.0.1:5432/test)")
    args = parse_args(parser, argv, QUICK)
    if args.kill_at is None:
        args.kill_at = (args.slots // 2) * args.dwell + 0.5
    if (not 1 <= args.boards <= 99_999 or args.slots < 2 or args.dwell < 5
            or not 0 <= args.lead < min(args.dwell, 301) or args.settle < 0):
        parser.error("--boards must be 1..99999, --slots at least 2, --dwell at least 5, --lead 0..300 and "
                     "shorter than the dwell, --settle not negative")
    if not 0 < args.kill_at < args.slots * args.dwell:
        parser.error(f"--kill-at must fall within the measured run: 0 < S < slots × dwell = {args.slots * args.dwell}")
    return run_bench("replicas", lambda run: replicas(run, args))


if __name__ == "__main__":
    sys.exit(main())
