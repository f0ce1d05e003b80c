"""Every CSV cell that a spreadsheet would run as a formula is neutralised with a leading `'`."""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from displayd.exports import csv_cell
from tests.conftest import Keys
from tests.factories import Factory
from tests.logbook.test_rotations_api import slot_rows, write

FORMULAS = ["=HYPERLINK(\"http://x\",\"Bấm\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1+1"]


@pytest.mark.parametrize("value", FORMULAS)
def test_a_cell_that_starts_like_a_formula_is_text(value: str) -> None:
    assert csv_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["Chiến thắng Điện Biên Phủ", "a=b", "1-2", "", "'already"])
def test_other_cells_are_untouched(value: str) -> None:
    assert csv_cell(value) == value


def _table(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


async def test_exports_neutralise_slogans_and_board_names(client: httpx.AsyncClient, keys: Keys, factory: Factory,
                                                          settings: object) -> None:
    slogan = await factory.approved("=HYPERLINK(\"http://ke-xau.example\",\"Xem\")")
    campaign = await factory.campaign(playlist_ids=[slogan["id"]])
    await factory.board("bang-a", name="@Bảng độc hại")
    await write(settings, slot_rows("bang-a", campaign["id"], [slogan["id"]], 0, 3))  # type: ignore[arg-type]
    params = {"campaign_id": campaign["id"], "format": "csv"}
    by_slogan = _table(await client.get("/api/v1/reports/airtime", params={**params, "by": "slogan"},
                                        headers=keys.auth("operator")))
    assert by_slogan[1][1] == "'" + slogan["text"]
    by_board = _table(await client.get("/api/v1/reports/airtime", params={**params, "by": "board"},
                                       headers=keys.auth("operator")))
    assert by_board[1][1] == "'@Bảng độc hại"
    every_cell = [cell for row in by_slogan + by_board for cell in row]
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in every_cell)
    rotations = _table(await client.get("/api/v1/rotations", params={"format": "csv"}, headers=keys.auth("operator")))
    assert len(rotations) == 4
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rotations for cell in row)
