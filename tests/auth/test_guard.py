"""Failed sign-ins are seen: every refused API key, board token and dashboard sign-in is
logged (`auth_failure`, with the client address, never the secret) and counted in
`/metrics`; after 20 failures within a minute from one address, staff keys and sign-in
answer 429 for a minute. Board tokens are never held. Through the API, on SQLite and
PostgreSQL; the log budget of a flood on the guard itself."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from displayd.auth.guard import LOG_PER_ADDRESS, LOG_PER_MINUTE, AuthGuard, Kind
from displayd.metrics import Metrics
from tests.conftest import FakeClock, Keys
from tests.factories import Factory
from tests.test_metrics import scrape

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
SECRET_MARK = "dk_guessed-secret-"


@pytest.fixture
async def elsewhere(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client at another address (the `client` fixture is 127.0.0.1)."""
    transport = httpx.ASGITransport(app=app, client=("10.0.0.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://displayd.test") as other:
        yield other


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def auth_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "displayd.auth"]


def assert_no_secret(caplog: pytest.LogCaptureFixture, *secrets: str) -> None:
    for record in caplog.records:
        everything = record.getMessage() + repr(vars(record))
        for secret in (SECRET_MARK, *secrets):
            assert secret not in everything, record


async def failures(client: httpx.AsyncClient) -> dict[str, float]:
    samples = await scrape(client)
    counts = {kind: samples[("displayd_auth_failures_total", (("kind", kind),))]
              for kind in ("api_key", "board_token", "sign_in")}
    counts["refused"] = samples[("displayd_auth_refused_total", ())]
    return counts


async def test_twenty_bad_keys_hold_the_address_for_a_minute(
    client: httpx.AsyncClient, elsewhere: httpx.AsyncClient, keys: Keys, factory: Factory, clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    board = await factory.board("bang-sanh")
    caplog.set_level(logging.INFO)
    for n in range(20):
        response = await client.get("/api/v1/slogans", headers=bearer(f"{SECRET_MARK}{n}"))
        assert response.status_code == 401, n
    held = await client.get("/api/v1/slogans", headers=bearer(f"{SECRET_MARK}20"))
    assert held.status_code == 429
    assert held.json() == {"error": "too_many_failures", "detail": held.json()["detail"]}
    assert held.headers["retry-after"] == "60"
    # A good key from the held address is refused too (guessing learns nothing) …
    good = await client.get("/api/v1/slogans", headers=keys.auth("admin"))
    assert good.status_code == 429 and good.json()["error"] == "too_many_failures"
    poll = await client.get(f"/api/v1/boards/{board['id']}/current", headers=keys.auth("operator"))
    assert poll.status_code == 429 and poll.headers["retry-after"] == "60"
    sign_in = await client.post("/ui/login", content=f"key={keys.admin}", headers=FORM)
    assert sign_in.status_code == 429 and "set-cookie" not in sign_in.headers
    assert sign_in.headers["retry-after"] == "60"
    # … but not its board (boards behind the same NAT keep working), nor other addresses.
    own = await client.get(f"/api/v1/boards/{board['id']}/current", headers=bearer(board["token"]))
    assert own.status_code == 200
    assert (await elsewhere.get("/api/v1/slogans", headers=keys.auth("admin"))).status_code == 200

    counted = await failures(client)
    assert counted == {"api_key": 20, "board_token": 0, "sign_in": 0, "refused": 4}
    clock.advance(seconds=30)
    later = await client.get("/api/v1/slogans", headers=keys.auth("admin"))
    assert later.status_code == 429 and later.headers["retry-after"] == "30"
    clock.advance(seconds=30)
    assert (await client.get("/api/v1/slogans", headers=keys.auth("admin"))).status_code == 200
    assert (await client.post("/ui/login", content=f"key={keys.admin}", headers=FORM)).status_code == 303

    records = auth_records(caplog)
    lines = [r for r in records if getattr(r, "event", None) == "auth_failure"]
    assert 1 <= len(lines) <= LOG_PER_ADDRESS
    assert {(getattr(r, "kind", None), getattr(r, "client", None)) for r in lines} == {("api_key", "127.0.0.1")}
    assert [getattr(r, "client", None) for r in records if getattr(r, "event", None) == "auth_held"] == ["127.0.0.1"]
    assert_no_secret(caplog, keys.admin, keys.operator)


async def test_failed_sign_ins_hold_the_form(client: httpx.AsyncClient, keys: Keys, clock: FakeClock,
                                             caplog: pytest.LogCaptureFixture) -> None:
    for n in range(20):
        response = await client.post("/ui/login", content=f"key={SECRET_MARK}{n}", headers=FORM)
        assert response.status_code == 401, n
    held = await client.post("/ui/login", content=f"key={keys.operator}", headers=FORM)
    assert held.status_code == 429
    assert held.headers["retry-after"] == "60" and "set-cookie" not in held.headers
    assert "Thử lại sau 60 giây" in held.text
    # The same address's API keys are held too: it is one guesser, whichever door it tries.
    assert (await client.get("/api/v1/slogans", headers=keys.auth("operator"))).status_code == 429
    assert await failures(client) == {"api_key": 0, "board_token": 0, "sign_in": 20, "refused": 2}
    clock.advance(minutes=1)
    assert (await client.post("/ui/login", content=f"key={keys.operator}", headers=FORM)).status_code == 303
    sign_in_lines = [r for r in auth_records(caplog) if getattr(r, "kind", None) == "sign_in"]
    assert 1 <= len(sign_in_lines) <= LOG_PER_ADDRESS
    assert_no_secret(caplog, keys.operator)


async def test_bad_board_tokens_are_counted_and_logged_but_never_held(
    client: httpx.AsyncClient, keys: Keys, factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    board = await factory.board("bang-cong")
    for n in range(30):
        response = await client.get(f"/api/v1/boards/{board['id']}/current", headers=bearer(f"bt_wrong-{n}"))
        assert response.status_code == 401, n
    # A board token presented to a staff endpoint is no staff key: counted as a board token.
    assert (await client.get("/api/v1/slogans", headers=bearer("bt_wrong-30"))).status_code == 401
    own = await client.get(f"/api/v1/boards/{board['id']}/current", headers=bearer(board["token"]))
    assert own.status_code == 200
    assert (await client.get("/api/v1/slogans", headers=keys.auth("operator"))).status_code == 200
    assert await failures(client) == {"api_key": 0, "board_token": 31, "sign_in": 0, "refused": 0}
    lines = [r for r in auth_records(caplog) if getattr(r, "event", None) == "auth_failure"]
    assert len(lines) == LOG_PER_ADDRESS
    assert all(getattr(r, "kind", None) == "board_token" for r in lines)
    assert_no_secret(caplog, "bt_wrong", board["token"])


def test_a_flood_writes_a_bounded_number_of_lines(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(datetime(2024, 5, 7, tzinfo=UTC))
    metrics = Metrics()
    guard = AuthGuard(clock, metrics)
    guard.holding = False  # count and log only: the flood goes on
    caplog.set_level(logging.INFO, logger="displayd.auth")
    for _ in range(1000):
        guard.failed(Kind.API_KEY, "203.0.113.9")
    for n in range(300):
        for _ in range(3):
            guard.failed(Kind.SIGN_IN, f"198.51.100.{n % 250}:{n}")
    assert metrics.auth_failures == {"api_key": 1000, "board_token": 0, "sign_in": 900}
    lines = auth_records(caplog)
    assert len(lines) <= LOG_PER_MINUTE
    assert sum(1 for r in lines if getattr(r, "client", None) == "203.0.113.9") == LOG_PER_ADDRESS
    # The next minute begins with one summary of what was left out.
    clock.advance(seconds=61)
    caplog.clear()
    guard.failed(Kind.API_KEY, "203.0.113.9")
    [summary, line] = auth_records(caplog)
    assert getattr(summary, "event", None) == "auth_failure_summary"
    assert getattr(summary, "failures", None) == 1000 + 900 - len(lines)
    assert getattr(summary, "top", {})["203.0.113.9"] == 1000 - LOG_PER_ADDRESS
    assert getattr(line, "event", None) == "auth_failure"


def test_a_flood_that_stopped_is_summarised_by_the_minute(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(datetime(2024, 5, 7, tzinfo=UTC))
    guard = AuthGuard(clock, Metrics())
    caplog.set_level(logging.INFO, logger="displayd.auth")
    for _ in range(12):
        guard.failed(Kind.BOARD_TOKEN, "192.0.2.1")
    clock.advance(seconds=60)
    caplog.clear()
    guard.summarise()  # what `run()` does once a minute
    [summary] = auth_records(caplog)
    assert getattr(summary, "failures", None) == 12 - LOG_PER_ADDRESS


def test_a_spray_from_many_addresses_stays_bounded(monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    from displayd.auth import guard as guard_module

    monkeypatch.setattr(guard_module, "MAX_ADDRESSES", 50)
    clock = FakeClock(datetime(2024, 5, 7, tzinfo=UTC))
    metrics = Metrics()
    guard = AuthGuard(clock, metrics)
    caplog.set_level(logging.INFO, logger="displayd.auth")
    for n in range(200):
        guard.failed(Kind.API_KEY, f"2001:db8::{n:x}")
    assert metrics.auth_failures["api_key"] == 200  # every failure counted, tracked or not
    assert len(auth_records(caplog)) == LOG_PER_MINUTE
    clock.advance(seconds=61)
    caplog.clear()
    guard.failed(Kind.API_KEY, "2001:db8::ffff")  # a new minute: the idle addresses are forgotten …
    [summary, line] = auth_records(caplog)
    assert getattr(summary, "untracked", None) == 150 and getattr(summary, "failures", None) == 150
    assert getattr(line, "client", None) == "2001:db8::ffff"  # … so a new address is tracked again
