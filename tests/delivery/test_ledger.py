"""The revisions rule (`displayd.delivery.ledger`), pure: snapshots built in memory, a clock
given to each call. What a board must be sent as campaigns are paused, resumed, retired,
stopped and lifted, with and without a lead."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from displayd.delivery.ledger import Ledger, Send, Sent
from displayd.live.plan import CampaignVersions, build_spec
from displayd.live.snapshot import BoardView, Snapshot, StopView
from displayd.rotation import BoardSpec

T0 = datetime(2024, 5, 7, tzinfo=UTC)
BOARD = "bang-a"
SLOGANS = {1: "Chiến thắng Điện Biên Phủ", 2: "Đoàn kết, đoàn kết, đại đoàn kết", 3: "Thành công, thành công"}


def snapshot(*, paused: bool = False, slogans: dict[int, str] | None = None, stopped: bool = False,
             ends_at: datetime | None = None, lead: int = 0) -> Snapshot:
    """One campaign from T0, dwell 30 s, slogans 1-3 in turn, on one board."""
    slogans = SLOGANS if slogans is None else slogans
    fields: dict[str, Any] = {
        "starts_at": T0, "ends_at": ends_at or T0 + timedelta(days=1), "timezone": "Asia/Ho_Chi_Minh",
        "daily_hours": [], "dwell_seconds": 30, "priority": 100, "order": "sequential",
        "playlist": [{"slogan_id": i, "weight": 1} for i in SLOGANS], "targets": {"all": True}}
    campaign = CampaignVersions(build_spec(3, fields, paused=paused, approved=slogans.keys()))
    board = BoardView(spec=BoardSpec(id=BOARD, groups=frozenset(), offset=0), name="Bảng A", delivery="push",
                      endpoint_url="http://127.0.0.1:1/show", charset="utf-8", max_chars=40, lines=2, enabled=True,
                      secret_nonce="n", created_at=T0 - timedelta(days=1), lead_seconds=lead)
    stop = StopView(1, "thử", T0, "Lãnh đạo") if stopped else None
    return Snapshot(version=1, boards={BOARD: board}, token_boards={}, campaigns=[campaign],
                    campaign_names={3: "Đợt"}, campaign_zones={3: "Asia/Ho_Chi_Minh"}, slogans=dict(slogans), stop=stop)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def brief(sends: list[Send]) -> list[tuple[str, int | None, int]]:
    """(type, slot index or None, revision) of each send."""
    return [(s.type, None if s.key is None else s.key[2], s.revision) for s in sends]


def test_a_slot_is_sent_once_then_only_its_revisions() -> None:
    plan = snapshot()
    sends, ledger = Ledger().due(plan, BOARD, at(0), lead=0)
    assert brief(sends) == [("show", 0, 0)] and sends[0].new
    assert sends[0].showing is not None and sends[0].showing.content == plan.showing(BOARD, at(0)).content
    again, same = ledger.due(plan, BOARD, at(10), lead=0)
    assert again == [] and same is ledger  # nothing changed: nothing sent, nothing copied
    sends, ledger = ledger.due(plan, BOARD, at(30), lead=0)
    assert brief(sends) == [("show", 1, 0)]
    assert list(ledger.slots) == [(BOARD, 3, 1)]  # the ended slot is forgotten


def test_lead_sends_the_next_slot_ahead_with_its_start_in_the_future() -> None:
    plan = snapshot(lead=2)
    sends, ledger = Ledger().due(plan, BOARD, at(0), lead=2)
    assert brief(sends) == [("show", 0, 0)]
    sends, ledger = ledger.due(plan, BOARD, at(28), lead=2)
    assert brief(sends) == [("show", 1, 0)]
    assert sends[0].showing is not None and sends[0].showing.document["slot"]["starts_at"] == "2024-05-07T00:00:30Z"
    sends, ledger = ledger.due(plan, BOARD, at(30), lead=2)
    assert sends == []  # it was sent ahead: the boundary itself sends nothing


def test_a_retirement_takes_the_slot_back_once() -> None:
    sends, ledger = Ledger().due(snapshot(), BOARD, at(0), lead=0)
    shown = sends[0].showing
    assert shown is not None and shown.content is not None
    retired = snapshot(slogans={k: v for k, v in SLOGANS.items() if k != shown.content["slogan_id"]})
    sends, ledger = ledger.due(retired, BOARD, at(5), lead=0)
    assert brief(sends) == [("blank", 0, 1)]
    assert sends[0].slot is not None and sends[0].slot.ends_at == at(30)
    again, _ = ledger.due(retired, BOARD, at(6), lead=0)
    assert again == []
    nxt, _ = ledger.due(retired, BOARD, at(30), lead=0)
    assert brief(nxt) == [("show", 1, 0)]
    assert nxt[0].showing is not None and nxt[0].showing.content is not None
    assert nxt[0].showing.content["slogan_id"] != shown.content["slogan_id"]


def test_a_pause_then_a_resumption_shows_the_slot_again() -> None:
    _, ledger = Ledger().due(snapshot(lead=2), BOARD, at(28), lead=2)  # slot 0 and slot 1 (ahead) sent
    assert sorted(k[2] for k in ledger.slots) == [0, 1]
    sends, ledger = ledger.due(snapshot(paused=True, lead=2), BOARD, at(29), lead=2)
    assert sorted(brief(sends)) == [("blank", 0, 1), ("blank", 1, 1)]  # both taken back, no slotless blank
    sends, ledger = ledger.due(snapshot(lead=2), BOARD, at(29.5), lead=2)
    assert sorted(brief(sends)) == [("show", 0, 2), ("show", 1, 2)]
    assert not any(s.new for s in sends)  # their rows exist: only revisions


def test_the_emergency_stop_blanks_and_lifting_it_brings_back_the_slot_under_way() -> None:
    _, ledger = Ledger().due(snapshot(), BOARD, at(0), lead=0)
    sends, ledger = ledger.due(snapshot(stopped=True), BOARD, at(10), lead=0)
    assert brief(sends) == [("blank", 0, 1)]
    assert ledger.due(snapshot(stopped=True), BOARD, at(20), lead=0)[0] == []
    sends, ledger = ledger.due(snapshot(), BOARD, at(25), lead=0)
    assert brief(sends) == [("show", 0, 2)]
    assert sends[0].showing is not None and sends[0].showing.document["slot"]["index"] == 0


def test_a_stop_that_outlasts_the_slot_leaves_the_board_blank_without_a_slot() -> None:
    _, ledger = Ledger().due(snapshot(), BOARD, at(0), lead=0)
    _, ledger = ledger.due(snapshot(stopped=True), BOARD, at(10), lead=0)
    sends, ledger = ledger.due(snapshot(stopped=True), BOARD, at(30), lead=0)
    assert sends == [] and ledger.blank  # taken back already: no second blank at the boundary


def test_the_end_of_a_campaign_sends_one_slotless_blank() -> None:
    ends = snapshot(ends_at=at(60))
    _, ledger = Ledger().due(ends, BOARD, at(30), lead=0)
    sends, ledger = ledger.due(ends, BOARD, at(60), lead=0)
    assert brief(sends) == [("blank", None, 0)] and sends[0].until is None
    assert ledger.due(ends, BOARD, at(90), lead=0)[0] == []


def test_a_ledger_rebuilt_after_a_take_over_resends_revised_slots_as_they_stand() -> None:
    plan = snapshot()
    first, _ = Ledger().due(plan, BOARD, at(0), lead=0)
    assert first[0].showing is not None and first[0].showing.content_hash is not None
    rebuilt = Ledger({(BOARD, 3, 0): Sent(at(0), at(30), first[0].showing.content_hash, 3, shown=None)}, blank=False)
    sends, _ = rebuilt.due(plan, BOARD, at(12), lead=0)
    assert brief(sends) == [("show", 0, 4)]
    sends, _ = rebuilt.due(snapshot(paused=True), BOARD, at(12), lead=0)
    assert brief(sends) == [("blank", 0, 4)]


def test_revisions_only_rise_and_every_slot_ends_as_planned() -> None:
    """Random pauses, resumptions, stops and retirements: each slot's revisions rise by one
    per send, and after the last call the board holds exactly what the plan says."""
    rng = random.Random(7)
    ledger, t = Ledger(), 0.0
    seen: dict[tuple[str, int, int], int] = {}
    held: dict[tuple[str, int, int], bool] = {}
    for _ in range(400):
        t += rng.choice([0.5, 1.0, 3.0, 7.0])
        plan = snapshot(paused=rng.random() < 0.2, stopped=rng.random() < 0.1, lead=2,
                        slogans={k: v for k, v in SLOGANS.items() if rng.random() < 0.9} or {1: SLOGANS[1]})
        sends, ledger = ledger.due(plan, BOARD, at(t), lead=2)
        for send in sends:
            if send.key is None:
                continue
            assert send.revision == seen.get(send.key, -1) + 1
            seen[send.key] = send.revision
            held[send.key] = send.type == "show"
        showing = plan.showing(BOARD, at(t))
        if showing.assignment is not None:
            key = (BOARD, 3, showing.assignment.slot_index)
            assert held.get(key) is True or ledger.slots[key].content_hash != showing.content_hash
        for key, sent in ledger.slots.items():
            assert held[key] == sent.shown
