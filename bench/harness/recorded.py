"""Push boards with a lead, on recording fake boards: their set-up, the slots measured, what the boards saw.

    receiver_child, receiver, ids, took = lead_boards(run, displayd, count=1000, lead=2)  # displayd not serving
    ...                                                        # serve, a campaign, its current slot pushed
    starts = measured_slots(campaign_start, dwell=5, lead=2, count=20, after=datetime.now(UTC))
    seen = records(receiver)                                   # bench/harness/receiver.py, once the slots are over
    boards = at_boards(seen, ids, starts, lead=2)              # on time, arrived, duplicates, per slot
    repeated(seen)                                             # webhook-ids received again, over the whole run
    in_log(displayd.rotation_log(starts))                      # displayd's own view: rows on time, by status

A push board with `lead_seconds` (DESIGN "Push") is sent each slot's `show` that long before the
slot starts and shows it at `slot.starts_at` by its own clock, so a (board, slot) pair is on time
when its first `show` has arrived by `starts_at`, however long the fan-out takes; a pair that
never arrived counts against the share. The webhook-id is `<board>:<campaign>:<slot>:<revision>`:
one received twice is the same revision of the same slot pushed twice (a duplicate).
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bench.harness.api import iso, parse_iso
from bench.harness.boards import board_ids, create_boards
from bench.harness.deployment import Displayd
from bench.harness.processes import Child
from bench.harness.receiver import start_receiver
from bench.harness.running import Run
from displayd.config import Settings


def set_lead(settings: Settings, seconds: int) -> None:
    """Every board's `lead_seconds`, straight in the database by one UPDATE (the column the API's field sets;
    displayd stopped: it reads boards at start)."""
    from sqlalchemy import update

    from displayd.db.models import Board
    from displayd.db.session import create_engine

    async def work() -> None:
        engine = create_engine(settings)
        try:
            async with engine.begin() as connection:
                await connection.execute(update(Board).values(lead_seconds=seconds))
        finally:
            await engine.dispose()

    asyncio.run(work())


def lead_boards(run: Run, displayd: Displayd, *, count: int, lead: int,
                name: str = "receiver") -> tuple[Child, str, list[str], float]:
    """A `recording` receiver, and `count` push boards at it with `lead_seconds` `lead` in displayd's database
    (created through the board service while nothing serves); (receiver, its base URL, board ids, seconds the
    boards took)."""
    receiver_child, receiver = start_receiver(run, "recording", name=name)
    ids = board_ids(0, count)
    _, took = create_boards(displayd.settings(), ids, delivery="push", endpoint=lambda b: f"{receiver}/{b}")
    set_lead(displayd.settings(), lead)
    return receiver_child, receiver, ids, took


def measured_slots(campaign_start: datetime, *, dwell: int, lead: int, count: int,
                   after: datetime) -> list[datetime]:
    """The first `count` slot starts of a campaign starting at `campaign_start` whose send instant
    (start − lead) is more than 0.5 s after `after`."""
    first = after + timedelta(seconds=lead + 0.5)
    k = math.ceil((first - campaign_start).total_seconds() / dwell)
    return [campaign_start + timedelta(seconds=(k + i) * dwell) for i in range(count)]


@dataclass
class AtBoards:
    expected: int
    on_time: int
    arrived: int
    duplicates: int  # pushes of the measured slots whose webhook-id had been received before
    revisions: int  # pushes of a revision > 0 of a measured slot (none expected: nothing changes)
    late_ms: list[float]
    early_ms: list[float]  # starts_at − arrival of the pairs on time
    per_slot: list[tuple[str, float, float]]  # (starts_at, first, last arrival − (starts_at − lead)) in ms
    firsts: dict[tuple[str, str], dict[str, Any]]  # (board, starts_at) → the record of its first `show`


def at_boards(seen: list[dict[str, Any]], ids: list[str], starts: list[datetime], lead: int) -> AtBoards:
    """What the receiver saw of the slots `starts` on the boards `ids` (records of bench/harness/receiver.py)."""
    wanted = {iso(s): s.timestamp() for s in starts}
    boards = set(ids)
    firsts: dict[tuple[str, str], dict[str, Any]] = {}
    ids_seen: Counter[str] = Counter()
    spans: dict[str, list[float]] = {}
    revisions = 0
    for record in seen:
        if record.get("type") not in ("show", "blank") or not record.get("starts_at"):
            continue
        key = iso(parse_iso(record["starts_at"]))
        if key not in wanted or record["board"] not in boards:
            continue
        ids_seen[record["webhook_id"]] += 1
        if not record["webhook_id"].endswith(":0"):
            revisions += 1
            continue
        if ids_seen[record["webhook_id"]] == 1 and record["type"] == "show":
            firsts.setdefault((record["board"], key), record)
            spans.setdefault(key, []).append((record["arrival"] - wanted[key] + lead) * 1000)
    late = [(r["arrival"] - wanted[k]) * 1000 for (_, k), r in firsts.items() if r["arrival"] > wanted[k]]
    early = [(wanted[k] - r["arrival"]) * 1000 for (_, k), r in firsts.items() if r["arrival"] <= wanted[k]]
    per_slot = [(k, min(spans[k]), max(spans[k])) for k in sorted(spans)]
    return AtBoards(len(ids) * len(starts), len(early), len(firsts), sum(n - 1 for n in ids_seen.values()),
                    revisions, late, early, per_slot, firsts)


def on_time(record: dict[str, Any]) -> bool:
    """Whether a pushed `show` (a record of bench/harness/receiver.py) arrived by its slot's start."""
    return bool(record["arrival"] <= parse_iso(record["starts_at"]).timestamp())


def in_log(rows: list[tuple[str, datetime, datetime | None]]) -> tuple[int, dict[str, int]]:
    """(rows delivered by their slot's start, rows by status) of `Displayd.rotation_log` rows."""
    statuses = Counter(status for status, _, _ in rows)
    on_time = sum(1 for _, starts_at, delivered_at in rows if delivered_at is not None and delivered_at <= starts_at)
    return on_time, dict(statuses)


def repeated(seen: list[dict[str, Any]]) -> int:
    """Pushes whose webhook-id had been received before, over every push recorded."""
    counts = Counter(record["webhook_id"] for record in seen if record.get("webhook_id"))
    return sum(n - 1 for n in counts.values())
