"""What one board was sent, slot by slot, and what it must be sent now: the revisions rule.

    ledger = Ledger()
    sends, ledger = ledger.due(snapshot, board_id, now, lead=2.0)   # a new Ledger; the old one unchanged
    for send in sends: ...   # show or blank documents, each with its slot's revision

One rule for every channel that sends documents to a board (DESIGN "Push", "Stream"): the push
dispatcher keeps a ledger per board in the scheduler leader, the stream hub one per open stream.
`due` compares what the plan says the board should hold at `now` — the slot under way and the
one starting within `lead` seconds — with what the ledger says it was sent:

- a slot never sent: its `show`, revision 0 (`Send.new`: the caller writes its log row first);
- a slot sent whose planned content changed (a retirement, an edit) or that is no longer planned
  at all (a pause, the emergency stop, an edit moving the slots): a `blank` carrying the slot,
  as its next revision, once;
- a slot blanked that the plan gives back with the content first sent (a resumption, the stop
  lifted): its `show` again, as its next revision;
- the board had content and has none now: a `blank` without a slot, once (its `until` the next
  change).

A board keeps the highest revision it has of each slot and shows, of the slots it holds that
have begun and not ended, the one that began last; a blank revision takes its slot away.

`due` never changes the ledger it is called on: it answers a new one, which the caller keeps
once the sends are committed (the dispatcher plans a boundary ahead of time and may drop the
plan). Ledgers are small (the slots not yet ended: usually two).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from displayd.live.snapshot import Showing, Snapshot
from displayd.logbook.store import Key

__all__ = ["Ledger", "Send", "Sent"]


@dataclass(frozen=True, slots=True)
class Sent:
    """A slot as the board was sent it: bounds, the content of its first send, its revision."""

    starts_at: datetime
    ends_at: datetime
    content_hash: str
    revision: int
    # True: the board holds the slot's content; False: its last revision was a blank; None:
    # not known (a ledger rebuilt from the log after a take-over): the next call sends the
    # slot's state as planned now, as its next revision.
    shown: bool | None = True


@dataclass(frozen=True, slots=True)
class Send:
    """One document to send: a `show` of `showing`, or a `blank` (of slot `key`, or slotless)."""

    type: Literal["show", "blank"]
    key: Key | None
    revision: int
    showing: Showing | None  # the show's showing; for a slot's blank, None
    slot: Sent | None = None  # the slot a blank takes back
    until: datetime | None = None  # a slotless blank's end: the board's next change
    new: bool = False  # the slot's first send: its row is written (and is the claim) before it goes


@dataclass(frozen=True, slots=True)
class Ledger:
    slots: dict[Key, Sent] = field(default_factory=dict)
    # The board was last left with nothing to show now (a slotless blank, or never given anything).
    blank: bool = True

    def due(self, snapshot: Snapshot, board_id: str, now: datetime, *, lead: float) -> tuple[list[Send], Ledger]:
        """What to send `board_id` at `now`, content `lead` seconds ahead; and the ledger after."""
        current = snapshot.showing(board_id, now)
        planned: dict[Key, Showing] = {}
        if current.assignment is not None:
            planned[_key(board_id, current)] = current
        if lead > 0:
            ahead = snapshot.showing_ahead(board_id, now + timedelta(seconds=lead))
            if ahead.assignment is not None:
                planned.setdefault(_key(board_id, ahead), ahead)
        slots = {key: sent for key, sent in self.slots.items() if sent.ends_at > now}
        sends: list[Send] = []
        for key, sent in list(slots.items()):
            showing = planned.pop(key, None)
            if showing is None and sent.starts_at > now:  # sent ahead: is it still what comes?
                later = snapshot.showing_ahead(board_id, sent.starts_at)
                if later.assignment is not None and _key(board_id, later) == key:
                    showing = later
            send = _revision(key, sent, showing)
            if send is not None:
                sends.append(send)
                slots[key] = replace(sent, revision=send.revision, shown=send.type == "show")
        for key, showing in planned.items():
            assignment = showing.assignment
            assert assignment is not None and showing.content_hash is not None
            sends.append(Send("show", key, 0, showing, new=True))
            slots[key] = Sent(assignment.starts_at, assignment.ends_at, showing.content_hash, 0)
        blank = self.blank
        if current.assignment is None:
            took_back = any(s.type == "blank" and s.slot is not None and s.slot.starts_at <= now for s in sends)
            if not blank and not took_back:
                sends.append(Send("blank", None, 0, None, until=current.until))
            blank = True
        else:
            blank = False
        if not sends and blank == self.blank and len(slots) == len(self.slots):
            return sends, self
        return sends, Ledger(slots, blank)


def _key(board_id: str, showing: Showing) -> Key:
    assert showing.assignment is not None
    return (board_id, showing.assignment.campaign_id, showing.assignment.slot_index)


def _revision(key: Key, sent: Sent, showing: Showing | None) -> Send | None:
    """The next revision of a slot already sent, if what it should show changed."""
    same = showing is not None and showing.content_hash == sent.content_hash
    if same and sent.shown is not True:  # given back (or not known): shown again
        return Send("show", key, sent.revision + 1, showing)
    if not same and sent.shown is not False:  # taken back: changed, or no longer planned
        return Send("blank", key, sent.revision + 1, None, slot=sent)
    return None
