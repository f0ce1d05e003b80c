"""Readable exports: the rotation and airtime CSVs name the boards, campaigns and slogans
beside their ids, looked up once per batch (not per row), neutralised like every cell."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import event

from displayd.config import Settings
from displayd.logbook import queries
from displayd.runtime import runtime_of
from tests.conftest import Keys
from tests.factories import Factory
from tests.logbook.test_rotations_api import slot_rows, write


def table(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


class Statements:
    """The SQL statements an app's engine runs while counting."""

    def __init__(self, app: FastAPI) -> None:
        self.seen: list[str] = []
        self.engine = runtime_of(app).engine.sync_engine
        event.listen(self.engine, "before_cursor_execute", self.note)

    def note(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.seen.append(statement)

    def looking_up(self, table_name: str) -> int:
        """Statements that look rows of a table up by id (not the snapshot's reloads of every board)."""
        return sum(1 for s in self.seen if f"FROM {table_name} " in s and f"WHERE {table_name}.id IN" in s)

    def stop(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self.note)


async def test_the_rotation_csv_names_boards_campaigns_and_slogans_once_per_batch(
    client: httpx.AsyncClient, keys: Keys, factory: Factory, settings: Settings, app: FastAPI
) -> None:
    slogans = await factory.approved_ids()
    risky = await factory.approved("-Chiến thắng Điện Biên Phủ!")
    base = await factory.campaign("Đợt cả năm 2024")
    peak = await factory.campaign("=Cao điểm", playlist_ids=[risky["id"]])
    await factory.board("bang-a", name="Bảng sảnh chính")
    await factory.board("bang-b", name="+Bảng cổng")
    gone = await factory.board("bang-c", name="Bảng đã gỡ")
    await write(settings, slot_rows("bang-a", base["id"], slogans, 0, 6000)
                + slot_rows("bang-b", peak["id"], [risky["id"]], 0, 6000)
                + slot_rows("bang-c", base["id"], slogans, 0, 10))
    deleted = await client.delete(f"/api/v1/boards/{gone['id']}", headers=keys.auth("admin"))
    assert deleted.status_code == 204, deleted.text

    statements = Statements(app)
    try:
        rows = table(await client.get("/api/v1/rotations", params={"format": "csv"}, headers=keys.auth("operator")))
    finally:
        statements.stop()

    assert len(rows) == 12_010
    assert list(rows[0])[15:18] == ["board_name", "campaign_name", "slogan_text"]
    assert list(rows[0])[:4] == ["id", "board_id", "campaign_id", "slot_index"], "the API's columns keep their places"
    assert list(rows[0])[18:] == ["revisions"], "columns added later come after the names, so none moves"
    texts = dict(zip(slogans, [(await client.get(f"/api/v1/slogans/{i}", headers=keys.auth("operator"))).json()["text"]
                               for i in slogans], strict=True))
    named = {(r["board_id"], r["board_name"], r["campaign_id"], r["campaign_name"], r["slogan_id"], r["slogan_text"])
             for r in rows}
    assert named == {
        *(("bang-a", "Bảng sảnh chính", str(base["id"]), "Đợt cả năm 2024", str(i), texts[i]) for i in slogans),
        ("bang-b", "'+Bảng cổng", str(peak["id"]), "'=Cao điểm", str(risky["id"]), "'" + risky["text"]),
        *(("bang-c", "Bảng đã gỡ", str(base["id"]), "Đợt cả năm 2024", str(i), texts[i]) for i in slogans),
    }, "names beside the ids, a deleted board's too, formulas neutralised"
    batches = -(-12_010 // queries.STREAM_BATCH)
    for name in ("board", "campaign", "slogan"):
        assert 1 <= statements.looking_up(name) <= batches, (name, "looked up per batch, not per row")


async def test_the_airtime_csv_names_its_campaign_and_what_each_line_is(
    client: httpx.AsyncClient, keys: Keys, factory: Factory, settings: Settings
) -> None:
    slogans = await factory.approved_ids()
    campaign = await factory.campaign("@Đợt kỷ niệm")
    await factory.board("bang-a", name="Bảng sảnh chính")
    await write(settings, slot_rows("bang-a", campaign["id"], slogans[:1], 0, 4))
    params = {"campaign_id": campaign["id"], "format": "csv"}

    by_slogan = table(await client.get("/api/v1/reports/airtime", params={**params, "by": "slogan"},
                                       headers=keys.auth("operator")))
    [line] = by_slogan
    assert line["key"] == str(slogans[0]) and line["slots"] == "4"
    assert line["campaign_id"] == str(campaign["id"]) and line["campaign_name"] == "'@Đợt kỷ niệm"
    assert line["slogan_text"] == line["label"] and "Điện Biên Phủ" in line["slogan_text"]
    [line] = table(await client.get("/api/v1/reports/airtime", params={**params, "by": "board"},
                                    headers=keys.auth("operator")))
    assert (line["key"], line["board_name"], line["campaign_name"]) == ("bang-a", "Bảng sảnh chính", "'@Đợt kỷ niệm")
    [line] = table(await client.get("/api/v1/reports/airtime", params={"format": "csv", "by": "day"},
                                    headers=keys.auth("operator")))
    assert (line["key"], line["campaign_id"], line["campaign_name"]) == ("2024-05-06", "", "")
