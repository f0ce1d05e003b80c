"""What polls tell us, gathered in memory on the hot path and written in batches.

`seen()` costs the poll path a few dict operations: it notes the board's last poll, the
first poll of each (board, campaign, slot), and an `If-None-Match` naming content this
process did not give that board. `flush()`, every couple of seconds, writes
`first_polled_at`, `board_health.last_poll_at`, and checks the suspicious ETags against
the content issued to each board: content displayd never issued to that board is an
integrity incident.

Work is bounded whatever a board sends: `If-None-Match` is read for at most MAX_ETAGS tags
(by the poll path), a board is suspected at most once per slot, a flush checks at most one
chunk of suspects with one query, and a board gets at most one incident per slot.

`StreamRecorder` does the same for event streams (`displayd.live.stream`): `sent()` notes a
slot's `show` written on a stream, and `flush()` marks its rotation row delivered
(`store.mark_streamed`), trying again for up to MARK_PATIENCE a row the leader has not
written yet.

While the database is unreachable, both keep what they could not write and go on answering:
a failed flush puts its marks, polls and suspects back, and is tried again every
FLUSH_SECONDS (one warning when it starts failing, one line when it works again). They wait
bounded: at most MAX_WAITING slots each; beyond, new ones are dropped and counted
(`dropped`, and in the warning). MARK_PATIENCE only runs while the database answers: once it
is back, a slot noted during the outage still waits that long for the leader to write its
row from its own backlog (`displayd.delivery.backlog`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from displayd.db.models import BoardHealth
from displayd.live.snapshot import Showing, etag_digest
from displayd.logbook import store
from displayd.logbook.store import Key

log = logging.getLogger("displayd.polls")

FLUSH_SECONDS = 2.0
MARK_PATIENCE = timedelta(seconds=60)  # how long a poll waits for the leader to write its slot's row
ISSUED_PER_BOARD = 64
CHECKED_LIMIT = 200_000
# Slots (and suspects) waiting to be written, at most, per recorder: an hour's outage of 4,000
# boards at a 30 s dwell is 480,000 slots; ~250 bytes each. Beyond, new ones are dropped.
MAX_WAITING = 500_000


class _Reachability:
    """Since when the database answers again, for MARK_PATIENCE: marks waiting through an
    outage start their patience when it ends, not when they were noted."""

    def __init__(self) -> None:
        self.down = False
        self.back_at: datetime | None = None

    def failed(self) -> None:
        self.down = True

    def answered(self, now: datetime) -> None:
        if self.down:
            self.down, self.back_at = False, now

    def patience_over(self, noted: datetime, now: datetime) -> bool:
        since = noted if self.back_at is None else max(noted, self.back_at)
        return now - since > MARK_PATIENCE


class PollRecorder:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Callable[[], datetime]) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.last_poll: dict[str, datetime] = {}
        self._marks: dict[Key, datetime] = {}
        self._marked: set[Key] = set()
        self._issued: dict[str, list[str]] = {}
        self._suspects: dict[tuple[str, str], tuple[str, datetime]] = {}  # (board, slot key) → (digest, when)
        self._checked: set[tuple[str, str]] = set()  # (board, slot key) already suspected once
        self._dirty_polls: set[str] = set()
        self._noted: dict[str, Showing] = {}
        self.incidents = 0
        self.dropped = 0  # slots and suspects not kept: MAX_WAITING were waiting
        self._reachability = _Reachability()

    def seen(self, board_id: str, showing: Showing, now: datetime, tags: Sequence[str], matched: bool) -> None:
        """A poll answered with `showing`; `tags` are the (at most MAX_ETAGS) If-None-Match tags."""
        self.last_poll[board_id] = now
        self._dirty_polls.add(board_id)
        if self._noted.get(board_id) is not showing:  # once per showing, not per poll
            self._noted[board_id] = showing
            self._note(board_id, showing, now)
        if tags and not matched:
            self._suspect(board_id, showing, tags, now)

    def _suspect(self, board_id: str, showing: Showing, tags: Sequence[str], now: datetime) -> None:
        key = (board_id, showing.slot_key)
        if key in self._suspects or key in self._checked:
            return
        issued = self._issued.get(board_id, ())
        for tag in tags:
            digest = etag_digest(tag)
            if digest is not None and digest not in issued:
                if len(self._suspects) >= MAX_WAITING:
                    self.dropped += 1
                else:
                    self._suspects[key] = (digest, now)
                return

    def _note(self, board_id: str, showing: Showing, now: datetime) -> None:
        assignment = showing.assignment
        if assignment is None or showing.digest is None:
            return
        key = (board_id, assignment.campaign_id, assignment.slot_index)
        if key not in self._marked and key not in self._marks:
            if len(self._marks) >= MAX_WAITING:
                self.dropped += 1
            else:
                self._marks[key] = now
        issued = self._issued.setdefault(board_id, [])
        if showing.digest not in issued:
            issued.append(showing.digest)
            del issued[:-ISSUED_PER_BOARD]

    async def run(self) -> None:
        await _flush_forever(self.flush, "polls", lambda: self.dropped)

    async def flush(self) -> None:
        now = self.clock()
        marks = list(self._marks.items())
        polls = [(b, self.last_poll[b]) for b in self._dirty_polls]
        suspects = list(itertools.islice(self._suspects.items(), store.CHUNK))  # the rest wait for the next flush
        if not (marks or polls or suspects):
            return
        self._dirty_polls.clear()
        for suspect, _ in suspects:
            del self._suspects[suspect]
        if len(self._checked) > CHECKED_LIMIT:  # old slots never come back
            self._checked.clear()
        self._checked.update(suspect for suspect, _ in suspects)
        incidents: list[store.Incident] = []
        try:
            async with self.sessionmaker() as session, session.begin():
                found = await store.mark_polled(session, marks) if marks else set()
                if polls:
                    await _save_last_polls(session, polls)
                if suspects:
                    incidents = await self._check(session, suspects)
        except BaseException:  # the marks are still waiting; the polls and suspects go back
            self._reachability.failed()
            self._dirty_polls.update(b for b, _ in polls)
            self._checked.difference_update(suspect for suspect, _ in suspects)
            for suspect, value in suspects:
                self._suspects.setdefault(suspect, value)
            raise
        self._reachability.answered(now)
        for incident in incidents:
            self.incidents += 1
            log.error("integrity incident on %s: it polls with content displayd never issued", incident.board_id,
                      extra={"event": "integrity_incident", "board_id": incident.board_id, "source": "poll"})
        for key, at in marks:
            if key in found or self._reachability.patience_over(at, now):
                self._marks.pop(key, None)
                self._marked.add(key)
        if len(self._marked) > CHECKED_LIMIT:  # old slots never come back
            self._marked.clear()

    async def _check(self, session: AsyncSession,
                     suspects: list[tuple[tuple[str, str], tuple[str, datetime]]]) -> list[store.Incident]:
        """The incidents among the suspects, written (counted and logged once committed)."""
        reported = {(board_id, "sha256:" + digest) for (board_id, _), (digest, _) in suspects}
        issued = await store.issued_among(session, reported)
        incidents = [store.Incident(board_id, slot_key, at, "poll", "sha256:" + digest,
                                    "If-None-Match names content never issued to this board")
                     for (board_id, slot_key), (digest, at) in suspects if (board_id, "sha256:" + digest) not in issued]
        return await store.record_incidents(session, incidents)


async def _save_last_polls(session: AsyncSession, polls: list[tuple[str, datetime]]) -> None:
    statement = store.dialect_insert(session, BoardHealth)
    statement = statement.on_conflict_do_update(index_elements=["board_id"],
                                                set_={"last_poll_at": statement.excluded.last_poll_at})
    rows: list[dict[str, Any]] = [{"board_id": b, "last_poll_at": at, "consecutive_failures": 0,
                                   "integrity_incidents": 0} for b, at in polls]
    await session.execute(statement, rows)


class StreamRecorder:
    """Slots sent on event streams, written to the rotation log every FLUSH_SECONDS."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Callable[[], datetime]) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        # key → (first sent, highest revision, first noted): a key stays until its row is found
        # or MARK_PATIENCE has passed since it was first noted.
        self._marks: dict[Key, tuple[datetime, int, datetime]] = {}
        self.dropped = 0  # slots not kept: MAX_WAITING were waiting
        self._reachability = _Reachability()

    def sent(self, key: Key, revision: int, at: datetime) -> None:
        """A `show` of slot `key` (revision `revision`) was written on a stream at `at`."""
        mark = self._marks.get(key)
        if mark is None:
            if len(self._marks) >= MAX_WAITING:
                self.dropped += 1
                return
            self._marks[key] = (at, revision, at)
        else:
            self._marks[key] = (min(mark[0], at), max(mark[1], revision), mark[2])

    async def run(self) -> None:
        await _flush_forever(self.flush, "streamed slots", lambda: self.dropped)

    async def flush(self) -> None:
        if not self._marks:
            return
        marks, self._marks = self._marks, {}  # what is sent meanwhile waits for the next flush
        try:
            async with self.sessionmaker() as session, session.begin():
                found = await store.mark_streamed(session, [store.Streamed(key, at, revision)
                                                            for key, (at, revision, _) in marks.items()])
        except BaseException:
            self._reachability.failed()
            self._merge(marks)
            raise
        now = self.clock()
        self._reachability.answered(now)
        self._merge({key: mark for key, mark in marks.items()
                     if key not in found and not self._reachability.patience_over(mark[2], now)})

    def _merge(self, marks: dict[Key, tuple[datetime, int, datetime]]) -> None:
        for key, (at, revision, noted) in marks.items():
            newer = self._marks.get(key)
            if newer is not None:
                self._marks[key] = (min(at, newer[0]), max(revision, newer[1]), noted)
            elif len(self._marks) < MAX_WAITING:
                self._marks[key] = (at, revision, noted)
            else:
                self.dropped += 1


async def _flush_forever(flush: Callable[[], Awaitable[None]], what: str,
                         dropped: Callable[[], int] = lambda: 0) -> None:
    """`flush()` every FLUSH_SECONDS until cancelled; a failed flush is tried again. One warning
    when flushes start failing (an outage is not a line every two seconds), one when they work again."""
    failures = 0
    while True:
        await asyncio.sleep(FLUSH_SECONDS)
        try:
            await flush()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures += 1
            if failures == 1:
                log.warning("could not record %s: %s; kept in memory (at most %d) and tried again every %.0f s",
                            what, (str(exc).splitlines() or [type(exc).__name__])[0][:200], MAX_WAITING,
                            FLUSH_SECONDS, extra={"event": "record_failing", "what": what})
            continue
        if failures:
            log.warning("recording %s again after %d failed tries; %d dropped since the start", what, failures,
                        dropped(), extra={"event": "record_resumed", "what": what, "dropped": dropped()})
            failures = 0
