"""The board's side of the protocol (`displayd.boardside`), pure: hold until `starts_at`, keep
the highest revision, the slot that began last wins, blanks take slots back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from displayd.boardside import BoardSide

T0 = datetime(2024, 5, 7, tzinfo=UTC)


def iso(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def show(index: int, start: float, end: float, text: str, revision: int = 0, campaign: int = 3) -> dict[str, Any]:
    return {"type": "show", "board_id": "b", "revision": revision,
            "slot": {"campaign_id": campaign, "index": index, "starts_at": iso(start), "ends_at": iso(end)},
            "content": {"text": text}, "content_hash": f"sha256:{text}", "valid_until": iso(end)}


def blank(index: int, start: float, end: float, revision: int, campaign: int = 3) -> dict[str, Any]:
    return {"type": "blank", "board_id": "b", "revision": revision, "until": iso(end),
            "slot": {"campaign_id": campaign, "index": index, "starts_at": iso(start), "ends_at": iso(end)}}


def text(board: BoardSide, seconds: float) -> str | None:
    showing = board.showing(at(seconds))
    return None if showing is None else showing["content"]["text"]


def test_content_sent_ahead_shows_at_its_start_and_ends_at_valid_until() -> None:
    board = BoardSide()
    assert board.receive(show(0, 0, 30, "A"), at(-2))
    assert text(board, -1) is None and text(board, 0) == "A" and text(board, 29.9) == "A"
    assert board.receive(show(1, 30, 60, "B"), at(28))
    assert text(board, 29) == "A" and text(board, 30) == "B" and text(board, 60) is None


def test_the_highest_revision_wins_whatever_the_order_of_arrival() -> None:
    board = BoardSide()
    board.receive(show(0, 0, 30, "A"), at(0))
    assert board.receive(blank(0, 0, 30, 1), at(5))
    assert text(board, 5) is None
    assert not board.receive(show(0, 0, 30, "A", revision=0), at(6))  # a late retry of revision 0
    assert not board.receive(blank(0, 0, 30, 1), at(6))  # a duplicate
    assert text(board, 6) is None
    assert board.receive(show(0, 0, 30, "A", revision=2), at(7))  # given back
    assert text(board, 7) == "A"


def test_the_slot_that_began_last_wins_and_a_taken_back_one_uncovers_the_earlier() -> None:
    board = BoardSide()
    board.receive(show(5, 0, 30, "base", campaign=1), at(0))
    board.receive(show(0, 10, 40, "peak", campaign=2), at(8))
    assert text(board, 9) == "base" and text(board, 10) == "peak"
    board.receive(blank(0, 10, 40, 1, campaign=2), at(12))  # the peak paused
    assert text(board, 12) == "base"


def test_a_slotless_blank_ends_what_has_begun_but_keeps_what_is_ahead() -> None:
    board = BoardSide()
    board.receive(show(0, 0, 30, "A"), at(0))
    board.receive(show(1, 30, 60, "B"), at(28))
    assert board.receive({"type": "blank", "board_id": "b", "until": None}, at(29))
    assert text(board, 29) is None and text(board, 30) == "B"
