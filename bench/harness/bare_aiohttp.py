"""The bare client baseline of the push benchmarks: aiohttp's `session.post` and nothing else.

    failures = await fan_out(urls, bodies, concurrency=1024)            # a fresh session and pool
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4096)) as session:
        failures = await post_all(session, urls, bodies, concurrency=len(urls))   # connections kept warm

No signing, no log, no retries, no address guard: what one event loop can fan out at best,
to the same fake boards displayd's pusher is measured against in the same run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import aiohttp

HEADERS = {"content-type": "application/json"}


async def pool(count: int, concurrency: int, one: Callable[[int], Awaitable[bool]]) -> int:
    """Run one(i) for every i in range(count) with `concurrency` workers; how many returned False."""
    indexes = iter(range(count))
    failures = 0

    async def worker() -> None:
        nonlocal failures
        for i in indexes:
            if not await one(i):
                failures += 1

    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, count)):
            group.create_task(worker())
    return failures


async def post_all(session: aiohttp.ClientSession, urls: Sequence[str], bodies: Sequence[bytes], *,
                   concurrency: int) -> int:
    """POST bodies[i] to urls[i] for every i, `concurrency` at a time; how many failed (not 2xx or an error)."""
    async def one(i: int) -> bool:
        try:
            async with session.post(urls[i], data=bodies[i], headers=HEADERS) as response:
                await response.read()
                return 200 <= response.status < 300
        except aiohttp.ClientError:
            return False

    return await pool(len(urls), concurrency, one)


async def fan_out(urls: Sequence[str], bodies: Sequence[bytes], concurrency: int) -> int:
    """`post_all` through a fresh session whose pool holds `concurrency` connections; how many failed."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        return await post_all(session, urls, bodies, concurrency=concurrency)
