"""Property tests for rotation: determinism, cycle contents, spread, precedence, timelines, paging."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from displayd.rotation import (
    BoardSpec,
    CampaignSpec,
    DailyRange,
    Targets,
    assignment_at,
    cycle,
    next_change,
    page_text,
    slogan_for_slot,
    timeline,
    weighted_cycle,
)

from .builders import SLOGANS, campaign, playlist, utc

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
T0 = utc(2024, 3, 30)  # spans the Berlin spring-forward night
ROOT = Path(__file__).resolve().parents[2]

weights_st = st.lists(st.integers(1, 10), min_size=1, max_size=8)
orders = st.sampled_from(["sequential", "shuffle"])


def spreadable(weights: list[int]) -> bool:
    return len(weights) > 1 and 2 * max(weights) <= sum(weights)


@st.composite
def daily_hours_st(draw: st.DrawFn) -> tuple[DailyRange, ...]:
    count = draw(st.integers(0, 2))
    ranges = []
    for _ in range(count):
        start = draw(st.integers(0, 1439))
        end = draw(st.integers(0, 1440))
        if end == start:
            end = (start + 1) % 1441
        ranges.append(DailyRange(start, end))
    return tuple(ranges)


@st.composite
def campaign_st(draw: st.DrawFn, id: int) -> CampaignSpec:
    start = T0 + timedelta(seconds=draw(st.integers(0, 36 * 3600)))
    return campaign(
        id,
        starts_at=start,
        ends_at=start + timedelta(seconds=draw(st.integers(60, 36 * 3600))),
        tz=draw(st.sampled_from(["Asia/Ho_Chi_Minh", "Europe/Berlin"])),
        daily_hours=draw(daily_hours_st()),
        dwell=draw(st.sampled_from([5, 7, 30, 600, 3600])),
        priority=draw(st.integers(0, 3)),
        order=draw(orders),
        weights=draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)),
        targets=draw(
            st.sampled_from([Targets(all=True), Targets(groups=frozenset({"g"})), Targets(boards=frozenset({"other"}))])
        ),
        paused=draw(st.booleans().map(lambda b: b and draw(st.integers(0, 4)) == 0)),
    )


@st.composite
def scenario_st(draw: st.DrawFn) -> list[CampaignSpec]:
    count = draw(st.integers(1, 4))
    return [draw(campaign_st(id)) for id in range(1, count + 1)]


BOARD = BoardSpec("b", groups=frozenset({"g"}), offset=3)


def brute_force_winner(campaigns: list[CampaignSpec], t: datetime) -> CampaignSpec | None:
    best: CampaignSpec | None = None
    for c in campaigns:
        if c.paused or not c.playlist or not c.targets.includes(BOARD):
            continue
        if not c.starts_at <= t < c.ends_at:
            continue
        local = t.astimezone(ZoneInfo(c.timezone))
        minute = local.hour * 60 + local.minute
        inside = not c.daily_hours or any(
            (r.start_minute <= minute < r.end_minute)
            if r.start_minute < r.end_minute
            else (minute >= r.start_minute or minute < r.end_minute)
            for r in c.daily_hours
        )
        if not inside:
            continue
        if best is None or (c.priority, c.starts_at, c.id) > (best.priority, best.starts_at, best.id):
            best = c
    return best


# (1) the same plan in another process, whatever its hash seed
_CHILD = """
import json, sys
from datetime import datetime, timedelta
from displayd.rotation import BoardSpec, CampaignSpec, PlaylistEntry, Targets, DailyRange, cycle, timeline
spec = json.loads(sys.argv[1])
c = CampaignSpec(
    id=spec["id"], starts_at=datetime.fromisoformat(spec["start"]), ends_at=datetime.fromisoformat(spec["end"]),
    timezone="Europe/Berlin", daily_hours=(DailyRange(300, 60),), dwell_seconds=spec["dwell"], priority=1,
    order=spec["order"], playlist=tuple(PlaylistEntry(i + 100, w) for i, w in enumerate(spec["weights"])),
    targets=Targets(groups=frozenset({"a", "b", "c"})),
)
b = BoardSpec("x", groups=frozenset({"c", "b"}), offset=spec["offset"])
out = {
    "cycles": [list(cycle(c, n)) for n in range(-2, 12)],
    "timeline": [[a.campaign_id, a.slot_index, a.slogan_id, a.starts_at.isoformat(), a.ends_at.isoformat()]
                 for a in timeline([c], b, c.starts_at, c.starts_at + timedelta(hours=6))],
}
print(json.dumps(out))
"""


@settings(max_examples=6, deadline=None)
@given(
    id=st.integers(1, 10**6),
    weights=st.lists(st.integers(1, 10), min_size=2, max_size=6),
    order=orders,
    dwell=st.sampled_from([5, 30, 47]),
    offset=st.integers(-5, 50),
)
def test_same_plan_in_another_process(id: int, weights: list[int], order: str, dwell: int, offset: int) -> None:
    spec = {
        "id": id,
        "start": "2024-03-30T22:00:00+00:00",
        "end": "2024-04-02T00:00:00+00:00",
        "dwell": dwell,
        "order": order,
        "weights": weights,
        "offset": offset,
    }
    results = []
    for seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, json.dumps(spec)], env=env, capture_output=True, text=True, check=True
        )
        results.append(json.loads(done.stdout))
    namespace: dict[str, object] = {}
    original_argv = sys.argv
    try:
        import contextlib
        import io

        sys.argv = ["-c", json.dumps(spec)]
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            exec(_CHILD, namespace)
    finally:
        sys.argv = original_argv
    here = json.loads(buffer.getvalue())
    assert results[0] == results[1] == here
    assert here["timeline"]


# (2) every cycle holds every slogan exactly `weight` times
@PROPERTY
@given(id=st.integers(0, 10**9), weights=weights_st, order=orders, n=st.integers(-(10**6), 10**9))
def test_each_cycle_holds_each_slogan_weight_times(id: int, weights: list[int], order: str, n: int) -> None:
    spec = campaign(id, order=order, entries=playlist(*weights))
    expected = {i + 1: w for i, w in enumerate(weights)}
    assert Counter(cycle(spec, n)) == expected
    assert Counter(weighted_cycle(spec.playlist)) == expected


# (3) no slogan in two adjacent slots when the weights allow it, across cycle boundaries
@PROPERTY
@given(
    id=st.integers(0, 10**9),
    weights=weights_st.filter(spreadable),
    order=orders,
    k0=st.integers(0, 10**7),
    offset=st.integers(-100, 10**4),
)
def test_no_adjacent_repeats_when_possible(id: int, weights: list[int], order: str, k0: int, offset: int) -> None:
    spec = campaign(id, order=order, entries=playlist(*weights))
    length = sum(weights)
    shown = [slogan_for_slot(spec, k, offset) for k in range(k0, k0 + 3 * length + 2)]
    assert all(a != b for a, b in itertools.pairwise(shown))


def test_heavy_slogan_repeats_as_little_as_possible() -> None:
    # When one slogan has more than half the weight, a ring has at least 2w - L repeats.
    for weights in ([5, 1, 1], [7, 2], [10, 1, 1, 1], [4, 1], [9, 3, 2]):
        heavy, length = max(weights), sum(weights)
        for order in ("sequential", "shuffle"):
            spec = campaign(3, order=order, entries=playlist(*weights))
            seq = [s for n in range(4) for s in cycle(spec, n)]
            repeats = sum(1 for a, b in itertools.pairwise(seq) if a == b)
            assert repeats <= 4 * (2 * heavy - length), (weights, order)
        ring = weighted_cycle(playlist(*weights))
        assert sum(ring[i] == ring[(i + 1) % length] for i in range(length)) == 2 * heavy - length


# (4) a higher priority campaign always wins where it is active
@PROPERTY
@given(campaigns=scenario_st(), probes=st.lists(st.integers(0, 80 * 3600 * 10**6), min_size=1, max_size=8))
def test_assignment_follows_precedence(campaigns: list[CampaignSpec], probes: list[int]) -> None:
    for micro in probes:
        t = T0 + timedelta(microseconds=micro)
        expected = brute_force_winner(campaigns, t)
        found = assignment_at(campaigns, BOARD, t)
        assert (found.campaign_id if found else None) == (expected.id if expected else None)
        if found is not None and expected is not None:
            k = (t - expected.starts_at) // timedelta(seconds=expected.dwell_seconds)
            assert found.slot_index == k
            assert found.slogan_id == slogan_for_slot(expected, k, BOARD.offset)
            assert found.starts_at <= t < found.ends_at
            assert found.slot_starts_at <= found.starts_at < found.ends_at <= found.slot_ends_at


# (5) timeline agrees with assignment_at and is contiguous where the board is busy
@PROPERTY
@given(
    campaigns=scenario_st(),
    start=st.integers(0, 60 * 3600),
    length=st.integers(1, 6 * 3600),
    probes=st.lists(st.floats(0, 1), min_size=1, max_size=10),
)
def test_timeline_agrees_with_assignment_at(
    campaigns: list[CampaignSpec], start: int, length: int, probes: list[float]
) -> None:
    begin = T0 + timedelta(seconds=start)
    end = begin + timedelta(seconds=length)
    plan = list(timeline(campaigns, BOARD, begin, end))
    for a, b in itertools.pairwise(plan):
        assert a.ends_at <= b.starts_at
        if a.ends_at == b.starts_at:
            assert a.key != b.key  # runs are maximal
        else:
            assert assignment_at(campaigns, BOARD, a.ends_at) is None  # a gap is idle
    for a in plan:
        assert a.starts_at < a.ends_at and a.starts_at < end and a.ends_at > begin
        assert assignment_at(campaigns, BOARD, a.starts_at) == a
        assert assignment_at(campaigns, BOARD, a.ends_at - timedelta(microseconds=1)) == a
        before = assignment_at(campaigns, BOARD, a.starts_at - timedelta(microseconds=1))
        assert before is None or before.key != a.key or before.ends_at < a.starts_at
        assert next_change(campaigns, BOARD, a.starts_at) == a.ends_at
    for fraction in probes:
        t = begin + (end - begin) * fraction
        if t >= end:
            continue
        found = assignment_at(campaigns, BOARD, t)
        inside = [a for a in plan if a.starts_at <= t < a.ends_at]
        assert inside == ([found] if found else [])
        nxt = next_change(campaigns, BOARD, t)
        if found is not None:
            assert nxt == found.ends_at
        elif nxt is not None:
            assert nxt > t
            assert assignment_at(campaigns, BOARD, nxt) is not None
            assert assignment_at(campaigns, BOARD, t + (nxt - t) / 2) is None


# (6) paging
ALPHABET = "aăâbcdđeêghiklmnoôơpqrstuưvxyàảãáạếệ0123456789,.!-()"
words_st = st.lists(
    st.text(alphabet=st.sampled_from(list(ALPHABET)), min_size=1, max_size=14),
    max_size=30,
)


@PROPERTY
@given(words=words_st, max_chars=st.integers(1, 40), lines=st.integers(1, 4))
def test_page_text_fits_the_screen(words: list[str], max_chars: int, lines: int) -> None:
    text = " ".join(words)
    pages = page_text(text, max_chars, lines)
    assert pages and all(1 <= len(page) <= lines for page in pages)
    assert all(len(line) <= max_chars for page in pages for line in page)
    assert all(len(page) == lines for page in pages[:-1])
    flat = [line for page in pages for line in page]
    if all(len(w) <= max_chars for w in words):
        assert " ".join(flat) == text
    else:
        assert "".join(flat).replace(" ", "") == text.replace(" ", "")


@PROPERTY
@given(slogan=st.sampled_from(SLOGANS), max_chars=st.integers(11, 60), lines=st.integers(1, 4))
def test_page_text_on_the_campaign_slogans(slogan: str, max_chars: int, lines: int) -> None:
    flat = [line for page in page_text(slogan, max_chars, lines) for line in page]
    assert " ".join(flat) == slogan
