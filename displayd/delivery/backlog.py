"""What a leader could not write while the database was unreachable, kept in memory and
written, in order, once it is back.

    if unreachable(exc): backlog.add_rows(claim)        # the boundary goes on from memory
    await backlog.write(sessionmaker, reports=...)        # raises if it is still unreachable

While PostgreSQL is unreachable, the plan is still a pure function of time: the leader goes
on pushing from memory, and what it would have written — the slots' rows, the content each
board was given, the pushes' outcomes, the boards' health, the reports to check for
integrity incidents, the last boundary handled — waits here. `write` puts it in the
database in the order it happened, each part in chunks of `store.CHUNK`, one transaction a
chunk, yielding between them:

1. rows (`store.insert_rows`: a row anybody wrote meanwhile is kept, nothing is doubled —
   but a `missed` row is replaced: another replica that took over these boards' shards and
   back-filled them before this backlog was written guessed wrong; the slot was given),
   then the content issued (`store.note_issued`);
2. outcomes (`store.record_results`), then health (`store.save_health`), then the reports;
3. the boundary handled (`store.set_handled_until`) last, so that a crash half way leaves the
   slots still waiting inside the window a take-over back-fills as `missed`.

A chunk is removed only once its transaction has committed: if the database goes away again
half way, the rest waits for the next try.

Bounded: at most `limit` rows, outcomes and reports wait at once (health, one entry per
board, and the issued content are small and bounded by the boards). When it is full, the
newest are dropped, not the oldest — what is already waiting is kept whole, rows with their
outcomes — and counted in `dropped` (`displayd_rows_dropped_total`); the first drop of an
outage logs one warning, event `backlog_full`. Measured (tracemalloc, CPython, every content
hash distinct: the worst case), a waiting slot — its row and its outcome, two entries — takes
about 680 bytes. The default, 2,000,000 entries, is ~1 M slots in ~0.7 GB: 20 minutes of
4,000 push boards at a 5 s dwell, or an hour of 1,400. A whole hour of 4,000 boards at 5 s
needs ~5.8 M (~2 GB): a site with that memory to spare sets `outage_backlog_rows` so.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Iterable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

import asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from displayd.logbook import store
from displayd.logbook.store import Key, NewRow, Outcome

__all__ = ["DEFAULT_LIMIT", "Backlog", "Report", "unreachable"]

log = logging.getLogger("displayd.delivery")

DEFAULT_LIMIT = 2_000_000

# SQLSTATE classes that say the connection, not the statement, failed: 08 connection
# exception; 57P01-57P03 the server shutting down, crashed, or not accepting connections yet.
_CONNECTION_STATES = ("08", "57P01", "57P02", "57P03")


def unreachable(exc: BaseException) -> bool:
    """Whether `exc` says the database could not be reached (the connection failed or was
    lost), rather than that a statement was refused:

        unreachable(ConnectionRefusedError(111, "Connect call failed"))     # True
        unreachable(OperationalError(..., sqlite3.OperationalError("database is locked")))  # False
    """
    if isinstance(exc, (OSError, TimeoutError, asyncio.TimeoutError)):  # ConnectionError is an OSError
        return True
    if isinstance(exc, (asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.exceptions.CannotConnectNowError,
                        asyncpg.exceptions.AdminShutdownError, asyncpg.exceptions.CrashShutdownError,
                        asyncpg.exceptions.PostgresConnectionError)):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        state = getattr(exc.orig, "sqlstate", None)
        if isinstance(state, str) and state.startswith(_CONNECTION_STATES):
            return True
        cause = exc.orig.__cause__ if exc.orig is not None else None
        return cause is not None and cause is not exc and unreachable(cause)
    return False


@dataclass(frozen=True, slots=True)
class Report:
    """A board answering a push with content it was not sent: checked for an integrity incident."""

    board_id: str
    slot_key: str
    at: datetime
    reported_hash: str
    sent_hash: str | None


WriteReports = Callable[[AsyncSession, list[Report]], Awaitable[None]]
InTime = Callable[[], AbstractAsyncContextManager[None]]


class Backlog:
    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self.rows: deque[NewRow] = deque()
        self.issued: dict[tuple[str, str], datetime] = {}  # (board, content hash) → first given
        self.outcomes: dict[Key, Outcome] = {}
        self.health: dict[str, dict[str, Any]] = {}  # board → its latest health row
        self.reports: deque[Report] = deque()
        self.handled_until: tuple[datetime, str] | None = None
        self.dropped = 0        # since the process started
        self.written = 0        # rows written from here since the process started
        self._full = False      # `backlog_full` logged in this outage
        self._writing = asyncio.Lock()

    @property
    def waiting(self) -> int:
        """Rows, outcomes and reports waiting to be written (`displayd_rows_waiting`)."""
        return len(self.rows) + len(self.outcomes) + len(self.reports)

    @property
    def empty(self) -> bool:
        return not (self.rows or self.issued or self.outcomes or self.health or self.reports
                    or self.handled_until)

    def _room(self, wanted: int) -> int:
        room = max(0, self.limit - self.waiting)
        if wanted > room:
            self.dropped += wanted - room
            if not self._full:
                self._full = True
                log.warning("%d rotation-log writes wait for the database, the most kept (outage_backlog_rows): "
                            "newer ones are dropped and counted in displayd_rows_dropped_total", self.limit,
                            extra={"event": "backlog_full", "limit": self.limit})
        return min(wanted, room)

    def add_rows(self, rows: Collection[NewRow]) -> list[NewRow]:
        """Keep `rows` (as many as there is room for); those kept."""
        kept = list(islice(rows, self._room(len(rows))))
        self.rows.extend(kept)
        return kept

    def add_issued(self, pairs: Iterable[tuple[str, str]], at: datetime) -> None:
        for pair in pairs:
            self.issued.setdefault(pair, at)

    def add_outcomes(self, outcomes: Iterable[Outcome]) -> None:
        """A later outcome of a slot waiting replaces the earlier (as `record_results` would
        over it: the highest revision, the earliest delivery)."""
        new: list[Outcome] = []
        for outcome in outcomes:
            earlier = self.outcomes.get(outcome.key)
            if earlier is None:
                new.append(outcome)
                continue
            self.outcomes[outcome.key] = Outcome(
                outcome.key, outcome.push_status, outcome.attempts, outcome.http_status, outcome.latency_ms,
                outcome.error, earlier.delivered_at or outcome.delivered_at,
                max(earlier.revision, outcome.revision))
        for outcome in new[:self._room(len(new))]:
            self.outcomes[outcome.key] = outcome

    def add_health(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.health.pop(row["board_id"], None)  # re-inserted last: written in the order they happened
            self.health[row["board_id"]] = row

    def add_reports(self, reports: Collection[Report]) -> None:
        self.reports.extend(islice(reports, self._room(len(reports))))

    def handled(self, at: datetime, leader: str) -> None:
        self.handled_until = (at, leader)

    async def write(self, sessionmaker: async_sessionmaker[AsyncSession], *, reports: WriteReports,
                    in_time: InTime = nullcontext) -> int:
        """Write everything waiting, in order (see the module's docstring); the rows written.
        Raises what the database raised, leaving what was not written waiting. One write at a
        time; each chunk's transaction within `in_time()` (a timeout)."""
        async with self._writing:
            rows = 0
            while self.rows:
                chunk = list(islice(self.rows, store.CHUNK))
                # One row a key per statement (ON CONFLICT DO UPDATE may not touch a row twice);
                # a slot kept twice, which the ledgers should never allow, is written once.
                unique = list({row.key: row for row in reversed(chunk)}.values())
                async with in_time(), sessionmaker() as session, session.begin():
                    await store.insert_rows(session, unique, over_missed=True)
                for _ in chunk:
                    self.rows.popleft()
                rows += len(chunk)
                self.written += len(chunk)
                await asyncio.sleep(0)
            await self._write_dict(sessionmaker, self.issued, lambda session, items: store.note_issued(
                session, [pair for pair, _ in items], min(at for _, at in items)), in_time)
            await self._write_dict(sessionmaker, self.outcomes, lambda session, items: store.record_results(
                session, [outcome for _, outcome in items]), in_time)
            await self._write_dict(sessionmaker, self.health, lambda session, items: store.save_health(
                session, [row for _, row in items]), in_time)
            while self.reports:
                batch = list(islice(self.reports, store.CHUNK))
                async with in_time(), sessionmaker() as session, session.begin():
                    await reports(session, batch)
                for _ in batch:
                    self.reports.popleft()
                await asyncio.sleep(0)
            handled = self.handled_until
            if handled is not None:
                async with in_time(), sessionmaker() as session, session.begin():
                    await store.set_handled_until(session, *handled)
                if self.handled_until is handled:
                    self.handled_until = None
            if self.empty:
                self._full = False  # the next outage logs its own `backlog_full`
            return rows

    @staticmethod
    async def _write_dict(sessionmaker: async_sessionmaker[AsyncSession], waiting: dict[Any, Any],
                          write: Callable[[AsyncSession, list[tuple[Any, Any]]], Awaitable[None]],
                          in_time: InTime) -> None:
        """Write a dict's entries in chunks; an entry replaced meanwhile stays for the next chunk."""
        while waiting:
            chunk = list(islice(waiting.items(), store.CHUNK))
            async with in_time(), sessionmaker() as session, session.begin():
                await write(session, chunk)
            for key, value in chunk:
                if waiting.get(key) is value:
                    del waiting[key]
            await asyncio.sleep(0)
