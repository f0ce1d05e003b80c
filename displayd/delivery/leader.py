"""Which push shards this process leads (`displayd.delivery.shards`).

    leadership = leadership_for(settings)
    change = await leadership.check()         # every LEADERSHIP_CHECK_SECONDS
    change.gained, change.lost                # shards to take over / to drop
    leadership.held, leadership.offline       # what it leads now; leading without the database
    await leadership.release()                # on shutdown

PostgreSQL (`PostgresLeadership`): one dedicated connection (not from the pool) holds a
session advisory lock per shard led, `pg_try_advisory_lock(LOCK_CLASS, shard)`. At each check
it writes the replica's heartbeat in the `replica` table (the database's clock), counts the
live replicas, and takes or gives back shards by `shards.decide`. When a replica dies, even by
`kill -9`, the server sees its connection close and frees its locks; the others take them
once its heartbeat is stale. Another replica's shards are only taken while it is not live,
or after it gave them back.

Held while offline. When the lock connection fails and a new one cannot be made (the
database is unreachable), the replica keeps the shards it held and goes on pushing them from
memory (`offline` is true): nobody else can take a lock without the database either. At
each check it tries to reconnect; once back, it first ends its old session if the server
still has it (a connection cut by the network can outlive the outage on the server side, and
its locks with it), re-locks the shards it held, drops any another replica took meanwhile,
and for REJOIN_GRACE_SECONDS only keeps what it has: every replica comes back within a check
or two, and re-locks its own before anyone counts it gone and takes them. If a shard did
move, the `(board, campaign, slot)` row is still the claim: no slot is pushed twice.

SQLite (`FileLeadership`): an exclusive `flock` on a file beside the database, which the
kernel releases when the process dies; its holder leads every shard.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import asyncpg
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from displayd.config import Settings
from displayd.db.models import Replica
from displayd.db.session import asyncpg_dsn
from displayd.delivery.shards import (
    ALL_SHARDS,
    REPLICA_FORGOTTEN_SECONDS,
    REPLICA_STALE_SECONDS,
    decide,
)

log = logging.getLogger("displayd.leader")

# The first key of the two-int advisory locks, `pg_try_advisory_lock(LOCK_CLASS, shard)`:
# "dspd" in ASCII. (The one-bigint lock displayd used before shards is never taken now.)
LOCK_CLASS = int.from_bytes(b"dspd", "big")
QUERY_SECONDS = 2.0   # one statement on the lock connection
CONNECT_SECONDS = 3.0
REJOIN_GRACE_SECONDS = REPLICA_STALE_SECONDS  # after the database is back: keep what it had, take nothing else
# The server checks the lock connection's client this often once idle, so a connection cut by
# the network (not closed) is ended within a minute and its locks freed.
KEEPALIVES = {"tcp_keepalives_idle": "10", "tcp_keepalives_interval": "5", "tcp_keepalives_count": "3"}
CONNECTION_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError,
                     asyncpg.exceptions.InternalClientError)


def instance_name() -> str:
    """`host:pid:random`: unique per process start, readable on the dashboard and in the logs."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def shard_list(shards: frozenset[int] | set[int]) -> str:
    return ",".join(str(shard) for shard in sorted(shards))


def parse_shards(text: str) -> frozenset[int]:
    return frozenset(int(part) for part in text.split(",") if part.strip())


@dataclass(frozen=True, slots=True)
class Change:
    gained: frozenset[int] = frozenset()
    lost: frozenset[int] = frozenset()
    # How long the gained shards may have gone unled: the age of the heartbeat of the replica
    # that last listed them (None: nobody did, as at a site's start or after a hand-over).
    unled_for: float | None = None


class Leadership(Protocol):
    name: str
    held: frozenset[int]
    offline: bool
    live: int  # replicas this one counts live, itself included

    async def check(self) -> Change: ...
    async def give_up(self, shards: frozenset[int]) -> None: ...
    async def release(self) -> None: ...


class PostgresLeadership:
    """The lock connection runs one statement at a time: `check`, `give_up` and `release` wait
    for one another (two queries at once on one asyncpg connection fail, and a failure reads
    as a lost connection)."""

    def __init__(self, database_url: str, name: str | None = None) -> None:
        self.dsn = asyncpg_dsn(database_url)
        self.name = name or instance_name()
        # Unique per replica (a name may be longer than the 63 characters PostgreSQL keeps).
        self.application_name = f"displayd-shards {hashlib.sha256(self.name.encode()).hexdigest()[:16]}"
        self.connection: asyncpg.Connection | None = None
        self.held: frozenset[int] = frozenset()
        self.offline = False
        self.live = 0
        self._back_at: float | None = None  # monotonic time it re-locked its shards after losing its connection
        self._unreachable = False  # logged once per outage
        self._one_at_a_time = asyncio.Lock()

    async def check(self) -> Change:
        async with self._one_at_a_time:
            before = self.held
            unled_for: float | None = None
            try:
                unled_for = await asyncio.wait_for(self._check(), 4 * QUERY_SECONDS)
            except CONNECTION_ERRORS as exc:
                await self._lost(exc)
            gained, lost = self.held - before, before - self.held
            return Change(gained, lost, unled_for if gained else None)

    async def _check(self) -> float | None:
        if self.connection is None or self.connection.is_closed():
            await self._connect()
        connection = self.connection
        assert connection is not None
        rows = await connection.fetch(
            """WITH beat AS (
                   INSERT INTO replica (name, started_at, heartbeat_at, shards) VALUES ($1, now(), now(), $2)
                   ON CONFLICT (name) DO UPDATE SET heartbeat_at = now(), shards = excluded.shards),
               gone AS (DELETE FROM replica WHERE name <> $1 AND heartbeat_at < now() - make_interval(secs => $3))
               SELECT name, shards, extract(epoch FROM now() - heartbeat_at)::float8 AS age,
                      EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'displayd-shards ' ||
                              left(encode(sha256(convert_to(name, 'UTF8')), 'hex'), 16)) AS connected
               FROM replica""",
            self.name, shard_list(self.held), REPLICA_FORGOTTEN_SECONDS, timeout=QUERY_SECONDS)
        others = [row for row in rows if row["name"] != self.name]
        # Live: a fresh heartbeat, and its lock connection still open. A replica that dies (even
        # `kill -9`) closes that connection, and the server ends its session at once: the others
        # take its shards at their next check, not once its heartbeat is stale (a network cut,
        # which leaves the session on the server, still waits for the heartbeat).
        self.live = 1 + sum(1 for row in others if row["age"] < REPLICA_STALE_SECONDS and row["connected"])
        locked = {row[0] for row in await connection.fetch(
            """SELECT objid::int FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2
               AND classid = $1::int::oid
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())""",
            LOCK_CLASS, timeout=QUERY_SECONDS)}
        decision = decide(self.name, live=self.live, held=self.held, free=ALL_SHARDS - locked)
        before = self.held
        for shard in decision.release:
            await connection.fetchval("SELECT pg_advisory_unlock($1, $2)", LOCK_CLASS, shard, timeout=QUERY_SECONDS)
            self.held -= {shard}
        if decision.release:
            log.info("gave back %d shards: %d replicas share them", len(decision.release), self.live,
                     extra={"event": "shards", "instance": self.name, "released": sorted(decision.release)})
        settling = self._back_at is not None and time.monotonic() - self._back_at < REJOIN_GRACE_SECONDS
        for shard in () if settling else decision.acquire:
            if len(self.held) >= decision.share:
                break
            if await connection.fetchval("SELECT pg_try_advisory_lock($1, $2)", LOCK_CLASS, shard,
                                         timeout=QUERY_SECONDS):
                self.held |= {shard}
        if self.held != before:
            await connection.execute("UPDATE replica SET shards = $2 WHERE name = $1", self.name,
                                     shard_list(self.held), timeout=QUERY_SECONDS)
        gained = self.held - before
        if gained:
            log.info("took %d shards: %d replicas share them", len(gained), self.live,
                     extra={"event": "shards", "instance": self.name, "acquired": sorted(gained)})
        ages = [row["age"] for row in others if gained & parse_shards(row["shards"])]
        return max(ages) if ages else None

    async def _connect(self) -> None:
        """A new lock connection; after an outage, the shards held re-locked (those another
        replica took are dropped). Raises when the database does not answer."""
        self.connection = await asyncpg.connect(
            self.dsn, timeout=CONNECT_SECONDS,
            server_settings={"application_name": self.application_name, **KEEPALIVES})
        if self._unreachable:
            self._unreachable = False
            log.info("the database answers again", extra={"event": "database_online", "instance": self.name})
        if not self.held:
            self.offline = False
            return
        self._back_at = time.monotonic()
        await self._end_old_session(self.connection)
        kept = frozenset([shard for shard in sorted(self.held) if await self.connection.fetchval(
            "SELECT pg_try_advisory_lock($1, $2)", LOCK_CLASS, shard, timeout=QUERY_SECONDS)])
        dropped = self.held - kept
        self.held, self.offline = kept, False
        log.warning("leading with the database again: re-locked %d shards, %d taken by another replica",
                    len(kept), len(dropped),
                    extra={"event": "leadership_online", "instance": self.name, "dropped": sorted(dropped)})

    async def _end_old_session(self, connection: asyncpg.Connection) -> None:
        """End a session of this replica's that the server still has (cut by the network, not
        closed): it holds the locks to re-lock. PostgreSQL 14 and later wait for it to end."""
        wait = connection.get_server_version().major >= 14
        try:
            ended = await connection.fetchval(
                f"SELECT count(*) FROM (SELECT pg_terminate_backend(pid{', 2000' if wait else ''}) "
                "FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()) AS ended",
                self.application_name, timeout=QUERY_SECONDS + 1)
        except asyncpg.PostgresError as exc:  # not allowed, say: its locks go when the server notices
            log.warning("could not end this replica's old database session: %s", exc)
            return
        if ended and not wait:
            await asyncio.sleep(0.5)
        if ended:
            log.info("ended this replica's old database session, which still held its shard locks",
                     extra={"event": "leadership_old_session", "instance": self.name})

    async def _lost(self, exc: BaseException) -> None:
        await self._drop()
        if not self._unreachable:
            self._unreachable = True
            log.warning("the database does not answer the shard locks: %s", exc or type(exc).__name__,
                        extra={"event": "database_offline", "instance": self.name})
        if self.held and not self.offline:
            self.offline = True
            log.warning("leading %d shards without the database: pushing from memory until it is back",
                        len(self.held), extra={"event": "leadership_offline", "instance": self.name,
                                               "shards": sorted(self.held)})

    async def give_up(self, shards: frozenset[int]) -> None:
        """Let go of `shards` (a take-over of them failed): another replica may take them."""
        async with self._one_at_a_time:
            connection = self.connection
            mine = shards & self.held
            self.held -= mine
            if connection is None or connection.is_closed():
                return
            try:
                for shard in sorted(mine):
                    await connection.fetchval("SELECT pg_advisory_unlock($1, $2)", LOCK_CLASS, shard,
                                              timeout=QUERY_SECONDS)
                await connection.execute("UPDATE replica SET shards = $2 WHERE name = $1", self.name,
                                         shard_list(self.held), timeout=QUERY_SECONDS)
            except CONNECTION_ERRORS as exc:
                await self._lost(exc)

    async def release(self) -> None:
        """Stop leading: the locks go with the connection, and the replica's row with them."""
        async with self._one_at_a_time:
            connection = self.connection
            if connection is not None and not connection.is_closed():
                with contextlib.suppress(*CONNECTION_ERRORS):
                    await connection.execute("DELETE FROM replica WHERE name = $1", self.name,
                                             timeout=QUERY_SECONDS)
            self.held, self.offline = frozenset(), False
            await self._drop()

    async def _drop(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 2)
            if not connection.is_closed():
                connection.terminate()


class FileLeadership:
    """The one process holding the file lock leads every shard."""

    def __init__(self, path: Path, name: str | None = None) -> None:
        self.path = path
        self.name = name or instance_name()
        self.fd: int | None = None
        self.held: frozenset[int] = frozenset()
        self.offline = False
        self.live = 1

    async def check(self) -> Change:
        if self.fd is not None:
            return Change()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return Change()
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        self.held = ALL_SHARDS
        return Change(gained=ALL_SHARDS)

    async def give_up(self, shards: frozenset[int]) -> None:
        """All or nothing: one process leads every shard."""
        if shards:
            await self.release()

    async def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
        self.held = frozenset()


def leadership_for(settings: Settings) -> Leadership:
    if settings.is_sqlite:
        path = settings.sqlite_path or Path("var/displayd-memory.db")
        return FileLeadership(path.with_name(path.name + ".scheduler.lock"))
    return PostgresLeadership(settings.database_url)


@dataclass(frozen=True, slots=True)
class ReplicaView:
    name: str
    heartbeat_at: datetime
    shards: frozenset[int]


async def replicas(session: AsyncSession) -> list[ReplicaView]:
    """The replicas in the `replica` table (on PostgreSQL), by name: what the dashboard shows."""
    rows = await session.scalars(select(Replica).order_by(Replica.name))
    return [ReplicaView(row.name, row.heartbeat_at, parse_shards(row.shards)) for row in rows]
