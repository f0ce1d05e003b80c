"""Shards (`displayd.delivery.shards`, `displayd.delivery.leader`): the stable hash, the fair-share
rule, and replicas sharing the shards for real on a scratch PostgreSQL database — every shard
led by exactly one, fair shares, rebalancing when a replica joins, leaves or dies, and the
shards held through a database outage (a proxy the test cuts, never the server itself).
On SQLite one process leads every shard."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from displayd.config import Settings
from displayd.db import migrate
from displayd.db.session import asyncpg_dsn
from displayd.delivery import leader as leader_module
from displayd.delivery.leader import LOCK_CLASS, FileLeadership, PostgresLeadership
from displayd.delivery.shards import ALL_SHARDS, SHARDS, Decision, decide, fair_share, offset_of, shard_of
from tests.conftest import fresh_database_url
from tests.netcut import NetCut

# Pure rules


def test_a_board_s_shard_is_a_stable_crc32_of_its_id() -> None:
    assert shard_of("bang-1") == 15 and shard_of("bang-2") == 53  # the same on every machine, every run
    counts = Counter(shard_of(f"bang-{n}") for n in range(10_000))
    assert set(counts) == set(range(SHARDS))
    assert min(counts.values()) > 100 and max(counts.values()) < 220  # about 156 each


def test_a_replica_alone_tries_every_free_shard_from_its_own_offset() -> None:
    start = offset_of("a")
    decision = decide("a", live=1, held=set(), free=range(SHARDS))
    assert decision.share == SHARDS and decision.release == ()
    assert decision.acquire[0] == start and len(decision.acquire) == SHARDS
    assert decision.acquire[SHARDS - start] == 0  # it wraps around


def test_fair_shares_cover_every_shard() -> None:
    assert [fair_share(n) for n in (1, 2, 3, 4, 64, 65)] == [64, 32, 22, 16, 1, 1]
    for live in range(1, 10):
        assert fair_share(live) * live >= SHARDS


def test_a_replica_over_its_share_gives_back_its_highest_shards() -> None:
    decision = decide("a", live=2, held=set(range(40)), free=range(40, 64))
    assert decision == Decision(32, release=tuple(range(39, 31, -1)))
    assert decide("a", live=2, held=set(range(32)), free=range(32, 64)) == Decision(32)


def test_a_replica_below_its_share_tries_only_free_shards_it_does_not_hold() -> None:
    decision = decide("b", live=2, held={1, 2}, free={2, 3, 40})
    assert decision.share == 32 and set(decision.acquire) == {3, 40} and decision.release == ()


# Real replicas on PostgreSQL


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[str]:
    """A migrated scratch PostgreSQL database of the test's own: its advisory locks are its own."""
    for url in fresh_database_url("postgresql", tmp_path):
        migrate.upgrade(Settings(database_url=url))
        yield url


@pytest.fixture
def quick_stale(monkeypatch: pytest.MonkeyPatch) -> float:
    """A replica counts as gone two seconds after its last heartbeat (8 s in production)."""
    monkeypatch.setattr(leader_module, "REPLICA_STALE_SECONDS", 2.0)
    monkeypatch.setattr(leader_module, "REJOIN_GRACE_SECONDS", 2.0)
    return 2.0


@pytest.fixture
async def replicas(pg: str) -> AsyncIterator[list[PostgresLeadership]]:
    made = [PostgresLeadership(pg, name=name) for name in ("replica-a", "replica-b", "replica-c")]
    yield made
    for replica in made:
        await replica.release()


async def rounds(replicas: list[PostgresLeadership], count: int = 3) -> None:
    for _ in range(count):
        for replica in replicas:
            await replica.check()


async def locks_held(url: str) -> Counter[int]:
    """Each shard's advisory locks, as the server sees them, from a connection of the test's own."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await connection.fetch("SELECT objid::int FROM pg_locks WHERE locktype = 'advisory' AND granted "
                                      "AND classid = $1::int::oid AND objsubid = 2", LOCK_CLASS)
    finally:
        await connection.close()
    return Counter(row[0] for row in rows)


def assert_partition(replicas: list[PostgresLeadership], sizes: set[int]) -> None:
    held = [replica.held for replica in replicas]
    assert sum(len(h) for h in held) == SHARDS and frozenset().union(*held) == ALL_SHARDS, held
    assert {len(h) for h in held} <= sizes, [len(h) for h in held]



@pytest.mark.db
async def test_three_replicas_share_every_shard_once_and_fairly(pg: str, replicas: list[PostgresLeadership]) -> None:
    await rounds(replicas)
    assert_partition(replicas, {20, 21, 22})
    assert await locks_held(pg) == Counter(dict.fromkeys(range(SHARDS), 1))  # each one lock, once
    assert all(replica.live == 3 and not replica.offline for replica in replicas)
    # Checking again (also several at once on one replica) changes nothing.
    before = [replica.held for replica in replicas]
    changes = await asyncio.gather(*(replicas[0].check() for _ in range(4)), replicas[1].check())
    assert all(not change.gained and not change.lost for change in changes)
    assert [replica.held for replica in replicas] == before


@pytest.mark.db
async def test_a_replica_that_joins_gets_the_highest_shards_of_the_one_alone(
        replicas: list[PostgresLeadership]) -> None:
    first, second = replicas[:2]
    change = await first.check()
    assert change.gained == ALL_SHARDS and change.unled_for is None
    assert await second.check() == leader_module.Change()  # none is free, and the first is live
    given_back = await first.check()  # it counts two live replicas now
    assert given_back.lost == frozenset(range(32, 64)) and first.held == frozenset(range(32))
    taken = await second.check()
    assert taken.gained == frozenset(range(32, 64))
    assert taken.unled_for is None  # handed over (the first no longer lists them), not left by a dead replica
    assert_partition([first, second], {32})


@pytest.mark.db
async def test_a_replica_that_stops_cleanly_hands_its_shards_over_at_the_next_check(
        replicas: list[PostgresLeadership]) -> None:
    first, second = replicas[:2]
    await rounds([first, second])
    await second.release()
    change = await first.check()  # its row is gone: one live replica, every shard free
    assert change.gained == frozenset(range(32, 64)) and first.held == ALL_SHARDS
    assert change.unled_for is None


@pytest.mark.db
async def test_a_dead_replica_s_shards_move_at_the_next_check(
        pg: str, replicas: list[PostgresLeadership], quick_stale: float) -> None:
    """A replica killed (its connection closed, its session ended by the server) is no longer
    counted live at once, heartbeat fresh or not: the others take its shards at their next
    check (bench/replicas.py: waiting for the heartbeat to go stale cost two slots' pushes)."""
    await rounds(replicas)
    dead = replicas[2]
    lost = dead.held
    assert dead.connection is not None
    dead.connection.terminate()  # as by kill -9: no goodbye, the server frees its locks
    await asyncio.sleep(0.2)
    living = replicas[:2]
    changes = [await replica.check() for replica in living] + [await replica.check() for replica in living]
    assert frozenset().union(*(c.gained for c in changes)) == lost
    assert all(c.unled_for is not None and 0 <= c.unled_for < quick_stale for c in changes if c.gained)
    assert_partition(living, {32})
    assert await locks_held(pg) == Counter(dict.fromkeys(range(SHARDS), 1))
    dead.connection = None  # it is gone; the fixture's release has nothing to do


# Held through an outage


@pytest.fixture
async def proxy() -> AsyncIterator[NetCut]:
    async with NetCut() as proxy:
        yield proxy


def database_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


@pytest.mark.db
@pytest.mark.parametrize("server_sees", [True, False], ids=["closed", "network-cut"])
async def test_replicas_keep_their_shards_through_an_outage_and_re_lock_them(
        pg: str, proxy: NetCut, quick_stale: float, server_sees: bool,
        caplog: pytest.LogCaptureFixture) -> None:
    """With the database gone, both replicas keep leading what they led; once it is back each
    re-locks its own (ending its old session first, if the server still has it) and nothing
    moves. `network-cut`: the server kept the old sessions, and their locks."""
    caplog.set_level(logging.INFO, logger="displayd.leader")
    replicas = [PostgresLeadership(proxy.url(database_of(pg)), name=name) for name in ("replica-a", "replica-b")]
    try:
        await rounds(replicas)
        held = [replica.held for replica in replicas]
        assert_partition(replicas, {32})
        await proxy.cut(server_sees=server_sees)
        for _ in range(3):
            for replica in replicas:
                assert await replica.check() == leader_module.Change()
        assert all(replica.offline for replica in replicas)
        assert [replica.held for replica in replicas] == held
        await asyncio.sleep(quick_stale + 0.1)  # longer than a heartbeat stays fresh
        await proxy.restore()
        for _ in range(3):
            for replica in replicas:
                change = await replica.check()
                assert not change.gained and not change.lost
        assert not any(replica.offline for replica in replicas)
        assert [replica.held for replica in replicas] == held
        assert await locks_held(pg) == Counter(dict.fromkeys(range(SHARDS), 1))
        events = [getattr(record, "event", None) for record in caplog.records]
        assert events.count("leadership_offline") == 2 and events.count("leadership_online") == 2
        assert events.count("database_offline") == 2 and events.count("database_online") == 2
        assert events.count("leadership_old_session") == (0 if server_sees else 2)
    finally:
        for replica in replicas:
            await replica.release()


@pytest.mark.db
async def test_a_replica_cut_off_alone_loses_its_shards_to_the_others(
        pg: str, proxy: NetCut, quick_stale: float) -> None:
    """Only its own connection is gone: the others count it dead and take its shards; when it
    is back, it finds them taken and lets them go."""
    cut_off = PostgresLeadership(proxy.url(database_of(pg)), name="replica-a")
    other = PostgresLeadership(pg, name="replica-b")
    try:
        await rounds([cut_off, other])
        theirs = cut_off.held
        await proxy.cut()
        await cut_off.check()
        assert cut_off.offline and cut_off.held == theirs
        await asyncio.sleep(quick_stale + 0.1)
        assert (await other.check()).gained == theirs
        await proxy.restore()
        change = await cut_off.check()
        assert change.lost == theirs and cut_off.held == frozenset() and not cut_off.offline
        assert await locks_held(pg) == Counter(dict.fromkeys(range(SHARDS), 1))
    finally:
        for replica in (cut_off, other):
            await replica.release()


# SQLite


async def test_on_sqlite_one_process_leads_every_shard(tmp_path: Path) -> None:
    path = tmp_path / "displayd.db.scheduler.lock"
    first, second = FileLeadership(path), FileLeadership(path)
    assert (await first.check()).gained == ALL_SHARDS and first.held == ALL_SHARDS
    assert await first.check() == leader_module.Change()
    assert (await second.check()).gained == frozenset() and second.held == frozenset()
    await first.release()
    assert (await second.check()).gained == ALL_SHARDS
    await second.release()
