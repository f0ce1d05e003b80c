"""The figures bench/replicas.py prints, from receiver records made up here: who sent what before
the kill, when the survivor reached each board, which pairs were on time, which pushes repeated."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.harness.api import iso
from bench.harness.deployment import Displayd
from bench.harness.processes import Processes
from bench.harness.recorded import at_boards, repeated
from bench.harness.running import Run
from bench.replicas import Replica, first_pushes_after, shares_before

START = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)
LEAD = 2


def replica(name: str, pid: int, tmp_path: Path) -> Replica:
    run = Run("replicas", tmp_path, Processes(), ExitStack())
    return Replica(Displayd(run, "postgresql+asyncpg://x@127.0.0.1/none", name=name), "http://127.0.0.1:1", pid)


def push(board: str, slot: int, arrival: float, pid: int, revision: int = 0) -> dict[str, Any]:
    """A record as the receiver dumps it: slot `slot` starts at START + 5 s × slot, sent LEAD s before."""
    starts = START + timedelta(seconds=5 * slot)
    return {"arrival": starts.timestamp() + arrival, "board": board, "type": "show", "starts_at": iso(starts),
            "webhook_id": f"{board}:1:{starts.timestamp():.0f}:{revision}",
            "user_agent": f"displayd/1.0 (host:{pid})"}


def test_shares_takeover_on_time_and_duplicates(tmp_path: Path) -> None:
    a, b = replica("replica-a", 100, tmp_path), replica("replica-b", 200, tmp_path)
    ids = ["bang-00000", "bang-00001", "bang-00002", "bang-00003"]
    starts = [START + timedelta(seconds=5 * k) for k in range(3)]
    killed = starts[1].timestamp() - LEAD + 0.5  # during slot 1's fan-out
    seen = [
        # slot 0: a pushes three boards, b one, all early
        *(push(board, 0, -1.5, 100) for board in ids[:3]), push(ids[3], 0, -1.5, 200),
        # slot 1: a reaches one board before it dies; b its own board on time, then one more late, one never
        push(ids[0], 1, -1.8, 100), push(ids[3], 1, -1.8, 200), push(ids[1], 1, 0.5, 200),
        # slot 2: b everywhere, on time, and one push received twice
        *(push(board, 2, -1.0, 200) for board in ids), push(ids[0], 2, -0.9, 200),
    ]

    shares = shares_before(seen, [a, b], ids, {iso(s) for s in starts}, killed)
    assert shares.counted == 6
    assert shares.pushes == {"replica-a": 4 / 6, "replica-b": 2 / 6}
    assert shares.boards == {"replica-a": 0.75, "replica-b": 0.25}

    resumed = first_pushes_after(seen, b, ids, killed)
    assert sorted(resumed) == ids  # every board, boards 0 and 2 only at slot 2
    assert resumed[ids[2]] == starts[2].timestamp() - 1.0 - killed
    assert resumed[ids[1]] == starts[1].timestamp() + 0.5 - killed

    boards = at_boards(seen, ids, starts, LEAD)
    assert (boards.expected, boards.arrived, boards.on_time, len(boards.late_ms)) == (12, 11, 10, 1)
    assert boards.duplicates == repeated(seen) == 1
