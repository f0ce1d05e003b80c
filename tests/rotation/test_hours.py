from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from displayd.rotation import DailyRange, format_daily_hours, is_active, parse_daily_hours
from displayd.rotation._hours import next_hours_change

from .builders import campaign, utc


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([], ()),
        ([{"start": "06:00", "end": "22:00"}], (DailyRange(360, 1320),)),
        ([{"start": "22:00", "end": "02:00"}], (DailyRange(1320, 120),)),
        ([{"start": "18:30", "end": "24:00"}], (DailyRange(1110, 1440),)),
        ([{"start": "00:00", "end": "24:00"}], (DailyRange(0, 1440),)),
        ([{"start": "23:59", "end": "00:00"}], (DailyRange(1439, 0),)),
        (
            [{"end": "09:00", "start": "07:00"}, {"start": "17:00", "end": "19:30"}],
            (DailyRange(420, 540), DailyRange(1020, 1170)),
        ),
    ],
)
def test_parse_and_format_daily_hours(items: list[dict[str, str]], expected: tuple[DailyRange, ...]) -> None:
    assert parse_daily_hours(items) == expected
    assert parse_daily_hours(format_daily_hours(expected)) == expected


def test_format_daily_hours_spells_24_00() -> None:
    assert format_daily_hours((DailyRange(1110, 1440),)) == [{"start": "18:30", "end": "24:00"}]


@pytest.mark.parametrize(
    "items",
    [
        "06:00-22:00",
        [["06:00", "22:00"]],
        [{"start": "06:00"}],
        [{"end": "06:00"}],
        [{"start": "06:00", "end": "22:00", "label": "day"}],
        [{"start": 360, "end": "22:00"}],
        [{"start": "6:00", "end": "22:00"}],
        [{"start": "06:0", "end": "22:00"}],
        [{"start": "06:00", "end": "22:00 "}],
        [{"start": "06-00", "end": "22:00"}],
        [{"start": "24:00", "end": "06:00"}],
        [{"start": "06:00", "end": "24:01"}],
        [{"start": "06:00", "end": "25:00"}],
        [{"start": "06:60", "end": "22:00"}],
        [{"start": "06:00", "end": "06:00"}],
        [{"start": "٠٦:٠٠", "end": "22:00"}],  # non-ASCII digits
        [None],
    ],
)
def test_parse_daily_hours_rejects(items: Any) -> None:
    with pytest.raises(ValueError):
        parse_daily_hours(items)


@pytest.mark.parametrize(("start", "end"), [(0, 0), (1440, 10), (-1, 10), (10, 1441), (True, 10)])
def test_daily_range_rejects(start: int, end: int) -> None:
    with pytest.raises(ValueError):
        DailyRange(start, end)


HCM = "Asia/Ho_Chi_Minh"  # UTC+7, no DST
BERLIN = "Europe/Berlin"  # CET/CEST; 2024-03-31 01:00Z clocks jump 02:00->03:00, 2024-10-27 01:00Z 03:00->02:00


@pytest.mark.parametrize(
    ("tz", "hours", "t", "active"),
    [
        (HCM, [("06:00", "22:00")], utc(2024, 5, 6, 23, 0), True),  # 06:00 local
        (HCM, [("06:00", "22:00")], utc(2024, 5, 6, 22, 59, 59), False),
        (HCM, [("06:00", "22:00")], utc(2024, 5, 7, 14, 59, 59), True),  # 21:59:59
        (HCM, [("06:00", "22:00")], utc(2024, 5, 7, 15, 0), False),  # 22:00, end exclusive
        (HCM, [("22:00", "02:00")], utc(2024, 5, 7, 16, 30), True),  # 23:30
        (HCM, [("22:00", "02:00")], utc(2024, 5, 7, 18, 30), True),  # 01:30 next day
        (HCM, [("22:00", "02:00")], utc(2024, 5, 7, 19, 0), False),  # 02:00
        (HCM, [("22:00", "02:00")], utc(2024, 5, 7, 14, 59), False),  # 21:59
        (HCM, [("18:00", "24:00")], utc(2024, 5, 7, 16, 59, 59), True),  # 23:59:59
        (HCM, [("18:00", "24:00")], utc(2024, 5, 7, 17, 0), False),  # 00:00
        (HCM, [], utc(2024, 5, 7, 17, 0), True),
        (BERLIN, [("06:00", "22:00")], utc(2024, 3, 30, 5, 0), True),  # CET: 06:00
        (BERLIN, [("06:00", "22:00")], utc(2024, 3, 31, 4, 0), True),  # CEST: 06:00
        (BERLIN, [("06:00", "22:00")], utc(2024, 3, 31, 4, 59), True),
        (BERLIN, [("06:00", "22:00")], utc(2024, 3, 31, 3, 59), False),  # CEST: 05:59
        (BERLIN, [("06:00", "22:00")], utc(2024, 10, 27, 4, 59), False),  # CET: 05:59
        (BERLIN, [("02:30", "05:00")], utc(2024, 3, 31, 0, 59), False),  # 01:59 CET
        (BERLIN, [("02:30", "05:00")], utc(2024, 3, 31, 1, 0), True),  # 03:00 CEST, 02:30 skipped
        (BERLIN, [("02:30", "05:00")], utc(2024, 10, 27, 0, 45), True),  # 02:45 CEST
        (BERLIN, [("02:30", "05:00")], utc(2024, 10, 27, 1, 15), False),  # 02:15 CET, repeated hour
        (BERLIN, [("02:30", "05:00")], utc(2024, 10, 27, 1, 45), True),  # 02:45 CET
    ],
)
def test_is_active_daily_hours(tz: str, hours: list[tuple[str, str]], t: datetime, active: bool) -> None:
    ranges = parse_daily_hours([{"start": s, "end": e} for s, e in hours])
    spec = campaign(1, starts_at=utc(2024, 1, 1), ends_at=utc(2025, 1, 1), tz=tz, daily_hours=ranges)
    assert is_active(spec, t) is active


@pytest.mark.parametrize(
    ("tz", "hours", "t", "expected"),
    [
        (HCM, [("06:00", "22:00")], utc(2024, 5, 7, 0, 0), utc(2024, 5, 7, 15, 0)),
        (HCM, [("06:00", "22:00")], utc(2024, 5, 7, 15, 0), utc(2024, 5, 7, 23, 0)),
        (HCM, [("22:00", "02:00")], utc(2024, 5, 7, 16, 0), utc(2024, 5, 7, 19, 0)),
        (HCM, [("18:00", "24:00")], utc(2024, 5, 7, 12, 0), utc(2024, 5, 7, 17, 0)),
        # touching ranges are one: no change at local midnight
        (HCM, [("22:00", "24:00"), ("00:00", "02:00")], utc(2024, 5, 7, 16, 0), utc(2024, 5, 7, 19, 0)),
        (HCM, [("00:00", "24:00")], utc(2024, 5, 7, 16, 0), None),
        (HCM, [], utc(2024, 5, 7, 16, 0), None),
        (BERLIN, [("06:00", "22:00")], utc(2024, 3, 30, 21, 0), utc(2024, 3, 31, 4, 0)),
        (BERLIN, [("06:00", "22:00")], utc(2024, 10, 26, 21, 0), utc(2024, 10, 27, 5, 0)),
        (BERLIN, [("02:30", "05:00")], utc(2024, 3, 30, 23, 0), utc(2024, 3, 31, 1, 0)),
        (BERLIN, [("02:30", "05:00")], utc(2024, 10, 27, 0, 40), utc(2024, 10, 27, 1, 0)),
        (BERLIN, [("02:30", "05:00")], utc(2024, 10, 27, 1, 0), utc(2024, 10, 27, 1, 30)),
        (BERLIN, [("02:30", "05:00")], utc(2024, 10, 27, 1, 30), utc(2024, 10, 27, 4, 0)),
        (BERLIN, [("01:00", "02:30")], utc(2024, 3, 31, 0, 10), utc(2024, 3, 31, 1, 0)),
    ],
)
def test_next_hours_change(tz: str, hours: list[tuple[str, str]], t: datetime, expected: datetime | None) -> None:
    ranges = parse_daily_hours([{"start": s, "end": e} for s, e in hours])
    assert next_hours_change(ranges, tz, t) == expected


def test_next_hours_change_is_exact_against_a_minute_scan() -> None:
    ranges = parse_daily_hours([{"start": "02:30", "end": "05:00"}, {"start": "22:00", "end": "01:00"}])
    spec = campaign(1, starts_at=utc(2024, 1, 1), ends_at=utc(2025, 1, 1), tz=BERLIN, daily_hours=ranges)
    for day in (utc(2024, 3, 30), utc(2024, 10, 26)):
        t = day
        while t < day + timedelta(days=2):
            nxt = next_hours_change(ranges, BERLIN, t)
            assert nxt is not None
            step = t
            while step + timedelta(minutes=1) < nxt:
                step += timedelta(minutes=1)
                assert is_active(spec, step) == is_active(spec, t)
            assert is_active(spec, nxt) != is_active(spec, nxt - timedelta(microseconds=1))
            t = nxt
