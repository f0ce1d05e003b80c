from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from displayd.rotation import (
    Assignment,
    CampaignSpec,
    assignment_at,
    next_change,
    parse_daily_hours,
    timeline,
)

from .builders import BOARD, campaign, utc

T0 = utc(2024, 5, 7)


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def rows(campaigns: list[CampaignSpec], start: datetime, end: datetime) -> list[tuple[int, int, float, float]]:
    return [
        (a.campaign_id, a.slot_index, (a.starts_at - T0).total_seconds(), (a.ends_at - T0).total_seconds())
        for a in timeline(campaigns, BOARD, start, end)
    ]


LOW = campaign(1, starts_at=T0, ends_at=utc(2024, 5, 8), dwell=30, priority=100)


def test_higher_priority_starting_mid_slot_cuts_the_slot() -> None:
    high = campaign(2, starts_at=s(45), ends_at=s(200), dwell=60, priority=200)
    assert rows([LOW, high], s(0), s(300)) == [
        (1, 0, 0, 30),
        (1, 1, 30, 45),
        (2, 0, 45, 105),
        (2, 1, 105, 165),
        (2, 2, 165, 200),  # the high campaign's last slot is clipped at its ends_at
        (1, 6, 200, 210),  # the low campaign resumes mid-slot
        (1, 7, 210, 240),
        (1, 8, 240, 270),
        (1, 9, 270, 300),
    ]


def test_slot_interrupted_and_resumed_yields_the_same_key_twice() -> None:
    high = campaign(2, starts_at=s(10), ends_at=s(20), dwell=30, priority=200)
    result = list(timeline([LOW, high], BOARD, s(0), s(30)))
    assert [(a.key, a.starts_at, a.ends_at) for a in result] == [
        ((1, 0), s(0), s(10)),
        ((2, 0), s(10), s(20)),
        ((1, 0), s(20), s(30)),
    ]
    assert result[0].slogan_id == result[2].slogan_id
    assert result[0].slot_starts_at == s(0) and result[0].slot_ends_at == s(30)
    assert result[1].slot_ends_at == s(20)


def test_daily_hours_ending_mid_slot_cut_the_slot() -> None:
    # 06:00-22:05 Ho Chi Minh = 23:00-15:05 UTC; 10-minute slots from 00:00 UTC.
    spec = campaign(
        1,
        starts_at=T0,
        ends_at=utc(2024, 5, 9),
        dwell=600,
        daily_hours=parse_daily_hours([{"start": "06:00", "end": "22:05"}]),
    )
    got = list(timeline([spec], BOARD, utc(2024, 5, 7, 14, 55), utc(2024, 5, 7, 23, 10)))
    assert [(a.slot_index, a.starts_at, a.ends_at) for a in got] == [
        (89, utc(2024, 5, 7, 14, 50), utc(2024, 5, 7, 15, 0)),
        (90, utc(2024, 5, 7, 15, 0), utc(2024, 5, 7, 15, 5)),  # hours end mid-slot
        (138, utc(2024, 5, 7, 23, 0), utc(2024, 5, 7, 23, 10)),
    ]
    assert got[1].slot_ends_at == utc(2024, 5, 7, 15, 10)


def test_bounds_are_true_not_clipped_to_the_query() -> None:
    got = list(timeline([LOW], BOARD, s(15), s(45)))
    assert [(a.starts_at, a.ends_at) for a in got] == [(s(0), s(30)), (s(30), s(60))]
    assert list(timeline([LOW], BOARD, s(30), s(30))) == []
    assert [a.slot_index for a in timeline([LOW], BOARD, s(30), s(60))] == [1]


def test_window_end_clips_the_last_slot_and_then_idle() -> None:
    spec = campaign(1, starts_at=T0, ends_at=s(100), dwell=30)
    got = list(timeline([spec], BOARD, s(0), s(1000)))
    assert [(a.slot_index, a.ends_at, a.slot_ends_at) for a in got][-1] == (3, s(100), s(100))
    assert assignment_at([spec], BOARD, s(100)) is None


def test_assignment_at() -> None:
    found = assignment_at([LOW], BOARD, s(31))
    assert found == Assignment(
        campaign_id=1,
        slot_index=1,
        slogan_id=found.slogan_id if found else 0,
        starts_at=s(30),
        ends_at=s(60),
        slot_starts_at=s(30),
        slot_ends_at=s(60),
    )
    assert assignment_at([LOW], BOARD, T0 - timedelta(seconds=1)) is None
    assert assignment_at([], BOARD, s(1)) is None


@pytest.mark.parametrize(
    ("t", "expected"),
    [
        (s(-100), s(0)),  # idle before the low campaign: its start
        (s(0), s(30)),
        (s(29), s(30)),
        (s(31), s(45)),  # cut by the high campaign
        (s(45), s(105)),
        (s(180), s(200)),
        (s(200), s(210)),
        (utc(2024, 5, 7, 23, 59, 50), utc(2024, 5, 8)),
        (utc(2024, 5, 8), None),  # nothing ever again
    ],
)
def test_next_change(t: datetime, expected: datetime | None) -> None:
    high = campaign(2, starts_at=s(45), ends_at=s(200), dwell=60, priority=200)
    assert next_change([LOW, high], BOARD, t) == expected


def test_next_change_idle_until_daily_hours() -> None:
    spec = campaign(
        1, starts_at=T0, ends_at=utc(2024, 6, 1), daily_hours=parse_daily_hours([{"start": "06:00", "end": "22:00"}])
    )
    assert next_change([spec], BOARD, utc(2024, 5, 7, 16)) == utc(2024, 5, 7, 23)  # 23:00 local -> 06:00
    paused = campaign(1, starts_at=T0, ends_at=utc(2024, 6, 1), paused=True)
    assert next_change([paused], BOARD, s(10)) is None


def test_timeline_across_berlin_fall_back() -> None:
    # 02:30-05:00 wall clock on the day 03:00 CEST becomes 02:00 CET (01:00Z): on from
    # 00:30Z, off while the clock repeats 02:00-02:30, on again until 05:00 CET (04:00Z).
    spec = campaign(
        1,
        starts_at=utc(2024, 10, 1),
        ends_at=utc(2024, 11, 1),
        tz="Europe/Berlin",
        dwell=3600,
        daily_hours=parse_daily_hours([{"start": "02:30", "end": "05:00"}]),
    )
    got = [(a.starts_at, a.ends_at) for a in timeline([spec], BOARD, utc(2024, 10, 26, 12), utc(2024, 10, 27, 12))]
    assert got == [
        (utc(2024, 10, 27, 0, 30), utc(2024, 10, 27, 1, 0)),
        (utc(2024, 10, 27, 1, 30), utc(2024, 10, 27, 2, 0)),
        (utc(2024, 10, 27, 2, 0), utc(2024, 10, 27, 3, 0)),
        (utc(2024, 10, 27, 3, 0), utc(2024, 10, 27, 4, 0)),
    ]


def test_a_week_of_30_second_slots_reads_daily_hours_per_change_not_per_slot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Unit tests do not time things (see bench/); instead count the expensive step, the
    # daily-hours look-ahead, which must run per change point and never per slot.
    from displayd.rotation import _hours, _timeline

    calls = 0
    real = _hours.next_hours_change

    def counting(*args: object) -> datetime | None:
        nonlocal calls
        calls += 1
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(_timeline, "next_hours_change", counting)
    specs = [
        LOW,
        campaign(2, starts_at=T0, ends_at=utc(2024, 6, 1), dwell=30, priority=50, order="shuffle"),
        campaign(
            3,
            starts_at=T0,
            ends_at=utc(2024, 6, 1),
            dwell=45,
            priority=300,
            daily_hours=parse_daily_hours([{"start": "11:00", "end": "12:00"}]),
        ),
    ]
    got = list(timeline(specs, BOARD, T0, T0 + timedelta(days=7)))
    assert len(got) > 19_000
    assert calls < 100
