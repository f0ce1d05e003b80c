from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from displayd.rotation import (
    BoardSpec,
    CampaignSpec,
    PlaylistEntry,
    Targets,
    is_active,
    parse_daily_hours,
    slot_bounds,
    slot_index_at,
    winner,
)

from .builders import BOARD, campaign, utc

T0 = utc(2024, 5, 7)
SHORT = campaign(1, starts_at=T0, ends_at=T0 + timedelta(seconds=105), dwell=30)


@pytest.mark.parametrize(
    ("k", "bounds"),
    [
        (0, (T0, T0 + timedelta(seconds=30))),
        (2, (T0 + timedelta(seconds=60), T0 + timedelta(seconds=90))),
        (3, (T0 + timedelta(seconds=90), T0 + timedelta(seconds=105))),  # clipped at ends_at
    ],
)
def test_slot_bounds(k: int, bounds: tuple[datetime, datetime]) -> None:
    assert slot_bounds(SHORT, k) == bounds


@pytest.mark.parametrize("k", [-1, 4, 100])
def test_slot_bounds_outside_window(k: int) -> None:
    with pytest.raises(ValueError):
        slot_bounds(SHORT, k)


@pytest.mark.parametrize(
    ("t", "k"),
    [
        (T0 - timedelta(microseconds=1), None),
        (T0, 0),
        (T0 + timedelta(seconds=29, microseconds=999_999), 0),
        (T0 + timedelta(seconds=30), 1),
        (T0 + timedelta(seconds=104), 3),
        (T0 + timedelta(seconds=105), None),  # window is half-open
    ],
)
def test_slot_index_at(t: datetime, k: int | None) -> None:
    assert slot_index_at(SHORT, t) == k


def test_slot_index_at_accepts_other_offsets_and_rejects_naive() -> None:
    from zoneinfo import ZoneInfo

    local = datetime(2024, 5, 7, 7, 0, 30, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
    assert slot_index_at(SHORT, local) == 1
    with pytest.raises(ValueError):
        slot_index_at(SHORT, datetime(2024, 5, 7))


def test_campaign_spec_validates() -> None:
    good = dict(
        id=1,
        starts_at=T0,
        ends_at=T0 + timedelta(days=1),
        timezone="Asia/Ho_Chi_Minh",
        daily_hours=(),
        dwell_seconds=30,
        priority=100,
        order="sequential",
        playlist=(PlaylistEntry(1, 1),),
        targets=Targets(all=True),
    )
    CampaignSpec(**good)  # type: ignore[arg-type]
    for change in (
        {"starts_at": datetime(2024, 5, 7)},
        {"ends_at": T0},
        {"timezone": "Mars/Olympus"},
        {"dwell_seconds": 0},
        {"order": "random"},
        {"playlist": (1,)},
    ):
        with pytest.raises(ValueError):
            CampaignSpec(**{**good, **change})  # type: ignore[arg-type]
    for weight in (0, 11):
        with pytest.raises(ValueError):
            PlaylistEntry(1, weight)


@pytest.mark.parametrize(
    ("targets", "board", "included"),
    [
        (Targets(all=True), BoardSpec("a"), True),
        (Targets(groups=frozenset({"g"})), BoardSpec("a", groups=frozenset({"g", "h"})), True),
        (Targets(groups=frozenset({"g"})), BoardSpec("a", groups=frozenset({"h"})), False),
        (Targets(boards=frozenset({"a"})), BoardSpec("a"), True),
        (Targets(boards=frozenset({"b"})), BoardSpec("a"), False),
        (Targets(), BoardSpec("a", groups=frozenset({"g"})), False),
    ],
)
def test_targets(targets: Targets, board: BoardSpec, included: bool) -> None:
    assert targets.includes(board) is included


START = utc(2024, 3, 1)
END = utc(2024, 6, 1)
AT = utc(2024, 5, 7, 3, 0)


@pytest.mark.parametrize(
    ("campaigns", "expected"),
    [
        ([], None),
        ([campaign(1, starts_at=START, ends_at=END)], 1),
        # higher priority wins regardless of start or id
        (
            [
                campaign(1, starts_at=START, ends_at=END, priority=100),
                campaign(2, starts_at=START, ends_at=END, priority=200),
            ],
            2,
        ),
        (
            [
                campaign(5, starts_at=utc(2024, 5, 7), ends_at=END, priority=100),
                campaign(2, starts_at=START, ends_at=END, priority=200),
            ],
            2,
        ),
        # equal priority: later starts_at
        (
            [
                campaign(9, starts_at=START, ends_at=END),
                campaign(2, starts_at=utc(2024, 5, 1), ends_at=END),
            ],
            2,
        ),
        # equal priority and start: higher id
        ([campaign(3, starts_at=START, ends_at=END), campaign(4, starts_at=START, ends_at=END)], 4),
        # inactive ones do not count
        (
            [
                campaign(1, starts_at=START, ends_at=END),
                campaign(2, starts_at=START, ends_at=END, priority=900, paused=True),
                campaign(3, starts_at=START, ends_at=END, priority=900, entries=()),
                campaign(4, starts_at=START, ends_at=AT, priority=900),  # window over
                campaign(6, starts_at=START, ends_at=END, priority=900, targets=Targets(boards=frozenset({"x"}))),
                campaign(
                    7,
                    starts_at=START,
                    ends_at=END,
                    priority=900,
                    daily_hours=parse_daily_hours([{"start": "06:00", "end": "10:00"}]),
                ),  # 10:00 local
            ],
            1,
        ),
        ([campaign(1, starts_at=START, ends_at=END, paused=True)], None),
    ],
)
def test_winner(campaigns: list[CampaignSpec], expected: int | None) -> None:
    found = winner(campaigns, BOARD, AT)
    assert (found.id if found else None) == expected


def test_is_active_window_is_half_open() -> None:
    spec = campaign(1, starts_at=START, ends_at=END)
    assert not is_active(spec, START - timedelta(microseconds=1))
    assert is_active(spec, START)
    assert is_active(spec, END - timedelta(microseconds=1))
    assert not is_active(spec, END)
    with pytest.raises(ValueError):
        is_active(spec, datetime(2024, 5, 7))
