"""`/metrics`: Prometheus text format, counts that move with pushes, polls, incidents and
leadership, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from displayd.app import create_app
from displayd.config import Settings
from displayd.delivery.dispatch import Dispatcher
from displayd.runtime import runtime_of
from tests.conftest import FakeClock, make_settings
from tests.delivery.boards import FakeBoards, Ok
from tests.factories import Factory


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of `/metrics` by (name, sorted labels)."""
    response = await client.get("/metrics")  # no key: scraped from the internal network
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


async def test_pushes_polls_and_incidents_are_counted(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, dispatcher: Dispatcher,
    boards: FakeBoards, clock: FakeClock
) -> None:
    before = await scrape(client)
    assert before[("displayd_pushes_total", (("outcome", "delivered"),))] == 0
    assert before[("displayd_polls_total", ())] == 0
    assert before[("displayd_scheduler_leader", ())] == 0  # no scheduler in this app
    assert before[("displayd_shards_led", ())] == 0 and before[("displayd_replicas_live", ())] == 0
    await factory.campaign()
    await factory.board("bang-tot", delivery="push", endpoint_url=boards.url("ok", "bang-tot"))
    await factory.board("bang-hong", delivery="push", endpoint_url=boards.url("error500", "bang-hong"))
    await factory.board("bang-la", delivery="push",
                        endpoint_url=boards.url(Ok(content_hash="sha256:" + "e" * 64), "bang-la"))
    polled = await factory.board("bang-keo", delivery="poll")
    await dispatcher.sync(clock.now)
    await dispatcher.stop()

    first = await factory.current(polled)
    etag = first.headers["etag"]
    assert (await factory.current(polled, **{"If-None-Match": etag})).status_code == 304
    assert (await factory.current(polled, **{"If-None-Match": etag})).status_code == 304
    foreign = etag.replace(first.json()["content_hash"][7:39], "f" * 32)
    assert (await factory.current(polled, **{"If-None-Match": foreign})).status_code == 200
    assert (await factory.current({"id": "bang-keo", "token": "bt_wrong"})).status_code == 401
    await runtime_of(app).polls.flush()

    after = await scrape(client)
    assert after[("displayd_pushes_total", (("outcome", "delivered"),))] == 2  # bang-tot and bang-la
    assert after[("displayd_pushes_total", (("outcome", "failed"),))] == 1
    assert after[("displayd_push_latency_seconds_count", ())] == 3
    assert after[("displayd_push_latency_seconds_bucket", (("le", "+Inf"),))] == 3
    assert after[("displayd_polls_total", ())] == 5
    assert after[("displayd_polls_not_modified_total", ())] == 2
    assert after[("displayd_poll_not_modified_ratio", ())] == pytest.approx(2 / 5)
    assert after[("displayd_integrity_incidents_total", (("source", "push"),))] == 1
    assert after[("displayd_integrity_incidents_total", (("source", "poll"),))] == 1
    assert after[("displayd_boards_unreachable", ())] == 0


async def test_unreachable_boards_are_a_gauge(
    client: httpx.AsyncClient, factory: Factory, dispatcher: Dispatcher, boards: FakeBoards,
    clock: FakeClock
) -> None:
    await factory.campaign()
    await factory.board("bang-hong", delivery="push", endpoint_url=boards.url("error500", "bang-hong"))
    for _ in range(5):
        await dispatcher.sync(clock.now)
        await dispatcher.stop()
        clock.advance(seconds=30)
    samples = await scrape(client)
    assert samples[("displayd_boards_unreachable", ())] == 1
    assert samples[("displayd_pushes_total", (("outcome", "failed"),))] == 5


async def test_the_leader_gauge_and_slot_lateness(settings: Settings) -> None:
    # A real scheduler on the real clock: it takes the lock within a moment and runs a boundary.
    app = create_app(make_settings(settings.database_url, scheduler_enabled=True))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://displayd.test") as client:
            samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
            for _ in range(100):
                samples = await scrape(client)
                if samples[("displayd_scheduler_leader", ())] == 1 and \
                        samples[("displayd_slot_lateness_seconds_count", ())] >= 1:
                    break
                await asyncio.sleep(0.1)
            assert samples[("displayd_scheduler_leader", ())] == 1
            assert samples[("displayd_slot_lateness_seconds_count", ())] >= 1
            # Alone, it leads every shard, on SQLite (the file lock) as on PostgreSQL (its fair share).
            assert samples[("displayd_shards_led", ())] == 64 and samples[("displayd_replicas_live", ())] == 1
            assert samples[("displayd_database_offline", ())] == 0
    assert runtime_of(app).scheduler.leader is False  # shut down: it let the lock go


async def test_each_app_has_its_own_registry(settings: Settings) -> None:
    one, two = create_app(settings), create_app(settings)
    async with one.router.lifespan_context(one), two.router.lifespan_context(two):
        runtime_of(one).metrics.polls += 3
        assert runtime_of(one).registry is not runtime_of(two).registry
        assert runtime_of(two).metrics.polls == 0
