"""The scheduler lock on PostgreSQL (`displayd.delivery.leader.PostgresLeadership`), for real.

The boundary and the periodic check both ask `still_held`; asked at the same instant on the
one lock connection, asyncpg refused the second query, the refusal read as a lost lock, the
connection was dropped and the lock with it: the leader stepped down in the middle of a
10,000-board fan-out (bench/ontime.py). The questions now wait their turn."""

from __future__ import annotations

import asyncio

import asyncpg

from displayd.db.session import asyncpg_dsn
from displayd.delivery.leader import LOCK_KEY, PostgresLeadership
from tests.conftest import pg_url


async def test_checks_at_the_same_instant_keep_the_lock(pg_database: str) -> None:
    url = pg_url(pg_database)
    leadership = PostgresLeadership(url)
    try:
        assert await leadership.try_acquire()
        assert await asyncio.gather(*(leadership.still_held() for _ in range(5))) == [True] * 5
        assert await asyncio.gather(leadership.try_acquire(), leadership.still_held()) == [True, True]
        other = await asyncpg.connect(asyncpg_dsn(url))
        try:  # nobody else can take it: it was never let go
            assert await other.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY) is False
        finally:
            await other.close()
    finally:
        await leadership.release()
    assert not await leadership.still_held()
