"""One campaign or board that cannot be planned never costs the others their plan.

Rows that predate today's input checks (an extreme date, a time zone that no longer exists)
and an exception anywhere in one campaign's plan: every other board keeps its pushes, polls
and schedule, no list or dashboard page answers 5xx, and the fault is a `plan_error` (logged
with the campaign and board ids, counted in /metrics, shown on the dashboard).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from displayd.config import Settings
from displayd.db.models import Campaign
from displayd.db.session import create_engine, create_sessionmaker
from displayd.delivery.dispatch import Dispatcher
from displayd.rotation import _timeline
from tests.conftest import FakeClock, Keys
from tests.delivery.boards import FakeBoards
from tests.factories import Factory

PAGES = ["/ui", "/ui/plan", "/ui/log"]


async def _set(settings: Settings, campaign_id: int, **values: Any) -> None:
    """Write a campaign row as an older displayd (or a hand edit) could have left it."""
    engine = create_engine(settings)
    async with create_sessionmaker(engine)() as session, session.begin():
        await session.execute(update(Campaign).where(Campaign.id == campaign_id).values(**values))
    await engine.dispose()


async def _refresh(client: httpx.AsyncClient, keys: Keys) -> None:
    """Any change makes the process rebuild its snapshot (a pause and a resume of nothing here)."""
    board = (await client.get("/api/v1/boards?limit=1", headers=keys.auth("admin"))).json()["items"][0]
    response = await client.patch(f"/api/v1/boards/{board['id']}", json={"location": "Sảnh"},
                                  headers=keys.auth("admin"))
    assert response.status_code == 200, response.text


@pytest.fixture
async def signed_in(client: httpx.AsyncClient, keys: Keys) -> AsyncIterator[httpx.AsyncClient]:
    response = await client.post("/ui/login", data={"key": keys.operator})
    assert response.status_code == 303, response.text
    yield client


def _plan_errors(metrics: str) -> float:
    for line in metrics.splitlines():
        if line.startswith("displayd_plan_errors_total "):
            return float(line.split()[1])
    raise AssertionError("displayd_plan_errors_total is not in /metrics")


async def _no_server_errors(client: httpx.AsyncClient, keys: Keys, board_ids: list[str]) -> dict[str, str]:
    pages: dict[str, str] = {}
    for path in ["/api/v1/boards", "/api/v1/campaigns", "/api/v1/rotations", *[
            f"/api/v1/boards/{b}" for b in board_ids], *[
            f"/api/v1/boards/{b}/schedule?from=2024-05-07T00:00:00Z&to=2024-05-07T01:00:00Z" for b in board_ids]]:
        response = await client.get(path, headers=keys.auth("operator"))
        assert response.status_code < 500, (path, response.text)
    for path in PAGES:
        response = await client.get(path)
        assert response.status_code == 200, (path, response.text)
        pages[path] = response.text
    return pages


async def test_a_row_from_the_edge_of_the_calendar_stops_nothing(
    client: httpx.AsyncClient, signed_in: httpx.AsyncClient, factory: Factory, keys: Keys, settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ok_board = await factory.board("bang-tot")
    await factory.board("bang-khac", groups=["xa"])
    normal = await factory.campaign("Đợt thường")
    broken = await factory.campaign("Đợt lỗi", priority=500, targets={"groups": ["xa"]})
    # Both ends beyond what a time zone can show: 0001-01-01 in New York is year 0.
    await _set(settings, broken["id"], starts_at=datetime(1, 1, 1, tzinfo=UTC),
               ends_at=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), timezone="America/New_York")
    caplog.set_level(logging.ERROR, logger="displayd.plan")
    await _refresh(client, keys)

    pages = await _no_server_errors(client, keys, ["bang-tot", "bang-khac"])
    assert "Đợt thường" in pages["/ui/plan"]
    assert f'data-campaign="{broken["id"]}"' in pages["/ui/plan"]  # the alert names the campaign at fault
    current = (await factory.current(ok_board)).json()
    assert current["state"] == "showing" and current["slot"]["campaign_id"] == normal["id"]
    events = [r for r in caplog.records if getattr(r, "event", None) == "plan_error"]
    assert events and all(r.campaign_id == broken["id"] for r in events)
    assert _plan_errors((await client.get("/metrics")).text) >= 1


async def test_a_time_zone_that_no_longer_exists_leaves_out_one_campaign(
    client: httpx.AsyncClient, signed_in: httpx.AsyncClient, factory: Factory, keys: Keys, settings: Settings,
) -> None:
    board = await factory.board("bang-tot")
    normal = await factory.campaign("Đợt thường")
    broken = await factory.campaign("Đợt lỗi", priority=500)
    await _set(settings, broken["id"], timezone="Mars/Olympus_Mons")
    await _refresh(client, keys)

    pages = await _no_server_errors(client, keys, ["bang-tot"])
    assert f'data-campaign="{broken["id"]}"' in pages["/ui"]
    current = (await factory.current(board)).json()
    assert current["slot"]["campaign_id"] == normal["id"]  # the higher priority one is out, not the board


@pytest.fixture
def poisoned(monkeypatch: pytest.MonkeyPatch) -> set[int]:
    """Campaign ids whose slot arithmetic raises, as a bug in one campaign's plan would."""
    ids: set[int] = set()
    real = _timeline.slogan_for_slot

    def slogan_for_slot(campaign: Any, k: int, board_offset: int) -> int:
        if campaign.id in ids:
            raise RuntimeError(f"boom in campaign {campaign.id}")
        return real(campaign, k, board_offset)

    monkeypatch.setattr(_timeline, "slogan_for_slot", slogan_for_slot)
    return ids


async def test_an_exception_in_one_campaigns_plan_costs_only_that_campaign(
    client: httpx.AsyncClient, signed_in: httpx.AsyncClient, factory: Factory, keys: Keys,
    dispatcher: Dispatcher, boards: FakeBoards, clock: FakeClock, poisoned: set[int],
) -> None:
    await factory.board("bang-xa", delivery="push", groups=["xa"], endpoint_url=boards.url("ok", "bang-xa"))
    await factory.board("bang-gan", delivery="push", endpoint_url=boards.url("ok", "bang-gan"))
    polled = await factory.board("bang-keo", delivery="poll", groups=["xa"])
    base = await factory.campaign("Đợt nền")
    bad = await factory.campaign("Đợt lỗi", priority=500, targets={"groups": ["xa"]})
    poisoned.add(bad["id"])

    await dispatcher.sync(clock.now)
    await dispatcher.stop()
    for board_id in ("bang-xa", "bang-gan"):  # both pushed: the faulty campaign is left out of bang-xa's plan
        [received] = boards.received(board_id)
        assert json.loads(received.body)["slot"]["campaign_id"] == base["id"]
    current = (await factory.current(polled)).json()
    assert current["state"] == "showing" and current["slot"]["campaign_id"] == base["id"]

    health = {b["id"]: b["health"] for b in
              (await client.get("/api/v1/boards", headers=keys.auth("operator"))).json()["items"]}
    assert health["bang-gan"]["plan_error"] is None
    assert health["bang-xa"]["plan_error"] is not None and f"campaign {bad['id']}" in health["bang-xa"]["plan_error"]
    schedule = (await client.get("/api/v1/boards/bang-xa/schedule?from=2024-05-07T00:00:00Z&to=2024-05-07T00:02:00Z",
                                 headers=keys.auth("operator"))).json()
    assert {item["campaign_id"] for item in schedule["items"]} == {base["id"]}
    await _no_server_errors(client, keys, ["bang-xa", "bang-gan", "bang-keo"])

    # Fixed (a new deployment, or the campaign edited): the next snapshot plans it again.
    poisoned.clear()
    await _refresh(client, keys)
    current = (await factory.current(polled)).json()
    assert current["slot"]["campaign_id"] == bad["id"]


async def test_a_board_that_cannot_be_planned_is_idle_and_the_rest_go_on(
    client: httpx.AsyncClient, signed_in: httpx.AsyncClient, factory: Factory, keys: Keys,
    dispatcher: Dispatcher, boards: FakeBoards, clock: FakeClock, poisoned: set[int],
) -> None:
    far = await factory.board("bang-xa", groups=["xa"])
    near = await factory.board("bang-gan", delivery="push", endpoint_url=boards.url("ok", "bang-gan"))
    only = await factory.campaign("Đợt duy nhất", targets={"groups": ["xa"]})
    other = await factory.campaign("Đợt khác", targets={"boards": ["bang-gan"]})
    poisoned.add(only["id"])

    await dispatcher.sync(clock.now)
    await dispatcher.stop()
    [received] = boards.received("bang-gan")
    assert json.loads(received.body)["slot"]["campaign_id"] == other["id"]
    assert (await factory.current(near)).json()["state"] == "showing"
    idle = await factory.current(far)
    assert idle.status_code == 200 and idle.json()["state"] == "idle"
    assert idle.headers["cache-control"] == "max-age=60"  # planned again a minute later
    pages = await _no_server_errors(client, keys, ["bang-xa", "bang-gan"])
    assert 'data-board="bang-xa"' in pages["/ui"]
    assert _plan_errors((await client.get("/metrics")).text) >= 1


async def test_a_playlist_that_empties_idles_only_its_boards(
    client: httpx.AsyncClient, signed_in: httpx.AsyncClient, factory: Factory, keys: Keys,
) -> None:
    [first, second, _] = await factory.approved_ids()
    far = await factory.board("bang-xa", groups=["xa"])
    near = await factory.board("bang-gan")
    await factory.campaign("Đợt một", playlist_ids=[first], targets={"groups": ["xa"]}, priority=500)
    base = await factory.campaign("Đợt hai", playlist_ids=[second])
    response = await client.post(f"/api/v1/slogans/{first}/retire", json={"reason": "Sai chính tả"},
                                 headers=keys.auth("approver"))
    assert response.status_code == 200, response.text
    for board in (far, near):
        current = (await factory.current(board)).json()
        assert current["state"] == "showing" and current["slot"]["campaign_id"] == base["id"]
    await _no_server_errors(client, keys, ["bang-xa", "bang-gan"])
