"""Shards: how the replicas of a site share the push work.

    shard_of("bang-1")                    # 15: stable across processes and restarts
    decide("host:12:ab", live=3, held=frozenset(range(30)), free=[...])
    # Decision(acquire=(), release=(29, 28, ..., 22)): a replica joined, give back the excess

Boards fall in SHARDS shards by a CRC-32 of their id (`zlib.crc32`, the same on every
machine and Python, unlike `hash`). Each shard is led by one replica at a time: on
PostgreSQL through a session advisory lock per shard (`displayd.delivery.leader`), on
SQLite the one process leads them all. Every LEADERSHIP_CHECK_SECONDS each replica writes its
heartbeat, counts the live replicas (a heartbeat within REPLICA_STALE_SECONDS) and takes its
fair share, ceil(SHARDS / live): it tries free shards, starting at an offset of its own
(`offset_of(name)`, so two replicas joining at once rarely try the same ones first) while
below its share, and lets go of its highest shards while above it. `decide` is that rule,
a pure function of what the replica sees.

When does a shard move? A replica that dies (even `kill -9`) loses its locks at once (its
connection closes and the server ends its session), and is no longer counted live (a replica
is live while its heartbeat is fresh and its lock connection's session exists): the others'
share grows and they take its shards at their next check, within LEADERSHIP_CHECK_SECONDS.
One cut off by the network keeps its session on the server until its heartbeat is
REPLICA_STALE_SECONDS old: at most REPLICA_STALE_SECONDS + LEADERSHIP_CHECK_SECONDS + a
connection's round trips, well within 15 s. A replica that joins is counted at once; the
others give back their excess at their next check and it takes them at its next.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass

SHARDS = 64
ALL_SHARDS: frozenset[int] = frozenset(range(SHARDS))
REPLICA_STALE_SECONDS = 8.0  # a replica whose heartbeat is older is not counted live
REPLICA_FORGOTTEN_SECONDS = 3600.0  # a stale replica's row is deleted after this long
PRIMARY_SHARD = 0  # its leader does the work that runs once per site: the retention purge


def shard_of(board_id: str) -> int:
    """The shard a board falls in: stable across processes, machines and restarts."""
    return zlib.crc32(board_id.encode()) % SHARDS


def offset_of(name: str) -> int:
    """Where a replica starts looking for free shards."""
    return zlib.crc32(name.encode()) % SHARDS


def fair_share(live: int) -> int:
    """The most shards one of `live` replicas leads (at least one replica: this one)."""
    return math.ceil(SHARDS / max(1, live))


@dataclass(frozen=True, slots=True)
class Decision:
    share: int                     # the most shards this replica should lead
    acquire: tuple[int, ...] = ()  # free shards to try, in order, until `share` are held
    release: tuple[int, ...] = ()  # held shards to let go of


def decide(name: str, *, live: int, held: Collection[int], free: Iterable[int]) -> Decision:
    """What a replica named `name` should do, seeing `live` live replicas (itself included),
    holding `held` and seeing `free` shards nobody holds.

    Below its share: every free shard, from its own offset on, to try in order until it has its
    share (a try can fail: another replica took it meanwhile). Above: its highest shards,
    down to its share. `live` counts the replicas that are up, so a dead one's shards wait
    for its heartbeat to go stale before the others' share grows to take them."""
    share = fair_share(live)
    if len(held) > share:
        return Decision(share, release=tuple(sorted(held, reverse=True)[:len(held) - share]))
    if len(held) == share:
        return Decision(share)
    start = offset_of(name)
    candidates = sorted(set(free) - set(held), key=lambda shard: (shard - start) % SHARDS)
    return Decision(share, acquire=tuple(candidates))
