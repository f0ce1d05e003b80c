"""The shard locks on PostgreSQL (`displayd.delivery.leader.PostgresLeadership`), for real.

The boundary and the periodic check once both asked the lock connection at the same
instant; asyncpg refused the second query, the refusal read as a lost lock, the connection
was dropped and the lock with it: the leader stepped down in the middle of a 10,000-board
fan-out (bench/ontime.py). The checks now wait their turn (and a boundary asks nothing of it)."""

from __future__ import annotations

import asyncio

import asyncpg

from displayd.db.session import asyncpg_dsn
from displayd.delivery.leader import LOCK_CLASS, PostgresLeadership
from displayd.delivery.shards import ALL_SHARDS
from tests.conftest import pg_url


async def test_checks_at_the_same_instant_keep_the_locks(pg_database: str, migrated_urls: dict[str, str]) -> None:
    url = pg_url(pg_database)
    leadership = PostgresLeadership(url)
    try:
        assert (await leadership.check()).gained == ALL_SHARDS
        changes = await asyncio.gather(*(leadership.check() for _ in range(5)))
        assert all(not change.gained and not change.lost for change in changes)
        assert leadership.held == ALL_SHARDS and not leadership.offline
        other = await asyncpg.connect(asyncpg_dsn(url))
        try:  # nobody else can take one: none was ever let go
            assert await other.fetchval("SELECT pg_try_advisory_lock($1, $2)", LOCK_CLASS, 7) is False
        finally:
            await other.close()
    finally:
        await leadership.release()
    assert leadership.held == frozenset() and leadership.connection is None
