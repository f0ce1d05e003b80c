"""No poll can make displayd do or write more than a small, fixed amount, whatever it sends.

`If-None-Match` is read for at most a few tags; a board gets at most one integrity incident
per slot however many times (and however many foreign tags) it reports; the check against
issued content is one query per flush.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import event

from displayd.app import create_app
from displayd.config import Settings
from displayd.delivery.dispatch import Dispatcher
from displayd.live.poll import MAX_ETAGS
from displayd.runtime import runtime_of
from tests.conftest import FakeClock, Keys, count_rows
from tests.factories import Factory


def _foreign(etag: str, n: int) -> str:
    """A well-formed showing ETag naming content displayd never issued (digest n)."""
    campaign, slot, _ = etag.strip('"').split("-", 2)
    return f'"{campaign}-{slot}-{n:064x}"'


async def test_only_the_first_tags_of_if_none_match_are_read(factory: Factory) -> None:
    await factory.campaign()
    board = await factory.board("bang-keo")
    etag = (await factory.current(board)).headers["etag"]
    padding = ", ".join(f'"x{n}"' for n in range(MAX_ETAGS - 1))
    assert (await factory.current(board, **{"If-None-Match": f"{padding}, {etag}"})).status_code == 304
    padding = ", ".join(f'"x{n}"' for n in range(MAX_ETAGS))
    assert (await factory.current(board, **{"If-None-Match": f"{padding}, {etag}"})).status_code == 200
    huge = ", ".join(f'"x{n}"' for n in range(2000)) + f", {etag}"
    assert (await factory.current(board, **{"If-None-Match": huge})).status_code == 200


async def test_a_board_gets_one_incident_per_slot_however_often_it_reports(
    app: FastAPI, client: httpx.AsyncClient, keys: Keys, factory: Factory, dispatcher: Dispatcher,
    settings: Settings, clock: FakeClock,
) -> None:
    await factory.campaign()
    board = await factory.board("bang-keo")
    await dispatcher.sync(clock.now)
    etag = (await factory.current(board)).headers["etag"]
    for n in range(1, 60):  # a hostile (or broken) board: many foreign tags, many times, in one slot
        tags = ", ".join(_foreign(etag, n * 100 + k) for k in range(50))
        assert (await factory.current(board, **{"If-None-Match": tags})).status_code == 200
        if n % 20 == 0:
            await runtime_of(app).polls.flush()
    await runtime_of(app).polls.flush()
    assert await count_rows(settings, "integrity_incident") == 1
    clock.advance(seconds=30)  # the next slot: another incident, still only one
    await dispatcher.sync(clock.now)
    etag = (await factory.current(board)).headers["etag"]
    for n in range(1, 20):
        await factory.current(board, **{"If-None-Match": _foreign(etag, n)})
    await runtime_of(app).polls.flush()
    assert await count_rows(settings, "integrity_incident") == 2
    health = (await client.get("/api/v1/boards/bang-keo", headers=keys.auth("operator"))).json()["health"]
    assert health["integrity_incidents"] == 2


async def test_the_check_against_issued_content_is_one_query_per_flush(
    app: FastAPI, factory: Factory, dispatcher: Dispatcher, settings: Settings, clock: FakeClock,
) -> None:
    await factory.campaign()
    made = [await factory.board(f"bang-{n}") for n in range(12)]
    await dispatcher.sync(clock.now)
    for board in made:
        etag = (await factory.current(board)).headers["etag"]
        await factory.current(board, **{"If-None-Match": ", ".join(_foreign(etag, k) for k in range(MAX_ETAGS))})
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    engine = runtime_of(app).engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        await runtime_of(app).polls.flush()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert sum("issued_content" in s for s in statements) == 1
    assert await count_rows(settings, "integrity_incident") == len(made)


async def test_content_a_board_was_given_is_never_an_incident(
    factory: Factory, dispatcher: Dispatcher, settings: Settings, clock: FakeClock,
) -> None:
    await factory.campaign()
    board = await factory.board("bang-keo")
    await dispatcher.sync(clock.now)
    first = (await factory.current(board)).headers["etag"]
    clock.advance(seconds=30)
    await dispatcher.sync(clock.now)
    # Another process (or this one restarted) has served the board nothing yet: only the
    # database knows that the first slot's content was issued to it.
    other = create_app(settings, clock=clock)
    async with other.router.lifespan_context(other), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=other), base_url="http://other.test") as client:
        response = await client.get("/api/v1/boards/bang-keo/current", headers={
            "Authorization": f"Bearer {board['token']}", "If-None-Match": first})
        assert response.status_code == 200
        await runtime_of(other).polls.flush()
    assert await count_rows(settings, "integrity_incident") == 0
