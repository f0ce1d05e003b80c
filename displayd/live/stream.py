"""`GET /api/v1/boards/{id}/events`: a board's event stream (Server-Sent Events), fed by one hub per process.

    hub = StreamHub(live, clock, recorder, per_board=2)
    live.listeners.append(hub.changed)   # a change (a retirement, the emergency stop) wakes it
    hub.start()                          # the one task that feeds every open stream
    ...
    await hub.close()                    # every stream ends with its last chunk; the task stops

A board that cannot be reached (behind NAT or a 4G router) opens a stream and is sent on it
what a push board is POSTed (DESIGN "Stream"): an event per document, its `event:` the
document's type (`show`, `blank`), its `data:` the push's JSON on one line, its `id:` the
webhook-id (`<board>:<campaign>:<slot>:<revision>`; a blank without a slot
`<board>:blank:<unix ms>`). What to send is the one revisions rule of
`displayd.delivery.ledger`, a `Ledger` per open stream, content `BoardView.ahead_seconds`
ahead of its slot (at least 2 s for `delivery: stream` boards); a new stream starts by
telling the board what holds now (its slot, or a blank). A comment line (`: keepalive`)
every `heartbeat` seconds keeps proxies and NAT from closing a quiet connection.

A board that reconnects with `Last-Event-ID` is sent what is still valid, the slot under way
and the next, as a new stream would be, except the slot that id names: the board holds it
at that revision, so it is sent again as the next revision (its state as planned now, a show
or a blank), which the board keeps, as it keeps the highest revision of each slot.

Thousands of streams, kept lean:
- `StreamPath` is plain ASGI in front of FastAPI, like the poll path. A stream's own
  coroutine only waits for its board to go (`receive()`): no timer, no queue object, no task
  of its own while nothing is written.
- One task (`StreamHub.run`) wakes at the earliest instant any open stream needs something
  (a slot under way ends; the next comes within the lead), after every snapshot rebuild
  (revisions go out at once), and for the heartbeat. A pass runs the ledgers of the boards
  that are due (every board after a rebuild) and never waits for one.
- What a pass sends a stream is queued on it (an event or two) and written by a short task.
  A stream whose queue passes MAX_PENDING bytes, or whose write has waited `write_timeout`
  seconds (a board that stopped reading), is dropped: its connection closes, the board
  reconnects.

Each `show` written is noted for the rotation log (`StreamRecorder`): the slot's row, written
`not_pushed` by the scheduler leader at the lead, becomes `delivered`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl

from displayd import runtime as runtimes  # a module: it imports this package in turn
from displayd.auth.guard import Kind
from displayd.auth.keys import hash_secret
from displayd.delivery.dispatch import blank_document, show_document, webhook_id
from displayd.delivery.ledger import Ledger, Sent
from displayd.delivery.ledger import Send as Due
from displayd.live.poll import Answer
from displayd.protocol import BOARD_TOKEN_PREFIX, bearer_token, document_json
from displayd.rotation import slot_bounds

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.types import ASGIApp, Receive, Scope, Send

    from displayd.live.recorder import StreamRecorder
    from displayd.live.snapshot import BoardView, Snapshot
    from displayd.live.watch import Live
    from displayd.runtime import Clock, Runtime

__all__ = ["StreamHub", "StreamPath", "close_streams", "event_bytes"]

log = logging.getLogger("displayd.streams")

PREFIX = "/api/v1/boards/"
SUFFIX = "/events"
HEARTBEAT_SECONDS = 15.0
WRITE_TIMEOUT = 10.0  # seconds a write may wait for a board that does not read before the stream is dropped
MAX_PENDING = 64 * 1024  # bytes queued behind a write under way: more, and the board is not keeping up
CLOSE_GRACE = 2.0  # seconds `close` gives the streams to write their last chunk
MAX_SLEEP = 60.0  # the hub looks again at least this often (a wall clock that jumped, say)
TIMER_SLACK = 0.001  # wake just after an instant, never just before it
PASS_BATCH = 250  # boards a pass runs between two turns of the event loop
SETTLE_LIMIT = 1.0  # seconds the scheduler leader waits at most for the streams' pass after a change
MAX_REVISION = 1_000_000  # a Last-Event-ID naming more is not one displayd sent
FREEZE_STREAMS = 256  # open streams (and a quarter more than at the last time) that ask for a freeze (`Live.heap_grew`)
KEEPALIVE = b": keepalive\n\n"
EVENT_STREAM = b"text/event-stream"
JSON_TYPE = b"application/json"
START_HEADERS = [(b"content-type", EVENT_STREAM), (b"cache-control", b"no-cache"),
                 (b"x-accel-buffering", b"no")]  # nginx passes each event on at once instead of buffering

State = Literal["starting", "open", "closing", "ended", "dropped"]


@dataclass(eq=False, slots=True)
class Stream:
    """One open event stream: its board, its ledger, what waits to be written."""

    board_id: str
    token_hash: str
    send: Send  # the connection's ASGI `send`
    task: asyncio.Task[object] | None  # the connection's own task: cancelled to drop it
    ledger: Ledger = field(default_factory=lambda: Ledger(blank=False))  # a new stream says what holds now
    pending: list[bytes] = field(default_factory=list)
    pending_bytes: int = 0
    writer: asyncio.Task[None] | None = None
    # starting (registered, its 200 not sent yet) → open → closing (its last chunk queued) → ended;
    # or dropped (its board stopped reading).
    state: State = "starting"


def event_bytes(board_id: str, due: Due, now: datetime) -> bytes:
    """One event: `id:` the webhook-id, `event:` the type, `data:` the push's JSON on one line."""
    if due.type == "show":
        assert due.showing is not None and due.key is not None
        document = show_document(board_id, due.showing, due.revision)
    else:
        document = blank_document(board_id, due)
    ident = webhook_id(due.key, due.revision) if due.key is not None else \
        f"{board_id}:blank:{int(now.timestamp() * 1000)}"
    data = document_json(document)  # escapes every line break
    return f"id: {ident}\nevent: {due.type}\ndata: {data}\n\n".encode()


class StreamHub:
    """Every open stream of this process, and the one task that feeds them (module docstring)."""

    def __init__(self, live: Live, clock: Clock, recorder: StreamRecorder, *, per_board: int,
                 heartbeat: float = HEARTBEAT_SECONDS, write_timeout: float = WRITE_TIMEOUT) -> None:
        self.live = live
        self.clock = clock
        self.recorder = recorder
        self.per_board = per_board
        self.heartbeat = heartbeat  # read at every wake: a test may shorten it, then `wake()`
        self.write_timeout = write_timeout
        self.boards: dict[str, list[Stream]] = {}
        self.count = 0  # streams registered (the /metrics gauge)
        self.dropped = 0  # streams dropped because their board did not read
        self._grown_from = 0  # streams open when the heap's growth was last reported (or fewer since)
        self._due: dict[str, datetime | None] = {}  # board → when its streams next need something (None: a change)
        self._snapshot: Snapshot | None = None  # the snapshot of the last pass
        self._wake = asyncio.Event()
        self._wake_at: datetime | None = None  # the instant the task sleeps until (None: only a change or a beat)
        self._last_beat = 0.0
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._passed: Snapshot | None = None  # the snapshot of the last pass that ran to its end
        self._pass_ended = asyncio.Event()
        self._after: set[asyncio.Task[None]] = set()  # listeners waiting for a pass (`then`)

    @property
    def stopping(self) -> bool:
        return self._closing

    # The connection side

    def open(self, board_id: str, token_hash: str, send: Send) -> Stream | None:
        """Register a stream of `board_id`; None when the board has `per_board` open already or
        the process is stopping. `begin` starts it once its answer's head is sent."""
        streams = self.boards.get(board_id)
        if self._closing or (streams is not None and len(streams) >= self.per_board):
            return None
        stream = Stream(board_id, token_hash, send, asyncio.current_task())
        self.boards.setdefault(board_id, []).append(stream)
        self.count += 1
        return stream

    def begin(self, stream: Stream, last_event_id: str | None) -> None:
        """Send the new stream what holds now (after `Last-Event-ID`, see the module docstring)."""
        if stream.state == "closing":  # the process began stopping while its head was being sent
            stream.writer = stream.writer or asyncio.create_task(self._write(stream))
            return
        if stream.state != "starting":
            return
        stream.state = "open"
        if self.count >= max(FREEZE_STREAMS, self._grown_from * 5 // 4):
            self._grown_from = self.count
            self.live.heap_grew()
        snapshot, now = self.live.snapshot, self.clock()
        board = snapshot.boards.get(stream.board_id)
        if board is None:  # deleted since it was authorised
            self._end(stream)
            return
        if last_event_id:
            stream.ledger = _resumed(snapshot, board, last_event_id, now)
        self._run(stream, snapshot, board, now)
        if self._snapshot is snapshot:  # (otherwise the task's next pass sees a new snapshot and does every board)
            due_at = self._due[stream.board_id] = _next_instant(snapshot, board, now)
            if due_at is not None and (self._wake_at is None or due_at < self._wake_at):
                self._wake.set()

    def forget(self, stream: Stream) -> None:
        """The connection is gone (or ended): forget the stream."""
        if stream.state in ("starting", "open", "closing"):
            stream.state = "ended"
        self._unregister(stream)
        stream.pending.clear()

    # The task

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="displayd-streams")

    async def changed(self) -> None:
        """A `Live` listener: the snapshot was rebuilt; every stream is brought up to date at once."""
        self._wake.set()

    async def settled(self, limit: float = SETTLE_LIMIT) -> None:
        """Return once a pass over the current snapshot has ended (at once with no stream open),
        or after `limit` seconds. The scheduler leader waits for it after a change before
        planning its own revisions: both are thousands of boards' work on one event loop, and
        the streams' share (queued events) is done in half the time when it does not alternate
        with the leader's (rows, pushes that then leave over ~300 ms anyway)."""
        deadline = asyncio.get_running_loop().time() + limit
        while self.boards and self._task is not None and self._passed is not self.live.snapshot:
            self._pass_ended.clear()
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._pass_ended.wait()

    def then(self, listener: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """A `Live` listener that calls `listener` once the open streams were told of the change
        (`settled`, in a task of its own, so the rebuild does not wait); at once with none open."""

        async def after() -> None:
            await self.settled()
            await listener()

        async def changed() -> None:
            if not self.count:
                await listener()
                return
            task = asyncio.create_task(after(), name="displayd-after-streams")
            self._after.add(task)
            task.add_done_callback(self._after.discard)

        return changed

    def wake(self) -> None:
        """Look again now (a test that moved its clock or shortened the heartbeat)."""
        self._wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._last_beat = loop.time()
        while True:
            self._wake.clear()
            try:
                passing = self._pass()
                while True:  # a pass yields now and then: what it queued is written meanwhile, polls answered
                    try:
                        next(passing)
                    except StopIteration as done:
                        wake_at = done.value
                        break
                    await asyncio.sleep(0)
                self._passed = self._snapshot
                self._pass_ended.set()
            except Exception:  # the streams go on; the next wake tries again
                log.exception("the stream hub's pass failed")
                wake_at = None
            self._wake_at = wake_at
            delay = MAX_SLEEP
            if wake_at is not None:
                delay = min(delay, (wake_at - self.clock()).total_seconds() + TIMER_SLACK)
            delay = min(delay, self._last_beat + self.heartbeat - loop.time())
            if delay > 0 and not self._wake.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
            if loop.time() >= self._last_beat + self.heartbeat:
                self._last_beat = loop.time()
                self._beat()

    def sync(self) -> datetime | None:
        """Bring every open stream up to date now, in one go; the next instant one needs something."""
        passing = self._pass()
        while True:
            try:
                next(passing)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    def _pass(self) -> Generator[None, None, datetime | None]:
        """`sync`, pausing (a `yield`) after every PASS_BATCH boards it ran. The boards' events
        first; then when each board next needs something (the next slot's showing, planned
        for thousands of boards, waits until every stream has been written to)."""
        now = self.clock()
        snapshot = self.live.snapshot
        rebuilt = snapshot is not self._snapshot
        self._snapshot = snapshot
        earliest: datetime | None = None
        ran: list[tuple[str, BoardView]] = []
        for number, (board_id, streams) in enumerate(list(self.boards.items()), start=1):
            due_at = self._due.get(board_id, now)
            if not rebuilt and (due_at is None or due_at > now):  # nothing new for this board yet
                earliest = _earlier(earliest, due_at)
                continue
            if number % PASS_BATCH == 0:
                yield
            board = snapshot.boards.get(board_id)
            for stream in list(streams):
                if board is None or (rebuilt and snapshot.token_boards.get(stream.token_hash) != board_id):
                    self._end(stream)  # the board was deleted, or this token replaced: it is told nothing more
                elif stream.state == "open":
                    self._run(stream, snapshot, board, now)
            if board is not None:
                ran.append((board_id, board))
        for number, (board_id, board) in enumerate(ran, start=1):
            if number % PASS_BATCH == 0:
                yield
            if board_id in self.boards:
                due_at = self._due[board_id] = _next_instant(snapshot, board, now)
                earliest = _earlier(earliest, due_at)
        return earliest

    def _run(self, stream: Stream, snapshot: Snapshot, board: BoardView, now: datetime) -> None:
        board_id = stream.board_id
        try:
            dues, stream.ledger = stream.ledger.due(snapshot, board_id, now, lead=board.ahead_seconds)
        except Exception as exc:  # one board's fault never costs the others their events
            snapshot.report(None, board_id, exc)
            return
        if len(dues) > 1:  # in slot order: a Last-Event-ID then names the latest slot the board holds
            dues.sort(key=_slot_start)
        for due in dues:
            self._push(stream, event_bytes(board_id, due, now))
            if due.type == "show" and due.key is not None:
                self.recorder.sent(due.key, due.revision, now)
        self._flush(stream)

    def _beat(self) -> None:
        for streams in list(self.boards.values()):
            for stream in list(streams):
                if stream.state == "open":
                    self._push(stream, KEEPALIVE)
                    self._flush(stream)

    # Writing

    def _push(self, stream: Stream, data: bytes) -> None:
        """Queue `data` on the stream; `_flush` writes it."""
        stream.pending.append(data)
        stream.pending_bytes += len(data)
        if stream.pending_bytes > MAX_PENDING:
            self._drop(stream, f"over {MAX_PENDING} bytes wait to be written")

    def _flush(self, stream: Stream) -> None:
        """Write what is queued now, without a task, when the connection takes it at once (its
        transport is not paused: nearly always); otherwise (or while a write waits) a writer
        task finishes it. A pass over 5,000 streams is a third quicker without a task per write."""
        if stream.writer is not None or not stream.pending or stream.state not in ("open", "closing"):
            return
        body = b"".join(stream.pending)
        stream.pending.clear()
        stream.pending_bytes = 0
        sending = stream.send({"type": "http.response.body", "body": body, "more_body": True})
        if not isinstance(sending, Coroutine):  # (an ASGI server's `send` is a coroutine function)
            stream.writer = asyncio.create_task(self._write(stream, sending))
            return
        try:
            waits_for = sending.send(None)
        except StopIteration:
            return
        except Exception as exc:  # the connection is broken: the board reconnects
            self._drop(stream, f"a write failed: {exc!r}")
            return
        stream.writer = asyncio.create_task(self._write(stream, _Started(sending, waits_for)))

    async def _write(self, stream: Stream, started: Awaitable[None] | None = None) -> None:
        """Finish a write `_flush` started, then write what is queued (and, once the stream is
        closing, its last chunk); drop the stream when a write waits `write_timeout` seconds."""
        try:
            if started is not None:
                async with asyncio.timeout(self.write_timeout):
                    await started
            while True:
                if stream.pending:
                    body = b"".join(stream.pending)
                    stream.pending.clear()
                    stream.pending_bytes = 0
                    async with asyncio.timeout(self.write_timeout):
                        await stream.send({"type": "http.response.body", "body": body, "more_body": True})
                elif stream.state == "closing":
                    async with asyncio.timeout(self.write_timeout):
                        await stream.send({"type": "http.response.body", "body": b"", "more_body": False})
                    stream.state = "ended"
                    return
                else:
                    return
        except TimeoutError:
            self._drop(stream, f"a write waited {self.write_timeout:g} s")
        except Exception as exc:  # the connection is broken: the board reconnects
            self._drop(stream, f"a write failed: {exc!r}")
        finally:
            stream.writer = None

    def _end(self, stream: Stream) -> None:
        """End the stream cleanly: what is queued, then its last chunk (its connection's
        `receive` then answers that the response is complete)."""
        if stream.state not in ("starting", "open"):
            return
        starting = stream.state == "starting"
        stream.state = "closing"
        self._unregister(stream)
        if stream.writer is None and not starting:  # (a stream starting is ended by `begin`)
            stream.writer = asyncio.create_task(self._write(stream))

    def _drop(self, stream: Stream, why: str) -> None:
        """Close a stream whose board does not read: its connection's task is cancelled (the
        response cannot be ended: its last chunk would wait behind what the board does not read)."""
        if stream.state in ("ended", "dropped"):
            return
        stream.state = "dropped"
        self.dropped += 1
        self._unregister(stream)
        stream.pending.clear()
        current = asyncio.current_task()
        if stream.writer is not None and stream.writer is not current:
            stream.writer.cancel()
        if stream.task is not None and stream.task is not current:
            stream.task.cancel()
        log.warning("event stream of %s dropped: %s", stream.board_id, why,
                    extra={"event": "stream_dropped", "board_id": stream.board_id, "reason": why})

    def _unregister(self, stream: Stream) -> None:
        streams = self.boards.get(stream.board_id)
        if streams is None or stream not in streams:
            return
        streams.remove(stream)
        self.count -= 1
        self._grown_from = min(self._grown_from, self.count)  # streams reopening after a drop are new objects too
        if not streams:
            del self.boards[stream.board_id]
            self._due.pop(stream.board_id, None)

    async def close(self, grace: float = CLOSE_GRACE) -> None:
        """End every stream (shutdown): each gets its last chunk within `grace` seconds or is
        dropped; then the task stops. New streams are refused from now on."""
        self._closing = True
        closing = [stream for streams in list(self.boards.values()) for stream in list(streams)]
        for stream in closing:
            self._end(stream)
        writers = {stream.writer for stream in closing if stream.writer is not None}
        if writers:
            await asyncio.wait(writers, timeout=grace)
        for stream in closing:
            if stream.state == "closing":
                self._drop(stream, "it did not take its last chunk while displayd stopped")
        for task in [*self._after, *([self._task] if self._task is not None else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None


class _Started:
    """The rest of a coroutine already run up to its first wait (`StreamHub._flush`), to be
    awaited by a task: the task waits for what it was waiting for, then goes on with it."""

    __slots__ = ("coroutine", "first")

    def __init__(self, coroutine: Coroutine[Any, Any, None], first: Any) -> None:
        self.coroutine, self.first = coroutine, first

    def __await__(self) -> Generator[Any, Any, None]:
        coroutine, waiting = self.coroutine, self.first
        while True:
            try:
                try:
                    sent = yield waiting
                except GeneratorExit:
                    coroutine.close()
                    raise
                except BaseException as exc:  # a cancellation (the timeout), passed on to the coroutine
                    waiting = coroutine.throw(exc)
                else:
                    waiting = coroutine.send(sent)
            except StopIteration:
                return


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    return a if b is None or a <= b else b


def _slot_start(due: Due) -> datetime:
    if due.showing is not None and due.showing.assignment is not None:
        return due.showing.assignment.starts_at
    return due.slot.starts_at if due.slot is not None else datetime.max.replace(tzinfo=UTC)  # a slotless blank last


def _next_instant(snapshot: Snapshot, board: BoardView, now: datetime) -> datetime | None:
    """When the board's streams next need something (None: only a change will): the next slot
    comes within its lead, or, without a lead, what shows now ends. With a lead, that end
    matters only when nothing follows (a blank then): what follows was sent ahead."""
    board_id, lead = board.spec.id, board.ahead_seconds
    current = snapshot.showing(board_id, now)
    if not lead:
        return current.until
    ahead = snapshot.showing_ahead(board_id, now + timedelta(seconds=lead)).until
    at = None if ahead is None else ahead - timedelta(seconds=lead)
    if current.until is not None and snapshot.showing_ahead(board_id, current.until).assignment is None:
        at = _earlier(at, current.until)
    return at


def _resumed(snapshot: Snapshot, board: BoardView, last_event_id: str, now: datetime) -> Ledger:
    """The ledger of a board that reconnects having last had the event `last_event_id`: the
    slot it names is held at that revision (what it shows is not known, so the next pass sends
    it as planned now, as the next revision). Anything else (a slotless blank, another board's
    id, a slot over): a new stream's ledger."""
    board_id = board.spec.id
    fresh = Ledger(blank=False)
    parts = last_event_id.strip().split(":")
    if len(parts) != 4 or parts[0] != board_id or \
            not all(p.isascii() and p.isdigit() and len(p) <= 19 for p in parts[1:]):
        return fresh
    campaign_id, index, revision = int(parts[1]), int(parts[2]), int(parts[3])
    if revision > MAX_REVISION:
        return fresh
    sent: Sent | None = None
    for showing in (snapshot.showing(board_id, now),
                    snapshot.showing_ahead(board_id, now + timedelta(seconds=board.ahead_seconds))):
        assignment = showing.assignment
        if assignment is not None and (assignment.campaign_id, assignment.slot_index) == (campaign_id, index):
            assert showing.content_hash is not None
            sent = Sent(assignment.starts_at, assignment.ends_at, showing.content_hash, revision, shown=None)
            break
    else:  # not planned now (a pause, a retirement, the stop): taken back, if it has not ended
        campaign = next((c.current for c in snapshot.campaigns if c.current.id == campaign_id), None)
        if campaign is None:
            return fresh
        try:
            starts_at, ends_at = slot_bounds(campaign, index)
        except ValueError:
            return fresh
        if ends_at <= now:
            return fresh
        sent = Sent(starts_at, ends_at, "", revision, shown=None)
    return Ledger({(board_id, campaign_id, index): sent}, blank=False)


def _error(status: int, error: str, detail: str, *extra: tuple[bytes, bytes]) -> Answer:
    headers = [(b"content-type", JSON_TYPE), *extra]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    return Answer(status, headers, json.dumps({"error": error, "detail": detail}).encode())


def authorise(runtime: Runtime, board_id: str, token: str | None, client: str) -> str | Answer:
    """The board token's hash when it is `board_id`'s own, else the error to answer: as the
    poll path does (`displayd.live.poll.answer`), for board tokens only."""
    if token is None:
        return _error(401, "unauthorized", "a board token is required (Authorization: Bearer bt_… or ?token=bt_…)")
    if not token.startswith(BOARD_TOKEN_PREFIX):
        return _error(401, "unauthorized", "an event stream is opened with its board's token (bt_…)")
    token_hash = hash_secret(token)
    own = runtime.live.snapshot.token_boards.get(token_hash)
    if own is None:
        runtime.guard.failed(Kind.BOARD_TOKEN, client)  # counted and logged, never held
        return _error(401, "unauthorized", "the board token is not valid")
    if own != board_id:  # another board's token learns nothing, not even that the board exists
        return _error(404, "not_found", f"board {board_id} does not exist")
    return token_hash


async def serve(runtime: Runtime, scope: Scope, receive: Receive, send: Send, board_id: str) -> None:
    """One stream, from its authorisation to its board going away."""
    authorization = last_event_id = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value.decode("latin-1")
        elif name == b"last-event-id":
            last_event_id = value.decode("latin-1")
    token = bearer_token(authorization)
    query: bytes = scope["query_string"]
    if token is None and query:  # browsers' EventSource cannot set headers
        token = dict(parse_qsl(query.decode("latin-1"))).get("token") or None
    client = scope.get("client")
    result = authorise(runtime, board_id, token, client[0] if client else "unknown")
    hub = runtime.streams
    stream = None
    if isinstance(result, str):
        stream = hub.open(board_id, result, send)
        if stream is None:
            result = _error(503, "unavailable", "displayd is stopping") if hub.stopping else \
                _error(429, "too_many_streams", f"board {board_id} has {hub.per_board} event streams open "
                       "already (stream_connections_per_board)", (b"retry-after", b"5"))
    if stream is None:
        assert isinstance(result, Answer)
        log.info("event stream refused with %d", result.status,
                 extra={"event": "stream_refused", "board_id": board_id, "status": result.status})
        await send({"type": "http.response.start", "status": result.status,
                    "headers": [*result.headers, (b"content-length", b"%d" % len(result.body))]})
        await send({"type": "http.response.body", "body": result.body})
        return
    try:
        await send({"type": "http.response.start", "status": 200, "headers": START_HEADERS})
        hub.begin(stream, last_event_id)
        while stream.state != "dropped" and (await receive())["type"] != "http.disconnect":
            pass  # the request (a GET has no body); then, when the board goes or the stream ends
    except asyncio.CancelledError:
        if stream.state != "dropped":
            raise
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()  # dropped by the hub: return, and the server closes the connection
    finally:
        hub.forget(stream)


class StreamPath:
    """ASGI middleware answering `GET /api/v1/boards/{id}/events` before FastAPI sees it."""

    def __init__(self, app: ASGIApp, owner: Starlette) -> None:
        self.app = app
        self.owner = owner  # the displayd app whose runtime serves (its lifespan builds it)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            if path.startswith(PREFIX) and path.endswith(SUFFIX):
                board_id = path[len(PREFIX):-len(SUFFIX)]
                if board_id and "/" not in board_id:
                    await serve(runtimes.runtime_of(self.owner), scope, receive, send, board_id)
                    return
        await self.app(scope, receive, send)


async def close_streams(app: Starlette) -> None:
    """End the app's open streams (before the server waits for its connections to close: it
    would wait for them for ever). Nothing to do before the lifespan has started."""
    try:
        runtime = runtimes.runtime_of(app)
    except RuntimeError:
        return
    await runtime.streams.close()
