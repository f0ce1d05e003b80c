"""Retention benchmark: how much purging 2 million old rotation rows moves slot-start lateness.

What it measures: slot-start lateness (per slot, the first of its pushes to reach a board,
minus the slot's start) on `--boards` (default 1,000) push boards with `--dwell` (default
5 s) slots, in two runs of `displayd serve` on the same database holding `--old-rows`
(default 2,000,000) rotation rows two years old:
- A, the baseline: `log_retention_days` 36500, so the leader's purge finds nothing to delete;
- B: `log_retention_days` 400, so the leader purges every old row (`displayd.logbook.retention`,
  batches of 5,000, each its own transaction) while the boards rotate.
Both runs measure `--slots` (default 30) boundaries from the moment the leader's first purge
starts (RETENTION_AFTER_TAKEOVER after it takes the lead). B's figures are those of its
slots that started while the purge ran; A's, as many of its first slots. Target: B's p99
within 10 % of A's. The per-(board, slot) arrival p99 is printed beside it (it adds the
fan-out of 1,000 pushes, and the wait of the second claim's rows for a purge batch).

How: a scratch database (a SQLite file, or with `--database-url` one created beside that
PostgreSQL database and dropped at the end), migrated; the old rows inserted by one
INSERT … SELECT per 200,000 rows (the daily-total triggers run, as they would have); the
boards created with displayd's board service; the fake boards one `recording` receiver in
a process of its own (bench/harness/receiver.py). While B runs, the purge's start and end
are read from the database once a second (`scheduler_state.purged_before`, and the oldest
row left, by the starts_at index).

Run: `.venv/bin/python bench/retention.py [--boards 1000] [--old-rows 2000000] [--slots 30]
[--dwell 5] [--database-url URL]`, or `--quick` (50 boards, 50,000 old rows, 6 slots).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's displayd and bench.harness

from sqlalchemy import select, text

from bench.harness.api import admin_client, create_campaign, iso, parse_iso
from bench.harness.boards import board_ids, create_boards
from bench.harness.databases import postgresql_url, scratch_database
from bench.harness.deployment import Displayd, isolate_environment
from bench.harness.figures import percentile, ratio, verdict
from bench.harness.receiver import records, start_receiver, wait_received
from bench.harness.running import Run, parse_args, run_bench
from displayd.db.models import Rotation, SchedulerState
from displayd.delivery.scheduler import RETENTION_AFTER_TAKEOVER

TARGET = 1.10
CHUNK = 200_000
OLD_BOARDS = 1000
OLD_START = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=730)
QUICK = {"boards": 50, "old_rows": 50_000, "slots": 6}

# One statement per chunk: row g of the old log is board g % 1000, slot g // 1000, 30 s slots.
OLD_ROWS = {
    "postgresql": """
        INSERT INTO rotation (board_id, campaign_id, slot_index, slogan_id, content_hash, starts_at, ends_at,
                              push_status, attempts, local_day)
        SELECT 'old-' || (g % {boards}), 0, g / {boards}, 1 + g % 5, 'sha256:old', s, s + interval '30 seconds',
               'delivered', 1, (s AT TIME ZONE 'UTC')::date
        FROM generate_series({first}, {last}) AS g,
             LATERAL (SELECT timestamptz '{start}' + (g / {boards}) * interval '30 seconds' AS s) AS t""",
    "sqlite": """
        WITH RECURSIVE g(n) AS (SELECT {first} UNION ALL SELECT n + 1 FROM g WHERE n < {last}),
             t(n, s) AS (SELECT n, datetime('{start}', '+' || ((n / {boards}) * 30) || ' seconds') FROM g)
        INSERT INTO rotation (board_id, campaign_id, slot_index, slogan_id, content_hash, starts_at, ends_at,
                              push_status, attempts, local_day)
        SELECT 'old-' || (n % {boards}), 0, n / {boards}, 1 + n % 5, 'sha256:old', s || '.000000',
               datetime(s, '+30 seconds') || '.000000', 'delivered', 1, date(s) FROM t""",
}


def database(displayd: Displayd, *statements: Any) -> list[Any]:
    """Run statements (SQL text or SQLAlchemy) on displayd's database from this process; the first row of each."""
    from displayd.db.session import create_engine

    async def work() -> list[Any]:
        engine = create_engine(displayd.settings())
        try:
            async with engine.begin() as connection:
                results = [await connection.execute(text(s) if isinstance(s, str) else s) for s in statements]
                return [result.first() if result.returns_rows else None for result in results]
        finally:
            await engine.dispose()

    return asyncio.run(work())


def insert_old_rows(displayd: Displayd, count: int) -> None:
    started = time.monotonic()
    start = OLD_START.strftime("%Y-%m-%d %H:%M:%S")
    for first in range(0, count, CHUNK):
        sql = OLD_ROWS[displayd.kind].format(boards=OLD_BOARDS, first=first, last=min(count, first + CHUNK) - 1,
                                             start=start)
        database(displayd, sql)
        print(f"\r  old rows: {min(count, first + CHUNK)} of {count}", end="", flush=True)
    if displayd.kind == "postgresql":
        database(displayd, "ANALYZE rotation")
    print(f" in {time.monotonic() - started:.0f} s", flush=True)


def slot_figures(seen: list[dict[str, Any]], starts: list[datetime]) -> tuple[list[float], list[float]]:
    """(per slot: ms to its first push's arrival, per (board, slot): ms to the arrival) for the slots `starts`."""
    wanted = {iso(s): s.timestamp() for s in starts}
    first: dict[str, float] = {}
    pairs: dict[tuple[str, str], float] = {}
    for record in seen:
        key = iso(parse_iso(record["starts_at"])) if record.get("starts_at") else None
        if record.get("type") != "show" or key not in wanted:
            continue
        late = (record["arrival"] - wanted[key]) * 1000
        first[key] = min(first.get(key, math.inf), late)
        pairs.setdefault((record["board"], key), late)
    return sorted(first.values()), sorted(pairs.values())


def lateness_run(args: argparse.Namespace, displayd: Displayd, receiver: str, campaign_start: datetime,
                 watch: bool) -> tuple[list[datetime], tuple[datetime, datetime] | None]:
    """Serve and measure `--slots` boundaries from the purge's start; (their starts, the purge's (start, end))."""
    before = database(displayd, select(SchedulerState.purged_before))[0][0]  # what run A's purge left
    displayd.serve(name=f"displayd-{displayd.env['DISPLAYD_LOG_RETENTION_DAYS']}")
    ready = datetime.now(UTC)
    purge_at = ready + RETENTION_AFTER_TAKEOVER
    k = math.ceil((purge_at - campaign_start).total_seconds() / args.dwell)
    starts = [campaign_start + timedelta(seconds=(k + i) * args.dwell) for i in range(args.slots)]
    end = starts[-1] + timedelta(seconds=args.dwell + 2)
    purge: list[datetime | None] = [None, None]
    while datetime.now(UTC) < end:
        displayd.serving.check_alive()
        if watch and purge[1] is None:
            horizon, oldest = database(displayd, select(SchedulerState.purged_before), select(Rotation.id).where(
                Rotation.starts_at < OLD_START + timedelta(days=300)).order_by(Rotation.starts_at).limit(1))
            if horizon[0] != before and purge[0] is None:  # the purge moves the horizon, then deletes
                purge[0] = datetime.now(UTC)
            if purge[0] is not None and oldest is None:
                purge[1] = datetime.now(UTC)
        time.sleep(1.0)
    displayd.stop()
    if watch and (purge[0] is None or purge[1] is None):
        print("  the purge did not finish within the measured slots: the figures cover its first part", flush=True)
    watched = (purge[0] or end, purge[1] or end) if watch else None
    return starts, watched


def retention(run: Run, args: argparse.Namespace) -> int:
    isolate_environment()
    url = run.stack.enter_context(scratch_database(run.workdir, "retention", server=args.database_url))
    keep = Displayd(run, url, overrides={"log_retention_days": "36500"})
    purge = Displayd(run, url, overrides={"log_retention_days": "400"})
    admin_key = keep.prepare()
    insert_old_rows(keep, args.old_rows)
    _, receiver = start_receiver(run, "recording", name="receiver")
    ids = board_ids(0, args.boards)
    _, took = create_boards(keep.settings(), ids, delivery="push", endpoint=lambda b: f"{receiver}/{b}")
    print(f"created {args.boards} push boards in {took:.1f} s", flush=True)
    base = keep.serve(name="displayd-setup")
    campaign_start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    with admin_client(base, admin_key) as client:
        create_campaign(client, name="bench retention", starts_at=campaign_start,
                        ends_at=campaign_start + timedelta(days=1), dwell_seconds=args.dwell, targets={"all": True})
    wait_received(receiver, args.boards, sender=keep.serving, timeout=60)
    keep.stop()

    print(f"A: no purge ({args.old_rows} old rows kept), {args.slots} slots of {args.dwell} s", flush=True)
    a_starts, _ = lateness_run(args, keep, receiver, campaign_start, watch=False)
    print(f"B: purging {args.old_rows} old rows, {args.slots} slots of {args.dwell} s", flush=True)
    b_starts, window = lateness_run(args, purge, receiver, campaign_start, watch=True)
    assert window is not None
    left = database(purge, "SELECT count(*) FROM rotation WHERE board_id LIKE 'old-%'")[0][0]
    # The boundaries that came while the purge ran (its start and end are read once a second).
    during = [s for s in b_starts if window[0] - timedelta(seconds=1) <= s <= window[1]]
    print(f"  purge ran {(window[1] - window[0]).total_seconds():.0f} s (to within 1 s), {left} old rows left; "
          f"{len(during)} of B's {len(b_starts)} boundaries came during it", flush=True)
    if not during:
        print("  no boundary came during the purge (too few old rows?): comparing all of B's slots", flush=True)
        during = b_starts
    seen = records(receiver)
    a_first, a_pairs = slot_figures(seen, a_starts[:len(during)])
    b_first, b_pairs = slot_figures(seen, during)
    expected = args.boards * len(during)
    for name, first, pairs in (("A, no purge", a_first, a_pairs), ("B, purging", b_first, b_pairs)):
        print(f"  {name}: {len(first)} slots, slot start p50 {percentile(first, 0.5):.1f} ms, p99 "
              f"{percentile(first, 0.99):.1f} ms; {len(pairs)} of {expected} (board, slot) pushes arrived, "
              f"p50 {percentile(pairs, 0.5):.1f} ms, p99 {percentile(pairs, 0.99):.1f} ms", flush=True)
    slot_ratio = ratio(percentile(b_first, 0.99), percentile(a_first, 0.99))
    pair_ratio = ratio(percentile(b_pairs, 0.99), percentile(a_pairs, 0.99))
    problems = purge.logged_problems()
    for line in problems[:40]:
        print(f"  | {line}", flush=True)
    print(f"retention slot start p99: A {percentile(a_first, 0.99):.0f} ms, B (purging {args.old_rows} rows) "
          f"{percentile(b_first, 0.99):.0f} ms, ratio {slot_ratio:.2f} (target <= {TARGET:.2f}: "
          f"{verdict(slot_ratio <= TARGET and left == 0)}); per (board, slot) p99 ratio {pair_ratio:.2f}; "
          f"{len(during)} slots, {args.boards} boards, {purge.kind}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--boards", type=int, default=1000, help="push boards rotating (default 1000)")
    parser.add_argument("--old-rows", type=int, default=2_000_000, help="old rotation rows to purge (default 2000000)")
    parser.add_argument("--slots", type=int, default=30, help="slot boundaries measured per run (default 30)")
    parser.add_argument("--dwell", type=int, default=5, help="campaign dwell seconds, >= 5 (default 5)")
    parser.add_argument("--database-url", type=postgresql_url, default=None,
                        help="run on this PostgreSQL server, in a scratch database created beside the one named "
                             "(default: a temporary SQLite file)")
    args = parse_args(parser, argv, QUICK)
    if args.boards < 1 or args.boards > 99_999 or args.old_rows < 1 or args.slots < 1 or args.dwell < 5:
        parser.error("--boards (up to 99999), --old-rows and --slots must be positive and --dwell at least 5")
    return run_bench("retention", lambda run: retention(run, args))


if __name__ == "__main__":
    sys.exit(main())
