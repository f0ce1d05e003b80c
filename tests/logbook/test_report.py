"""The campaign report `GET /api/v1/reports/campaigns/{id}`, on SQLite and PostgreSQL.

The log is written as the leader writes it (`store.insert_rows`), then the report's figures
are checked exactly, and against `/api/v1/reports/airtime` for the same campaign.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import update

from displayd.config import Settings
from displayd.db.models import Rotation
from displayd.db.session import create_engine, create_sessionmaker
from displayd.logbook import store
from tests.conftest import FakeClock, Keys
from tests.factories import Factory
from tests.logbook.test_rotations_api import T0, slot_rows, write


async def incidents(settings: Settings, found: list[store.Incident]) -> None:
    engine = create_engine(settings)
    async with create_sessionmaker(engine)() as session, session.begin():
        await store.record_incidents(session, found)
    await engine.dispose()


async def report(client: httpx.AsyncClient, keys: Keys, campaign_id: int, who: str = "operator",
                 **params: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/reports/campaigns/{campaign_id}", params=params, headers=keys.auth(who))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def log_of_two_boards(client: httpx.AsyncClient, keys: Keys, factory: Factory, settings: Settings) -> tuple[
        int, list[int]]:
    """A campaign made by one editor, edited by another and paused and resumed by the admin;
    a push board and a poll board, 240 slots of 30 s each from 23:00 local on 6 May."""
    ids = await factory.approved_ids()
    c = (await factory.campaign("Kỷ niệm 70 năm Chiến thắng Điện Biên Phủ"))["id"]
    for method, path, who, body in [("PATCH", "", "editor2", {"priority": 150}), ("POST", "/pause", "admin", None),
                                    ("POST", "/resume", "admin", None)]:
        response = await client.request(method, f"/api/v1/campaigns/{c}{path}", json=body, headers=keys.auth(who))
        assert response.status_code == 200, response.text
    other = (await factory.campaign("Đợt khác"))["id"]
    await factory.board("bang-day", name="Bảng sảnh chính", location="Tầng 1", delivery="push",
                        endpoint_url="http://127.0.0.1:9/")
    await factory.board("bang-keo", delivery="poll")
    a, b = ids[0], ids[1]
    await write(settings, slot_rows("bang-day", c, [a, b], 0, 230) + slot_rows("bang-day", c, [a, b], 230, 10,
                                                                                status="missed")
                + slot_rows("bang-keo", c, [a, a, b], 0, 240, status="not_pushed")
                + slot_rows("bang-day", other, [a], 0, 50))
    engine = create_engine(settings)
    async with create_sessionmaker(engine)() as session, session.begin():
        await session.execute(update(Rotation).where(Rotation.board_id == "bang-keo", Rotation.slot_index < 60)
                              .values(first_polled_at=T0))
        await session.execute(update(Rotation).where(Rotation.board_id == "bang-day", Rotation.campaign_id == c,
                                                     Rotation.slot_index < 23).values(push_status="failed"))
    await engine.dispose()
    await incidents(settings, [
        store.Incident("bang-day", f"{c}:5", T0 + timedelta(minutes=3), "push", "sha256:" + "e" * 64, "lạ"),
        store.Incident("bang-day", f"{c}:200", T0 + timedelta(minutes=100), "push", "sha256:" + "f" * 64, "lạ"),
        store.Incident("bang-day", f"{other}:5", T0 + timedelta(minutes=3), "push", "sha256:" + "1" * 64, "khác"),
        store.Incident("bang-keo", "idle:1715000000", T0 + timedelta(minutes=4), "poll", "sha256:" + "2" * 64, ""),
    ])
    return c, ids


async def test_the_report_answers_exact_figures(client: httpx.AsyncClient, keys: Keys, factory: Factory,
                                                settings: Settings, clock: FakeClock) -> None:
    c, ids = await log_of_two_boards(client, keys, factory, settings)
    a, b, unused = ids
    body = await report(client, keys, c)

    assert body["name"] == "Kỷ niệm 70 năm Chiến thắng Điện Biên Phủ" and body["timezone"] == "Asia/Ho_Chi_Minh"
    # The window clipped to now (the fake clock: 07:00 local on 7 May).
    assert (body["starts_at"], body["ends_at"]) == ("2024-05-01T00:00:00Z", "2024-05-07T00:00:00Z")
    assert body["campaign_ends_at"] == "2024-06-01T00:00:00Z" and body["generated_at"] == "2024-05-07T00:00:00Z"
    # 230 + 240 slots shown; bang-day: 23 failed and 10 missed of 240 meant for push;
    # bang-keo polled 60 of its 240. The other campaign's 50 rows are not counted.
    assert body["totals"] == {"slots": 470, "seconds": 14100.0, "missed": 10, "missed_seconds": 300.0,
                              "delivered_ratio": 0.8625, "polled_ratio": 0.25, "boards": 2, "slogans": 2,
                              "incidents": 2}
    # a: 115 on bang-day + 160 on bang-keo; b: 115 + 80; the third slogan is in the playlist, never shown.
    assert [(s["slogan_id"], s["slots"], s["seconds"], s["missed"], s["share"]) for s in body["slogans"]] == [
        (a, 275, 8250.0, 5, 0.5851), (b, 195, 5850.0, 5, 0.4149), (unused, 0, 0.0, 0, 0.0)]
    assert body["slogans"][0]["text"].startswith("Nhiệt liệt chào mừng 70 năm")
    assert body["boards"] == [
        {"board_id": "bang-day", "name": "Bảng sảnh chính", "location": "Tầng 1", "delivery": "push", "slots": 230,
         "seconds": 6900.0, "missed": 10, "delivered_ratio": 0.8625, "polled_ratio": None, "incidents": 2},
        {"board_id": "bang-keo", "name": "Bảng bang-keo", "location": None, "delivery": "poll", "slots": 240,
         "seconds": 7200.0, "missed": 0, "delivered_ratio": None, "polled_ratio": 0.25, "incidents": 0},
    ]
    # 23:00-24:00 local on 6 May, then 00:00-01:00 on 7 May.
    assert body["days"] == [{"date": "2024-05-06", "slots": 240, "seconds": 7200.0, "missed": 0},
                            {"date": "2024-05-07", "slots": 230, "seconds": 6900.0, "missed": 10}]
    # Only incidents in this campaign's slots, newest first; not another campaign's, not an idle stretch's.
    assert [(i["board_id"], i["board_name"], i["at"]) for i in body["incidents"]] == [
        ("bang-day", "Bảng sảnh chính", "2024-05-06T17:40:00Z"),
        ("bang-day", "Bảng sảnh chính", "2024-05-06T16:03:00Z")]

    assert body["created_by"] == "Chuyên viên A"
    assert [(x["name"], x["roles"], x["actions"]) for x in body["actors"]] == [
        ("Chuyên viên A", ["editor"], ["campaign.create"]), ("Chuyên viên B", ["editor"], ["campaign.update"]),
        ("Quản trị", ["admin"], ["campaign.pause", "campaign.resume"])]
    assert body["approvers"] == [{"name": "Lãnh đạo Sở", "references": [], "slogan_ids": sorted(ids)}]


async def test_the_report_agrees_with_the_airtime_report(client: httpx.AsyncClient, keys: Keys, factory: Factory,
                                                         settings: Settings) -> None:
    c, _ = await log_of_two_boards(client, keys, factory, settings)
    body = await report(client, keys, c)
    for by, rows, key in [("slogan", body["slogans"], "slogan_id"), ("board", body["boards"], "board_id"),
                          ("day", body["days"], "date")]:
        response = await client.get("/api/v1/reports/airtime", params={"campaign_id": c, "by": by},
                                    headers=keys.auth("operator"))
        airtime = {r["key"]: r for r in response.json()["items"]}
        for row in rows:
            expected = airtime.get(str(row[key]), {"slots": 0, "seconds": 0.0, "missed": 0})
            assert (row["slots"], row["seconds"], row["missed"]) == (
                expected["slots"], expected["seconds"], expected["missed"]), (by, row)
            if by == "board":
                assert (row["delivered_ratio"], row["polled_ratio"]) == (
                    expected["delivered_ratio"], expected["polled_ratio"])


async def test_from_and_to_narrow_the_period(client: httpx.AsyncClient, keys: Keys, factory: Factory,
                                             settings: Settings) -> None:
    c, _ = await log_of_two_boards(client, keys, factory, settings)
    # From midnight local: bang-day's slots 120..239 (10 of them missed), bang-keo's 120..239.
    body = await report(client, keys, c, **{"from": "2024-05-07T00:00:00+07:00"})
    assert body["starts_at"] == "2024-05-06T17:00:00Z"
    assert (body["totals"]["slots"], body["totals"]["seconds"], body["totals"]["missed"]) == (230, 6900.0, 10)
    assert body["totals"]["polled_ratio"] == 0.0 and body["totals"]["incidents"] == 1
    assert [d["date"] for d in body["days"]] == ["2024-05-07"]
    # A `to` past the window or now is clipped; a `from` before the window too.
    wide = await report(client, keys, c, **{"from": "2020-01-01T00:00:00Z", "to": "2030-01-01T00:00:00Z"})
    assert (wide["starts_at"], wide["ends_at"]) == ("2024-05-01T00:00:00Z", "2024-05-07T00:00:00Z")
    early = await report(client, keys, c, to="2024-05-06T16:30:00Z")
    assert (early["totals"]["slots"], early["totals"]["incidents"]) == (120, 1)
    # A period that misses the window is empty, not an error.
    after = await report(client, keys, c, **{"from": "2024-07-01T00:00:00Z"})
    assert after["starts_at"] == after["ends_at"] and after["totals"]["slots"] == 0
    assert after["totals"]["delivered_ratio"] is None and after["boards"] == [] and after["days"] == []
    assert all(s["share"] is None for s in after["slogans"])


async def test_errors_and_roles(client: httpx.AsyncClient, keys: Keys, factory: Factory) -> None:
    c = (await factory.campaign())["id"]
    for who in ("admin", "editor", "approver", "operator"):
        assert (await report(client, keys, c, who=who))["campaign_id"] == c
    assert (await client.get(f"/api/v1/reports/campaigns/{c}")).status_code == 401
    for missing in (99999, 0, 2**40):
        response = await client.get(f"/api/v1/reports/campaigns/{missing}", headers=keys.auth("operator"))
        assert response.status_code in (404, 422), response.text
        assert set(response.json()) == {"error", "detail"}
    assert (await client.get("/api/v1/reports/campaigns/99999", headers=keys.auth("operator"))).status_code == 404
    backwards = await client.get(f"/api/v1/reports/campaigns/{c}", headers=keys.auth("operator"),
                                 params={"from": "2024-05-07T00:00:00Z", "to": "2024-05-06T00:00:00Z"})
    assert backwards.status_code == 422 and backwards.json()["error"] == "invalid_input"
    naive = await client.get(f"/api/v1/reports/campaigns/{c}", headers=keys.auth("operator"),
                             params={"from": "2024-05-07T00:00:00"})
    assert naive.status_code == 422


async def test_a_deleted_campaign_keeps_its_report(client: httpx.AsyncClient, keys: Keys, factory: Factory,
                                                   settings: Settings) -> None:
    c, _ = await log_of_two_boards(client, keys, factory, settings)
    assert (await client.delete(f"/api/v1/campaigns/{c}", headers=keys.auth("editor"))).status_code == 204
    body = await report(client, keys, c)
    assert body["deleted"] is True and body["totals"]["slots"] == 470
    assert "campaign.delete" in body["actors"][0]["actions"]


async def test_a_campaign_not_started_has_an_empty_report(client: httpx.AsyncClient, keys: Keys,
                                                          factory: Factory) -> None:
    c = (await factory.campaign(starts_at="2024-06-01T00:00:00Z", ends_at="2024-07-01T00:00:00Z"))["id"]
    body = await report(client, keys, c)
    assert body["starts_at"] == body["ends_at"] == "2024-06-01T00:00:00Z"
    assert body["totals"] == {"slots": 0, "seconds": 0.0, "missed": 0, "missed_seconds": 0.0,
                              "delivered_ratio": None, "polled_ratio": None, "boards": 0, "slogans": 0,
                              "incidents": 0}
    assert len(body["slogans"]) == 3  # the playlist, each at zero


async def test_incidents_are_listed_up_to_a_hundred_and_all_counted(client: httpx.AsyncClient, keys: Keys,
                                                                    factory: Factory, settings: Settings) -> None:
    c = (await factory.campaign())["id"]
    await incidents(settings, [store.Incident("bang-x", f"{c}:{k}", T0 + timedelta(seconds=30 * k), "poll",
                                              f"sha256:{k:064x}", "") for k in range(105)])
    body = await report(client, keys, c)
    assert body["totals"]["incidents"] == 105 and len(body["incidents"]) == 100
    assert body["incidents"][0]["at"] == (T0 + timedelta(seconds=30 * 104)).isoformat().replace("+00:00", "Z")
    assert body["incidents"][0]["board_name"] == "bang-x"  # a board that no longer exists keeps its id
