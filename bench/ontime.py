"""On-time benchmark: the share of (board, slot) pushes that reach their board by the slot's start.

What it measures: push boards with `lead_seconds` set (DESIGN "Push") are sent each slot's
`show` that long before the slot starts, and show it at `slot.starts_at` by their own clock,
so a slot is on time at a board when its push has arrived by then, however long the fan-out
takes. Two scenarios (`--scenario A,B`, both by default, one after the other):
- A: 1,000 push boards, `lead_seconds` 2, dwell 5 s, 20 slots;
- B: 10,000 push boards, `lead_seconds` 5, dwell 30 s, 3 slots.
`--boards`, `--lead`, `--dwell` and `--slots` replace a scenario's own. For each:
- at the boards: the share of (board, slot) pairs whose first push (a `show`, its `slot.starts_at`
  the slot's) arrived at or before `starts_at` (target >= 99.9 %; a pair that never arrived
  counts against it), the pairs missing, pushes repeating a `webhook-id` already received
  (duplicates) and later revisions of a slot, the lateness p50/p99/max of the late ones, and
  how early the others arrive (starts_at − arrival, p1/p50/p99: lead − (time to a board));
- in the rotation log (displayd's own view): the share of the slots' rows with
  `delivered_at <= starts_at`, rows missing, their statuses;
- per slot, from the boards: when its first and last push arrived, counted from the instant
  it was due to be sent (starts_at − lead). A late first push means the sync ran late; a late
  last one with an early first one, that the fan-out (with its `spread`) took longer than the lead.
There is no bare baseline: the figure is a share of pushes on time against the slot's own
start, a deadline that does not depend on the machine; a bare client's speed would not change
what the target means (bench/fanout.py and bench/slots.py measure the fan-out's speed against one).

How: loopback only, free ports, a temporary directory, for each scenario a scratch database
(a SQLite file, or with `--database-url` one created beside that PostgreSQL database and
dropped at the end): `displayd db upgrade`, an admin key, the section IV slogans. The boards
are created with displayd's board service while displayd is stopped (bench/harness/boards.py),
their `lead_seconds` set in the database by one UPDATE (the same column the API's field sets;
bench/harness/recorded.py).
The fake boards: one `recording` receiver in a process of its own (bench/harness/receiver.py),
200 to every POST /<board_id>, each arrival's time.time(), webhook-id and `slot.starts_at` kept.
`displayd serve` is started, a campaign of every approved slogan on every board created through
the API, starting at a whole minute in the past; its current slot is pushed at once (not
counted); the measured slots are the next `--slots` whose send instant (starts_at − lead) is
more than 0.5 s after those pushes arrived. The run waits until the last measured slot has
ended (a push arriving after its slot's end is missing), then reads the receiver and the log.
displayd's warnings and errors are printed at the end (`--keep-log DIR` keeps its logs; with
`--log-level DEBUG` each sync's timing is in them). The machine has 2 cores: a load average
above 0.5 before the run is warned about.

Run: `.venv/bin/python bench/ontime.py [--scenario A,B] [--boards N] [--lead S] [--dwell S]
[--slots N] [--database-url URL]`, or `--quick` (scenario A with 200 boards, 5 slots) to check it works.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's displayd and bench.harness

from bench.harness.api import admin_client, create_campaign, iso
from bench.harness.databases import postgresql_url, scratch_database
from bench.harness.deployment import Displayd, isolate_environment
from bench.harness.figures import ms, verdict
from bench.harness.processes import raise_open_files
from bench.harness.receiver import records, wait_received
from bench.harness.recorded import at_boards, in_log, lead_boards, measured_slots
from bench.harness.running import Run, parse_args, run_bench

TARGET = 0.999


@dataclass(frozen=True)
class Scenario:
    boards: int
    lead: int
    dwell: int
    slots: int


SCENARIOS = {"A": Scenario(boards=1000, lead=2, dwell=5, slots=20),
             "B": Scenario(boards=10_000, lead=5, dwell=30, slots=3)}
QUICK = {"scenario": "A", "boards": 200, "slots": 5}


# ------------------------------------------------------------------ one scenario

def scenario(run: Run, args: argparse.Namespace, name: str, sc: Scenario) -> str:
    """Run one scenario in a directory of its own; its summary line."""
    workdir = run.workdir / name
    workdir.mkdir()
    sub = replace(run, workdir=workdir)
    url = run.stack.enter_context(scratch_database(workdir, f"ontime_{name.lower()}", server=args.database_url))
    displayd = Displayd(sub, url, log_level=args.log_level)
    if args.keep_log is not None:  # unwound after the children have stopped
        args.keep_log.mkdir(parents=True, exist_ok=True)
        run.stack.callback(lambda: displayd.log_path.exists() and shutil.copyfile(
            displayd.log_path, args.keep_log / f"displayd-{name}.log"))
    admin_key = displayd.prepare()
    receiver_child, receiver, ids, took = lead_boards(sub, displayd, count=sc.boards, lead=sc.lead)
    print(f"{name}: created {sc.boards} push boards with lead_seconds {sc.lead} in {took:.1f} s (service layer)",
          flush=True)

    base = displayd.serve(name=f"displayd-{name}")
    campaign_start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    with admin_client(base, admin_key) as client:
        create_campaign(client, name=f"bench ontime {name}", starts_at=campaign_start,
                        ends_at=campaign_start + timedelta(days=1), dwell_seconds=sc.dwell, targets={"all": True})
    waited = wait_received(receiver, sc.boards, sender=displayd.serving, timeout=120)
    starts = measured_slots(campaign_start, dwell=sc.dwell, lead=sc.lead, count=sc.slots, after=datetime.now(UTC))
    print(f"{name}: the current slot reached every board {waited:.1f} s after the campaign was created; measuring "
          f"{sc.slots} slots of {sc.dwell} s, {iso(starts[0])} .. {iso(starts[-1])}, {displayd.kind}", flush=True)
    displayd.wait_until(starts[-1] + timedelta(seconds=sc.dwell + 1))  # the last slot has ended
    seen, rows = records(receiver), displayd.rotation_log(starts)
    displayd.stop()
    run.procs.finish(receiver_child)

    boards = at_boards(seen, ids, starts, sc.lead)
    logged, statuses = in_log(rows)
    share, log_share = boards.on_time / boards.expected, logged / boards.expected
    for key, first, last in boards.per_slot:
        print(f"  slot {key}: first push {first:+.0f} ms, last {last:+.0f} ms after its send instant "
              f"(starts_at − {sc.lead} s)", flush=True)
    print(f"  at the boards: {boards.on_time} of {boards.expected} on time, {boards.arrived} arrived, "
          f"{len(boards.late_ms)} late (p50 {ms(boards.late_ms, 0.5)} ms, p99 {ms(boards.late_ms, 0.99)} ms, "
          f"max {ms(boards.late_ms, 1.0)} ms); early by p1 {ms(boards.early_ms, 0.01)} ms, "
          f"p50 {ms(boards.early_ms, 0.5)} ms, p99 {ms(boards.early_ms, 0.99)} ms; {boards.duplicates} duplicate "
          f"webhook-ids, {boards.revisions} later revisions", flush=True)
    print(f"  rotation log: {len(rows)} rows of {boards.expected}, {logged} delivered by their start; "
          f"statuses {statuses}", flush=True)
    problems = displayd.logged_problems()
    if problems:
        print(f"  displayd logged {len(problems)} warning/error lines (with tracebacks); the first ones:", flush=True)
        for line in problems[:args.log_lines]:
            print(f"  | {line}", flush=True)
    missing = boards.expected - boards.arrived
    return (f"ontime {name}: {100 * share:.2f} % of {boards.expected} (board, slot) pushes at the board by the "
            f"slot's start (target >= {100 * TARGET:.1f} %: {verdict(share >= TARGET)}); "
            f"rotation log {100 * log_share:.2f} %; "
            f"{missing} missing, {boards.duplicates} duplicates; late p50/p99/max "
            f"{ms(boards.late_ms, 0.5)}/{ms(boards.late_ms, 0.99)}/"
            f"{ms(boards.late_ms, 1.0)} ms; early p50 {ms(boards.early_ms, 0.5)} ms, "
            f"p1 {ms(boards.early_ms, 0.01)} ms ({sc.boards} boards, lead {sc.lead} s, dwell {sc.dwell} s, "
            f"{sc.slots} slots, {displayd.kind})")


def ontime(run: Run, args: argparse.Namespace, runs: dict[str, Scenario]) -> int:
    isolate_environment()
    raise_open_files()
    lines = [scenario(run, args, name, sc) for name, sc in runs.items()]
    print(*lines, sep="\n")
    return 0


def scenarios(value: str) -> list[str]:
    names = [v.strip().upper() for v in value.split(",") if v.strip()]
    if not names or any(n not in SCENARIOS for n in names) or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"a comma-separated list of {', '.join(SCENARIOS)}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--scenario", type=scenarios, default=["A", "B"],
                        help="scenarios to run, in order: A (1000 boards, lead 2 s, dwell 5 s, 20 slots), "
                             "B (10000 boards, lead 5 s, dwell 30 s, 3 slots) (default A,B)")
    parser.add_argument("--boards", type=int, default=None, help="push boards (default: the scenario's)")
    parser.add_argument("--lead", type=int, default=None,
                        help="the boards' lead_seconds, 0..300 (default: the scenario's)")
    parser.add_argument("--dwell", type=int, default=None,
                        help="campaign dwell seconds, >= 5 (default: the scenario's)")
    parser.add_argument("--slots", type=int, default=None, help="slots measured (default: the scenario's)")
    parser.add_argument("--log-level", default="WARNING", help="displayd's log level (default WARNING)")
    parser.add_argument("--log-lines", type=int, default=80, help="warning/error log lines shown (default 80)")
    parser.add_argument("--keep-log", type=Path, default=None,
                        help="copy each scenario's displayd log into this directory at the end")
    parser.add_argument("--database-url", type=postgresql_url, default=None,
                        help="run on this PostgreSQL server, in a scratch database created beside the one named "
                             "(default: a temporary SQLite file)")
    args = parse_args(parser, argv, QUICK)
    given = {field: getattr(args, field) for field in ("boards", "lead", "dwell", "slots")}
    runs = {name: replace(SCENARIOS[name], **{k: v for k, v in given.items() if v is not None})
            for name in args.scenario}
    if any(not 1 <= sc.boards <= 99_999 or sc.slots < 1 or sc.dwell < 5 or not 0 <= sc.lead < min(sc.dwell, 301)
           for sc in runs.values()):
        parser.error("--boards must be 1..99999, --slots positive, --dwell at least 5 and --lead 0..300, "
                     "shorter than the dwell")
    return run_bench("ontime", lambda run: ontime(run, args, runs))


if __name__ == "__main__":
    sys.exit(main())
