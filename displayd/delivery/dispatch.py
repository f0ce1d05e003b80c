"""The scheduler leader's work: at every slot boundary, ahead of it, and after every change,
give each board what it should hold, record it in the rotation log, push it, and record the outcome.

    dispatcher = Dispatcher(...)
    await dispatcher.take_over(shards)    # on gaining shards (all of them, by default)
    next_sync = await dispatcher.sync(at)
    dispatcher.drop(shards)               # on losing some

A dispatcher plans only the boards of the shards its process leads (`displayd.delivery.shards`):
the replicas of a site share the boards that way.

`sync` asks each board's `Ledger` (`displayd.delivery.ledger`) what it must be sent at `at`:
the slot under way and the one starting within the board's lead (`lead_seconds`; at least
STREAM_LEAD for stream boards), compared with what it was sent. Then:
- a slot's first send: a rotation row is inserted first — `pending` for push boards, `skipped`
  for boards whose circuit is open, `not_pushed` for poll and stream boards (the stream marks
  its row delivered when it sends it) — and only rows that were really new are pushed, so no
  slot is ever pushed twice. A slot sent ahead carries its `starts_at` in the future: the board
  shows it then by its own clock, and the pushes of one sync leave spread over up to a quarter
  of the lead (at most MAX_SPREAD), not in one burst;
- a later revision of a slot (taken back by a blank, given back by a show): pushed at once,
  its outcome and revision written on the slot's row;
- a board left with nothing: a blank without a slot.
Pushes run in the background and must finish by the slot's end; their outcomes and the
boards' health are written in one batch when they are all done. `sync` answers when it must
run next: the earliest instant any board's content changes, or the lead before it.

While the database is unreachable (`backlog.unreachable`), the dispatcher is `offline`: the
plan is a pure function of time, so it goes on from memory. A slot's first send is pushed as
if its row were new (the leader holds its boards; nobody can claim a slot without the
database), the ledgers move on as after a commit, and what it could not write waits in its
`Backlog`: rows, outcomes, health, reports, the boundary handled. Offline, a boundary does
not touch the database at all (no timeout per boundary): a task tries to write the backlog
every BACKLOG_RETRY seconds and, once all of it is written, the dispatcher is back online.
A slot pushed from memory is not pushed again (its ledger knows it was sent, and its row goes
in ON CONFLICT DO NOTHING). `take_over` and `record_missed` first write the backlog
(`settle_backlog`): a ledger loaded from the database, or a `missed` window, must see every
slot pushed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from displayd.delivery.backlog import Backlog, Report, unreachable
from displayd.delivery.ledger import Ledger, Send, Sent
from displayd.delivery.push import Pusher, PushRequest, PushResult
from displayd.delivery.shards import ALL_SHARDS, PRIMARY_SHARD, shard_of
from displayd.errors import PlanFailed
from displayd.keyring import board_secret
from displayd.live.snapshot import BoardView, Showing, Snapshot, iso
from displayd.live.watch import Live
from displayd.logbook import store
from displayd.logbook.store import Key, NewRow, Outcome
from displayd.metrics import Metrics
from displayd.protocol import PUSHED, document_json

log = logging.getLogger("displayd.delivery")

FAILURES_BEFORE_UNREACHABLE = 5
UNREACHABLE_RETRY = timedelta(minutes=5)
MISSED_WINDOW = timedelta(hours=24)
# Pushes in flight at once (one task and at most one connection each). High, because a
# hanging board holds its place until the slot's end: healthy boards must never queue
# behind slow ones (bench/faults.py). The client's connection limit is the same.
PUSH_CONCURRENCY = 4096
# Rows in a boundary's first claim: its pushes leave after one small insert (~2 ms); the
# rest are written while they are on the wire.
FIRST_CLAIM = 32
PLAN_CHUNK = 500  # boards planned between two yields to the event loop
MAX_SPREAD = 1.0  # seconds: the longest a sync's pushes sent ahead are spread over
MAX_LEAD = timedelta(seconds=300)  # the longest `lead_seconds`: how far ahead a take-over looks for rows
BACKLOG_RETRY = 2.0  # seconds between two tries to write the backlog while offline
# The longest a claim, or the write of a boundary's outcomes, may take on PostgreSQL before the
# database counts as unreachable: a network that drops packets never refuses or resets, and
# without it a boundary would wait minutes for TCP to give up. Normally they take
# milliseconds (10,000 rows: well under a second); a write that times out after all is
# harmless: it is written again from the backlog, ON CONFLICT DO NOTHING. (Not on SQLite: a
# local file is never unreachable, and a cancelled aiosqlite call leaves its thread running.)
DATABASE_TIMEOUT = 5.0


def webhook_id(key: Key, revision: int) -> str:
    """`<board>:<campaign>:<slot>:<revision>`: stable across retries, one per revision of a slot."""
    return f"{key[0]}:{key[1]}:{key[2]}:{revision}"


def show_document(board_id: str, showing: Showing, revision: int) -> dict[str, Any]:
    """A `show` (DESIGN "Push"): the same JSON whether pushed or streamed."""
    document = showing.document
    return {"type": "show", "board_id": board_id, "slot": document["slot"], "revision": revision,
            "content": document["content"], "content_hash": document["content_hash"],
            "valid_until": document["valid_until"]}


def blank_document(board_id: str, send: Send) -> dict[str, Any]:
    """A `blank`: a slot's revision (carrying the slot) or, without one, idle until `until`."""
    document: dict[str, Any] = {"type": "blank", "board_id": board_id}
    slot = send.slot
    if send.key is not None and slot is not None:
        document |= {"slot": {"campaign_id": send.key[1], "index": send.key[2], "starts_at": iso(slot.starts_at),
                              "ends_at": iso(slot.ends_at)}, "revision": send.revision}
        document["until"] = iso(slot.ends_at)
    else:
        document["until"] = iso(send.until) if send.until else None
    return document


@dataclass(slots=True)
class Health:
    failures: int = 0
    unreachable_since: datetime | None = None
    last_attempt_at: datetime | None = None

    def circuit_open(self, now: datetime) -> bool:
        return (self.unreachable_since is not None and self.last_attempt_at is not None
                and now - self.last_attempt_at < UNREACHABLE_RETRY)


@dataclass(slots=True)
class _Push:
    request: PushRequest
    key: Key | None          # the slot whose row records the outcome; None for a slotless blank
    revision: int
    sent_hash: str | None
    slot_key: str            # what a board's report is an incident of, at most once (`store.Incident`)


@dataclass
class _Plan:
    """What a boundary will do: rows to write, pushes (built, signed later) and blanks."""

    at: datetime
    snapshot: Snapshot
    generation: int                      # the dispatcher's generation it was planned against
    rows: list[NewRow] = field(default_factory=list)
    shows: dict[Key, _Push] = field(default_factory=dict)  # first sends: pushed once their row is new
    revisions: list[_Push] = field(default_factory=list)  # later revisions and slotless blanks: at once
    given: dict[str, Ledger] = field(default_factory=dict)
    next_at: datetime | None = None
    spread: float | None = None  # seconds the pushes sent ahead leave over (the least of their boards')

    def at_latest(self, t: datetime | None) -> None:
        if t is not None and (self.next_at is None or t < self.next_at):
            self.next_at = t


@dataclass
class Dispatcher:
    live: Live                                   # the process's snapshot, rebuilt on every change
    metrics: Metrics
    sessionmaker: async_sessionmaker[AsyncSession]
    pusher: Pusher
    clock: Callable[[], datetime]
    master: bytes
    name: str
    shards: frozenset[int] = ALL_SHARDS  # the shards this process leads: only their boards are planned
    given: dict[str, Ledger] = field(default_factory=dict)  # what each board was sent, slot by slot
    health: dict[str, Health] = field(default_factory=dict)
    _deliveries: set[asyncio.Task[None]] = field(default_factory=set)
    _secrets: dict[str, str] = field(default_factory=dict)
    _issued: set[tuple[str, str]] = field(default_factory=set)  # (board, content hash) known to be recorded
    _prepared: _Plan | None = None
    plan_seconds: float = 0.0  # how long the last plan took: the scheduler prepares at least twice that ahead
    _generation: int = 0  # moves on every sync: a plan made before another sync is stale
    backlog: Backlog = field(default_factory=Backlog)  # what waits for the database while it is unreachable
    offline: bool = False  # the database was unreachable and the backlog is not all written yet
    _writer: asyncio.Task[None] | None = None  # writes the backlog every BACKLOG_RETRY seconds while offline

    async def take_over(self, shards: frozenset[int] = ALL_SHARDS) -> tuple[datetime, datetime] | None:
        """Start leading `shards` (every one, by default): settle what a stopped leader left and
        load what their boards were given, and their health. With the primary shard, the
        window of slots nobody in the site gave, for `record_missed` once the present is pushed
        (only the primary's leader claims it: one replica writes the site's missed slots)."""
        await self.settle_backlog()  # the ledgers and the window below must see the slots pushed offline
        now = self.clock()
        async with self.sessionmaker() as session, session.begin():
            stale = await store.fail_stale_pending(
                session, now, None if shards == ALL_SHARDS else lambda board_id: shard_of(board_id) in shards)
            current = await store.rows_between(session, now, now + MAX_LEAD)
            health = await store.load_health(session)
            since = None
            if PRIMARY_SHARD in shards:
                since = await store.claim_missed_window(session, not_before=now - MISSED_WINDOW)
        slots: dict[str, dict[Key, Sent]] = {}
        # A slot revised before, or whose push is still `pending` (its leader died mid-fan-out:
        # the board may never have had it), is re-sent as it stands now (`Sent.shown` None), as
        # its next revision: a board that did get it keeps the one it has.
        for row in current:
            if shard_of(row.board_id) in shards:
                slots.setdefault(row.board_id, {})[(row.board_id, row.campaign_id, row.slot_index)] = Sent(
                    row.starts_at, row.ends_at, row.content_hash, row.revisions,
                    True if row.revisions == 0 and row.push_status != "pending" else None)
        for board_id in [b for b in self.given if shard_of(b) in shards]:
            del self.given[board_id]  # what another leader sent them since is in the rows
        self.given.update({board_id: Ledger(held, blank=not any(s.starts_at <= now for s in held.values()))
                           for board_id, held in slots.items()})
        self.health.update({h.board_id: Health(h.consecutive_failures, h.unreachable_since, h.last_push_at)
                            for h in health.values() if shard_of(h.board_id) in shards})
        self.shards |= shards
        self._generation += 1  # a plan prepared for the shards held before is stale
        if stale:
            log.warning("%d pushes of a stopped scheduler have unknown outcomes", stale)
        return None if since is None else (since, now)

    def drop(self, shards: frozenset[int]) -> None:
        """Stop leading `shards`: forget what their boards were sent (another replica leads them now)."""
        self.shards -= shards
        for board_id in [b for b in self.given if shard_of(b) in shards]:
            del self.given[board_id]
        for board_id in [b for b in self.health if shard_of(b) in shards]:
            del self.health[board_id]
        self._generation += 1

    async def record_missed(self, start: datetime, end: datetime, shards: frozenset[int] | None = None) -> int:
        """Rows for every slot that started and ended in [start, end) and has none: `missed`.

        Every board's, for the site's window (`take_over` claimed it; written down when done), or
        only the boards of `shards` (shards taken from a replica that died). Written in chunks,
        board by board, yielding between them: a long outage is many rows, and polls and the
        next boundary must not wait for them. Slots before a board existed are not its missed
        slots."""
        await self.settle_backlog()  # a slot pushed from memory is never written down as missed
        snapshot: Snapshot = self.live.snapshot
        rows: list[NewRow] = []
        recorded = 0
        boards = [(board_id, board) for board_id, board in snapshot.boards.items()
                  if shards is None or board.shard in shards]
        for position, (board_id, board) in enumerate(boards, start=1):
            try:
                planned = snapshot.timeline(board_id, start, end)
            except PlanFailed:
                planned = []  # a plan_error, logged and counted by the snapshot
            for item in planned:
                if item.starts_at >= max(start, board.created_at) and item.ends_at <= end:
                    _, digest = snapshot.content(board, item.slogan_id)
                    rows.append(NewRow(board_id, item.campaign_id, item.slot_index, item.slogan_id, digest,
                                       item.starts_at, item.ends_at, "missed", "displayd was not running"))
            if rows and (len(rows) >= store.CHUNK or position == len(boards)):
                async with self.sessionmaker() as session, session.begin():
                    recorded += len(await store.insert_rows(session, rows))
                rows = []
            await asyncio.sleep(0)
        if shards is None:
            async with self.sessionmaker() as session, session.begin():
                await store.missed_window_written(session, start)
        if recorded:
            log.warning("recorded %d missed slots between %s and %s", recorded, iso(start), iso(end),
                        extra={"event": "missed_slots", "count": recorded})
        return recorded

    async def prepare(self, at: datetime) -> None:
        """Plan the boundary at `at` ahead of time (no I/O): at `at`, only the rows are
        written and the pre-built pushes sent. A change in between makes the plan stale."""
        started = time.perf_counter()
        self._prepared = await self._plan(at)
        self.plan_seconds = time.perf_counter() - started

    async def sync(self, at: datetime) -> datetime | None:
        """Bring every board up to date at `at` (or now, if later); the next boundary.

        The rows are the claim on a slot: a board is pushed only once its row is committed and
        was new. They are written in two claims, push boards first: FIRST_CLAIM rows, whose
        pushes leave as soon as they commit, then the rest, written while those are on the
        wire. So a slot starts within a few milliseconds of its boundary instead of after all
        its rows are in. (More, smaller claims were slower: each waits its turn on an event
        loop busy with pushes, and the last boards waited for the last claim.)

        A claim the database cannot be reached for (or any claim while `offline`) is kept in
        the backlog instead, and its rows are taken as new: the boundary goes on from memory."""
        plan = self._prepared
        self._prepared = None
        now = self.clock()
        started = time.perf_counter()
        prepared = plan is not None and (plan.at == at <= now and plan.snapshot is self.live.snapshot
                                          and plan.generation == self._generation)
        if plan is None or not prepared:
            plan = await self._plan(max(at, now))
            self.plan_seconds = time.perf_counter() - started
        planned = time.perf_counter()
        gate = asyncio.Semaphore(PUSH_CONCURRENCY)
        sends: list[tuple[list[_Push], asyncio.Task[list[PushResult]]]] = []

        def send(pushes: list[_Push]) -> None:
            if pushes:
                requests = [push.request for push in pushes]
                sends.append((pushes, asyncio.create_task(
                    self.pusher.push_all(requests, gate=gate, spread=plan.spread or 0.0))))

        claims = [claim for claim in (plan.rows[:FIRST_CLAIM], plan.rows[FIRST_CLAIM:]) if claim]
        first_push: float | None = None
        try:
            for number, claim in enumerate(claims):
                inserted = await self._claim(plan, claim, handled=number == 0)
                issued = {(row.board_id, row.content_hash) for row in claim if row.key in inserted} - self._issued
                # Committed (or kept): these boards were given their slot, even if a later claim fails
                # (the boards of a failed claim are tried again at the next call).
                self._issued |= issued
                if number == 0:
                    self._generation += 1  # a plan made before this is stale
                self.given.update((row.board_id, plan.given[row.board_id]) for row in claim)
                pushes = [plan.shows[row.key] for row in claim if row.key in inserted and row.key in plan.shows]
                if pushes and first_push is None:
                    first_push = time.perf_counter()
                send(pushes)
                if number == 0 and pushes and len(claims) > 1:
                    # Let the first pushes reach the wire (their task starts them, each writes its
                    # request) before the next claim's statement is built: that holds the loop for
                    # ~15 ms per 1,000 rows, and the first boards would wait for it.
                    for _ in range(3):
                        await asyncio.sleep(0)
            if not plan.rows:
                await self._claim(plan, [], handled=True)
                self._generation += 1
            for board_id in [b for b in self.given if b not in plan.snapshot.boards]:
                del self.given[board_id]  # deleted boards
            self.given.update(plan.given)  # the boards without a row too: blanks, idle, unchanged
            send(plan.revisions)
        finally:
            if sends:  # what is on the wire is recorded, whatever happened to the later claims
                task = asyncio.create_task(self._deliver(sends), name=f"displayd-push-{iso(plan.at)}")
                self._deliveries.add(task)
                task.add_done_callback(self._deliveries.discard)
        log.debug("boundary %s: began %.1f ms after it, %s plan %.1f ms, first pushes after %s, rows %.1f ms, "
                  "%d pushes, %d revisions", iso(plan.at), (now - at).total_seconds() * 1000,
                  "prepared" if prepared else "new", (planned - started) * 1000,
                  "-" if first_push is None else f"{(first_push - planned) * 1000:.1f} ms",
                  (time.perf_counter() - planned) * 1000, sum(len(pushes) for pushes, _ in sends),
                  len(plan.revisions))
        return plan.next_at

    async def _claim(self, plan: _Plan, claim: list[NewRow], *, handled: bool) -> set[Key]:
        """Write a claim's rows (and, if `handled`, the boundary handled); the keys that were new.
        Offline, or when the database turns out unreachable, the claim waits in the backlog and
        every row counts as new."""
        if not self.offline:
            try:
                async with self._in_time(), self.sessionmaker() as session, session.begin():
                    inserted = await store.insert_rows(session, claim)
                    issued = {(row.board_id, row.content_hash) for row in claim if row.key in inserted} - self._issued
                    if issued:  # only content this leader has not given the board before: rarely any
                        await store.note_issued(session, issued, plan.at)
                    if handled:
                        await store.set_handled_until(session, plan.at, self.name)
                return inserted
            except Exception as exc:
                if not unreachable(exc):
                    raise
                self._went_offline(exc)
        self._keep_writing()
        self.backlog.add_rows(claim)
        # Every row's content, even of a row the bound dropped: its board was given it, and
        # reporting it back must never read as content displayd never issued.
        self.backlog.add_issued({(row.board_id, row.content_hash) for row in claim} - self._issued, plan.at)
        if handled:
            self.backlog.handled(plan.at, self.name)
        return {row.key for row in claim}

    @contextlib.asynccontextmanager
    async def _in_time(self) -> AsyncIterator[None]:
        """DATABASE_TIMEOUT on PostgreSQL (see there); no limit on SQLite."""
        bind = self.sessionmaker.kw.get("bind")
        if bind is not None and bind.dialect.name == "postgresql":
            async with asyncio.timeout(DATABASE_TIMEOUT):
                yield
        else:
            yield

    def _went_offline(self, exc: BaseException) -> None:
        if not self.offline:
            self.offline = True
            log.warning("the database is unreachable (%s): pushing from memory, keeping what cannot be written",
                        (str(exc).splitlines() or [type(exc).__name__])[0][:200],
                        extra={"event": "database_unreachable"})
        self._keep_writing()

    def _keep_writing(self) -> None:
        """Make sure the backlog's writer runs (it ends once the backlog is written, or at `stop`)."""
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_backlog_forever(), name="displayd-backlog")

    async def _write_backlog_forever(self) -> None:
        """Every BACKLOG_RETRY seconds, try to write the backlog; done once it is all written."""
        while self.offline:
            await asyncio.sleep(BACKLOG_RETRY)
            try:
                await self.settle_backlog()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not unreachable(exc):
                    log.exception("writing the rows kept during the outage failed; trying again in %.0f s",
                                  BACKLOG_RETRY)

    async def settle_backlog(self) -> None:
        """Write everything the backlog holds, now; back online once it is all written. Raises
        what the database raised (the rest still waits)."""
        if self.backlog.empty:
            self.offline = False
            return
        rows = await self.backlog.write(self.sessionmaker, reports=self._write_reports, in_time=self._in_time)
        if self.backlog.empty and self.offline:
            self.offline = False
            log.warning("the database is back: wrote the %d rotation rows kept during the outage", rows,
                        extra={"event": "backlog_written", "rows": rows, "dropped": self.backlog.dropped})

    async def _plan(self, t: datetime) -> _Plan:
        """What every board must be sent at t. It yields to the loop every PLAN_CHUNK boards:
        polls and the leadership check go on while 10,000 boards are planned."""
        snapshot: Snapshot = self.live.snapshot
        plan = _Plan(at=t, snapshot=snapshot, generation=self._generation)
        shards = self.shards
        for number, (board_id, board) in enumerate(snapshot.boards.items(), start=1):
            if board.shard not in shards:
                continue  # another replica leads it
            try:
                self._plan_board(plan, board, t)
            except Exception as exc:  # one board's fault never costs the others their slot
                snapshot.report(None, board_id, exc)
            if number % PLAN_CHUNK == 0:
                await asyncio.sleep(0)
        plan.rows.sort(key=lambda row: row.push_status != "pending")  # pushes are claimed first (`sync`)
        return plan

    def _plan_board(self, plan: _Plan, board: BoardView, t: datetime) -> None:
        board_id = board.spec.id
        snapshot = plan.snapshot
        lead = board.ahead_seconds
        ledger = self.given.get(board_id) or Ledger()
        sends, plan.given[board_id] = ledger.due(snapshot, board_id, t, lead=lead)
        plan.at_latest(snapshot.showing(board_id, t).until)  # the cached showings `due` planned with
        if lead:
            ahead = snapshot.showing_ahead(board_id, t + timedelta(seconds=lead)).until
            plan.at_latest(None if ahead is None else ahead - timedelta(seconds=lead))
        pushes = board.delivery in PUSHED and board.endpoint_url is not None
        circuit_open = pushes and self.health.get(board_id, Health()).circuit_open(t)
        for send in sends:
            if send.new:
                self._first_send(plan, board, send, pushes=pushes, circuit_open=circuit_open)
            elif pushes and not circuit_open:
                revise = self._show if send.type == "show" else self._blank
                plan.revisions.append(revise(board, send, t))

    def _first_send(self, plan: _Plan, board: BoardView, send: Send, *, pushes: bool, circuit_open: bool) -> None:
        showing = send.showing
        assert send.key is not None and showing is not None and showing.assignment is not None
        assert showing.content_hash is not None
        if not pushes:
            status = "not_pushed"
        elif circuit_open:
            status = "skipped"
        else:
            status = "pending"
            plan.shows[send.key] = self._show(board, send, plan.at)
            ahead = (showing.assignment.starts_at - plan.at).total_seconds()
            spread = min(MAX_SPREAD, ahead / 4) if ahead > 0 else 0.0
            plan.spread = spread if plan.spread is None else min(plan.spread, spread)
        assignment = showing.assignment
        plan.rows.append(NewRow(board.spec.id, assignment.campaign_id, assignment.slot_index, assignment.slogan_id,
                                showing.content_hash, assignment.starts_at, assignment.ends_at, status,
                                "board unreachable: not tried" if status == "skipped" else None))

    async def stop(self) -> None:
        """Wait for deliveries under way (they end by their slots' ends), then, if offline, try
        once more to write the backlog: what still cannot be written is lost with the process,
        and said so (event `backlog_lost`). The next boundary, if any, starts the writer again."""
        if self._deliveries:
            await asyncio.gather(*self._deliveries, return_exceptions=True)
        writer, self._writer = self._writer, None
        if writer is None:
            return
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer
        try:
            await self.settle_backlog()
        except Exception as exc:
            log.warning("%d rotation-log writes kept during the outage still wait for the database at stop "
                        "(lost if the process ends): %s",
                        self.backlog.waiting, (str(exc).splitlines() or [type(exc).__name__])[0][:200],
                        extra={"event": "backlog_lost", "count": self.backlog.waiting})

    def _secret(self, board: BoardView) -> str:
        secret = self._secrets.get(board.secret_nonce)
        if secret is None:
            secret = self._secrets[board.secret_nonce] = board_secret(self.master, board.secret_nonce)
        return secret

    def _deadline(self, until: datetime | None, now: datetime) -> float:
        loop_now = asyncio.get_running_loop().time()
        if until is None:
            return loop_now + 60.0
        return loop_now + max(0.0, (until - now).total_seconds())

    def _show(self, board: BoardView, send: Send, now: datetime) -> _Push:
        showing = send.showing
        assert showing is not None and showing.assignment is not None and send.key is not None
        assert board.endpoint_url is not None
        body = document_json(show_document(board.spec.id, showing, send.revision))
        request = PushRequest(board_id=board.spec.id, url=board.endpoint_url, body=body.encode(),
                              webhook_id=webhook_id(send.key, send.revision), secret=self._secret(board),
                              deadline=self._deadline(showing.assignment.ends_at, now))
        return _Push(request, send.key, send.revision, showing.content_hash, showing.slot_key)

    def _blank(self, board: BoardView, send: Send, now: datetime) -> _Push:
        """A blank: a slot's revision taking back what it was sent for that slot, or, without a
        slot, the board going idle until `send.until`."""
        assert board.endpoint_url is not None
        document = blank_document(board.spec.id, send)
        if send.key is not None:
            ident, until = webhook_id(send.key, send.revision), send.slot.ends_at if send.slot else None
            slot_key = f"{send.key[1]}:{send.key[2]}"
        else:
            ident, until = f"{board.spec.id}:blank:{int(now.timestamp() * 1000)}", send.until
            slot_key = f"blank:{int(now.timestamp())}"
        request = PushRequest(board_id=board.spec.id, url=board.endpoint_url,
                              body=document_json(document).encode(),
                              webhook_id=ident, secret=self._secret(board), deadline=self._deadline(until, now))
        return _Push(request, send.key, send.revision, None, slot_key)

    async def _deliver(self, sends: list[tuple[list[_Push], asyncio.Task[list[PushResult]]]]) -> None:
        try:
            pushes = [push for batch, _ in sends for push in batch]
            results = [result for _, task in sends for result in await task]
            await self._record(pushes, results)
        except Exception:
            log.exception("recording a slot's deliveries failed")

    async def _record(self, pushes: list[_Push], results: list[PushResult]) -> None:
        """Write the pushes' outcomes, the boards' health and the reports to check, in one
        transaction; into the backlog while offline or if the database turns out unreachable."""
        now = self.clock()
        loop_now = asyncio.get_running_loop().time()
        outcomes: list[Outcome] = []
        health_rows: list[dict[str, Any]] = []
        reports: list[Report] = []
        metrics = self.metrics
        for push, result in zip(pushes, results, strict=True):
            finished = now - timedelta(seconds=max(0.0, loop_now - result.finished_at))
            board_id = push.request.board_id
            if push.key is not None:
                outcomes.append(Outcome(push.key, "delivered" if result.delivered else "failed", result.attempts,
                                        result.http_status, result.latency_ms, result.error,
                                        finished if result.delivered else None, push.revision))
            health_rows.append(self._health_after(board_id, result, finished))
            if result.reported_hash is not None and result.reported_hash != push.sent_hash:
                reports.append(Report(board_id, push.slot_key, now, result.reported_hash, push.sent_hash))
            metrics.pushed(delivered=result.delivered,
                           seconds=None if result.latency_ms is None else result.latency_ms / 1000)
            log.info("push %s", "delivered" if result.delivered else "failed", extra={
                "event": "push", "board_id": board_id, "webhook_id": push.request.webhook_id,
                "attempts": result.attempts, "http_status": result.http_status,
                "latency_ms": result.latency_ms, "error": result.error})
        if not self.offline:
            try:
                async with self._in_time(), self.sessionmaker() as session, session.begin():
                    await store.record_results(session, outcomes)
                    await store.save_health(session, health_rows)
                    for start in range(0, len(reports), store.CHUNK):
                        await self._write_reports(session, reports[start:start + store.CHUNK])
                return
            except Exception as exc:
                if not unreachable(exc):
                    raise
                self._went_offline(exc)
        self.backlog.add_outcomes(outcomes)
        self.backlog.add_health(health_rows)
        self.backlog.add_reports(reports)

    async def _write_reports(self, session: AsyncSession, reports: list[Report]) -> None:
        """Incidents for the reports (at most one chunk) naming content never issued to their board."""
        issued = await store.issued_among(session, {(r.board_id, r.reported_hash) for r in reports})
        incidents = [store.Incident(r.board_id, r.slot_key, r.at, "push", r.reported_hash,
                                    f"board reports {r.reported_hash[:40]} after being sent {r.sent_hash or 'a blank'}")
                     for r in reports if (r.board_id, r.reported_hash) not in issued]
        for incident in await store.record_incidents(session, incidents):
            self.metrics.incidents_push += 1
            log.error("integrity incident on %s: it shows content displayd never issued", incident.board_id,
                      extra={"event": "integrity_incident", "board_id": incident.board_id, "source": "push"})

    def _health_after(self, board_id: str, result: PushResult, at: datetime) -> dict[str, Any]:
        health = self.health.setdefault(board_id, Health())
        health.last_attempt_at = at
        if result.delivered:
            health.failures, health.unreachable_since = 0, None
        else:
            health.failures += 1
            if health.failures >= FAILURES_BEFORE_UNREACHABLE and health.unreachable_since is None:
                health.unreachable_since = at
                log.warning("board %s is unreachable after %d failed slots", board_id, health.failures,
                            extra={"event": "board_unreachable", "board_id": board_id})
        return {"board_id": board_id, "last_push_at": at,
                "last_push_status": "delivered" if result.delivered else "failed",
                "last_push_error": result.error[:300] if result.error else None,
                "consecutive_failures": health.failures, "unreachable_since": health.unreachable_since}
