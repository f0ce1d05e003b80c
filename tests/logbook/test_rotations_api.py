"""The rotation log and airtime report through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import update

from displayd.config import Settings
from displayd.db.models import Rotation
from displayd.db.session import create_engine, create_sessionmaker
from displayd.logbook import store
from displayd.logbook.store import NewRow
from tests.conftest import Keys
from tests.factories import Factory

T0 = datetime(2024, 5, 6, 16, 0, tzinfo=UTC)  # 23:00 in Hà Nội


def slot_rows(board_id: str, campaign_id: int, slogans: list[int], first: int, count: int, *,
              status: str = "delivered", dwell: int = 30) -> list[NewRow]:
    return [NewRow(board_id, campaign_id, k, slogans[k % len(slogans)], f"sha256:{k:064x}",
                   T0 + timedelta(seconds=dwell * k), T0 + timedelta(seconds=dwell * (k + 1)), status)
            for k in range(first, first + count)]


async def write(settings: Settings, rows: list[NewRow]) -> None:
    engine = create_engine(settings)
    async with create_sessionmaker(engine)() as session, session.begin():
        await store.insert_rows(session, rows)
    await engine.dispose()


async def test_keyset_pages_neither_skip_nor_repeat_while_rows_arrive(
    client: httpx.AsyncClient, keys: Keys, settings: Settings
) -> None:
    await write(settings, slot_rows("bang-a", 1, [1, 2, 3], 0, 100_000))
    seen: list[int] = []
    cursor: str | None = None
    next_slot = 100_000
    while True:
        params: dict[str, object] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/api/v1/rotations", params=params, headers=keys.auth("operator"))
        assert response.status_code == 200
        body = response.json()
        seen += [item["id"] for item in body["items"]]
        if len(seen) < 100_000 and len(seen) % 20_000 == 0:  # the leader writes on while we read
            await write(settings, slot_rows("bang-a", 1, [1, 2, 3], next_slot, 500))
            next_slot += 500
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "no row twice"
    assert seen == sorted(seen)
    assert len(seen) == next_slot, "every row, including those that arrived during the read"


async def test_filters(client: httpx.AsyncClient, keys: Keys, settings: Settings) -> None:
    await write(settings, slot_rows("bang-a", 1, [1, 2], 0, 10) + slot_rows("bang-b", 2, [3], 0, 5, status="missed"))
    async def ids(**params: object) -> list[tuple[str, int]]:
        response = await client.get("/api/v1/rotations", params=params, headers=keys.auth("operator"))
        assert response.status_code == 200, response.text
        return [(i["board_id"], i["slot_index"]) for i in response.json()["items"]]
    assert len(await ids(board_id="bang-a")) == 10
    assert await ids(campaign_id=2) == [("bang-b", k) for k in range(5)]
    assert await ids(slogan_id=2) == [("bang-a", k) for k in (1, 3, 5, 7, 9)]
    assert len(await ids(status="missed")) == 5
    window = await ids(**{"from": (T0 + timedelta(seconds=60)).isoformat(), "to": "2024-05-06T16:02:00Z"})
    assert window == [("bang-a", 2), ("bang-a", 3), ("bang-b", 2), ("bang-b", 3)]
    bad = await client.get("/api/v1/rotations", params={"status": "lost"}, headers=keys.auth("operator"))
    assert bad.status_code == 422
    backwards = await client.get("/api/v1/rotations", headers=keys.auth("operator"),
                                 params={"from": "2024-05-07T00:00:00Z", "to": "2024-05-06T00:00:00Z"})
    assert backwards.status_code == 422


async def test_csv_has_a_bom_and_every_row(client: httpx.AsyncClient, keys: Keys, settings: Settings) -> None:
    await write(settings, slot_rows("bảng-thử", 1, [1], 0, 12_345))
    for headers, params in [({"Accept": "text/csv"}, {}), ({}, {"format": "csv"})]:
        response = await client.get("/api/v1/rotations", params={"board_id": "bảng-thử", **params},
                                    headers={**keys.auth("operator"), **headers})
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        assert "attachment" in response.headers["content-disposition"]
        assert response.content.startswith(b"\xef\xbb\xbf")
        table = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        assert table[0][:4] == ["id", "board_id", "campaign_id", "slot_index"]
        assert len(table) == 1 + 12_345
        assert table[1][1] == "bảng-thử" and table[1][6] == "2024-05-06T16:00:00Z"


# The rotation CSV's columns, in the places scripts rely on: the API's first columns, the
# names beside the ids, then the API's columns added since.
CSV_HEADER = ["id", "board_id", "campaign_id", "slot_index", "slogan_id", "content_hash", "starts_at", "ends_at",
              "push_status", "attempts", "http_status", "latency_ms", "error", "delivered_at", "first_polled_at",
              "board_name", "campaign_name", "slogan_text", "revisions"]


async def test_every_row_says_how_many_revisions_of_its_slot_were_sent(
    client: httpx.AsyncClient, keys: Keys, factory: Factory, settings: Settings
) -> None:
    slogans = await factory.approved_ids()
    campaign = await factory.campaign()
    await factory.board("bang-a")
    await write(settings, slot_rows("bang-a", campaign["id"], slogans, 0, 3))
    engine = create_engine(settings)
    async with create_sessionmaker(engine)() as session, session.begin():
        # Slot 1 was sent three times: the first send and two changes within it.
        await session.execute(update(Rotation).where(Rotation.slot_index == 1).values(revisions=2))
    await engine.dispose()

    response = await client.get("/api/v1/rotations", headers=keys.auth("operator"))
    assert response.status_code == 200, response.text
    assert [(i["slot_index"], i["revisions"]) for i in response.json()["items"]] == [(0, 0), (1, 2), (2, 0)]

    as_csv = await client.get("/api/v1/rotations", params={"format": "csv"}, headers=keys.auth("operator"))
    assert as_csv.status_code == 200
    table = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert table[0] == CSV_HEADER
    assert [(line[3], line[-1]) for line in table[1:]] == [("0", "0"), ("1", "2"), ("2", "0")]
    assert table[2][15] == "Bảng bang-a", "the names keep their places"


async def test_airtime_by_slogan_board_and_day(client: httpx.AsyncClient, keys: Keys, factory: Factory,
                                               settings: Settings) -> None:
    ids = await factory.approved_ids()
    campaign = await factory.campaign()
    await factory.board("bang-day", delivery="push", endpoint_url="http://127.0.0.1:9/")
    await factory.board("bang-keo", delivery="poll")
    c = campaign["id"]
    # 240 slots of 30 s from 23:00 local: 120 on 6 May (until midnight), 120 on 7 May.
    await write(settings, slot_rows("bang-day", c, ids[:2], 0, 230) + slot_rows("bang-day", c, ids[:2], 230, 10,
                                                                                 status="missed")
                + slot_rows("bang-keo", c, ids[:2], 0, 240, status="not_pushed"))
    engine = create_engine(settings)
    async with create_sessionmaker(engine)() as session, session.begin():
        await session.execute(update(Rotation).where(Rotation.board_id == "bang-keo", Rotation.slot_index < 60)
                              .values(first_polled_at=T0))
        await session.execute(update(Rotation).where(Rotation.board_id == "bang-day", Rotation.slot_index < 23)
                              .values(push_status="failed"))
    await engine.dispose()

    async def report(**params: object) -> list[dict[str, object]]:
        response = await client.get("/api/v1/reports/airtime", params={"campaign_id": c, **params},
                                    headers=keys.auth("operator"))
        assert response.status_code == 200, response.text
        items: list[dict[str, object]] = response.json()["items"]
        return items

    by_board = {r["key"]: r for r in await report(by="board")}
    assert by_board["bang-day"]["slots"] == 230 and by_board["bang-day"]["missed"] == 10
    assert by_board["bang-day"]["seconds"] == 230 * 30
    assert by_board["bang-day"]["delivered_ratio"] == round(207 / 240, 4)
    assert by_board["bang-day"]["polled_ratio"] is None
    assert by_board["bang-keo"]["polled_ratio"] == 0.25 and by_board["bang-keo"]["delivered_ratio"] is None
    assert by_board["bang-keo"]["label"] == "Bảng bang-keo"
    by_slogan = await report(by="slogan")
    assert [r["key"] for r in by_slogan] == [str(ids[0]), str(ids[1])]
    assert sum(int(r["slots"]) for r in by_slogan) == 470  # type: ignore[call-overload]
    assert by_slogan[0]["label"] == "Nhiệt liệt chào mừng 70 năm Chiến thắng Điện Biên Phủ (07/5/1954 - 07/5/2024)!"
    by_day = await report(by="day")
    assert [(r["key"], r["slots"]) for r in by_day] == [("2024-05-06", 240), ("2024-05-07", 230)]
    ranged = await report(by="day", **{"from": "2024-05-06T17:00:00Z"})
    assert [(r["key"], r["slots"]) for r in ranged] == [("2024-05-07", 230)]
    as_csv = await client.get("/api/v1/reports/airtime", params={"campaign_id": c, "by": "slogan", "format": "csv"},
                              headers=keys.auth("operator"))
    text = as_csv.content.decode("utf-8-sig")
    assert as_csv.content.startswith(b"\xef\xbb\xbf") and "Nhiệt liệt chào mừng" in text
    assert text.splitlines()[0] == ("key,label,slots,seconds,missed,delivered_ratio,polled_ratio,campaign_id,"
                                    "campaign_name,slogan_text")
    missing = await client.get("/api/v1/reports/airtime", params={"campaign_id": 99999}, headers=keys.auth("operator"))
    assert missing.status_code == 404
