"""Boards by the hundred: `displayd boards import FILE` and `POST /api/v1/boards/import`."""

from __future__ import annotations

import asyncio
import csv
import stat
from pathlib import Path

import httpx
import pytest

from displayd.config import Settings
from tests.cli import run_displayd
from tests.conftest import Keys, count_rows

# The test app's own settings, so the CLI derives the same push secrets as the app.
NETWORKS = {"DISPLAYD_ALLOWED_BOARD_NETWORKS": '["127.0.0.0/8"]',
            "DISPLAYD_SECRET_KEY": "test-secret-key-0123456789abcdef0123456789"}
CSV_HEADER = "id,name,location,groups,delivery,endpoint_url,max_chars,lines,enabled\n"
CSV_ROWS = [
    "bang-ubnd,Bảng UBND tỉnh,Quảng trường,trung-tam;ubnd,poll,,40,2,true\n",
    "bang-so-tttt,Bảng Sở TT&TT,,trung-tam,push,http://127.0.0.1:9/show,32,3,có\n",
    "bang-cho,\"Bảng chợ trung tâm, cổng chính\",Chợ,,poll,,20,1,false\n",
]


def credential_files(folder: Path, pattern: str) -> list[Path]:
    return list(folder.glob(pattern))


async def current(client: httpx.AsyncClient, board_id: str, token: str) -> int:
    """The poll's status once this process saw the CLI's change (within change_poll_seconds)."""
    for _ in range(50):
        response = await client.get(f"/api/v1/boards/{board_id}/current", headers={"Authorization": f"Bearer {token}"})
        if response.status_code == 200:
            break
        await asyncio.sleep(0.1)
    return response.status_code


async def test_a_csv_file_creates_then_updates_boards_with_credentials_in_a_private_file(
    settings: Settings, client: httpx.AsyncClient, keys: Keys, tmp_path: Path,
) -> None:
    source = tmp_path / "bang.csv"
    source.write_text("\ufeff" + CSV_HEADER + "".join(CSV_ROWS), encoding="utf-8")
    credentials = tmp_path / "out" / "creds.csv"
    credentials.parent.mkdir()
    made = run_displayd("boards", "import", str(source), "--credentials", str(credentials),
                        database_url=settings.database_url, env=NETWORKS)
    assert "boards: 3 created, 0 updated" in made.stdout
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    rows = list(csv.DictReader(credentials.open(encoding="utf-8")))
    assert [r["board_id"] for r in rows] == ["bang-ubnd", "bang-so-tttt", "bang-cho"]
    for row in rows:
        assert row["token"] not in made.stdout + made.stderr and row["secret"] not in made.stdout + made.stderr
        assert row["secret"].startswith("whsec_")
    assert await current(client, "bang-ubnd", rows[0]["token"]) == 200

    listed = {b["id"]: b for b in (await client.get("/api/v1/boards", headers=keys.auth("operator"))).json()["items"]}
    assert listed["bang-ubnd"]["groups"] == ["trung-tam", "ubnd"] and listed["bang-ubnd"]["location"] == "Quảng trường"
    assert listed["bang-so-tttt"]["lines"] == 3 and listed["bang-so-tttt"]["delivery"] == "push"
    assert listed["bang-cho"]["name"] == "Bảng chợ trung tâm, cổng chính" and not listed["bang-cho"]["enabled"]

    changed = CSV_HEADER + CSV_ROWS[0].replace("Bảng UBND tỉnh", "Bảng UBND tỉnh (mới)") + "".join(CSV_ROWS[1:])
    source.write_text(changed, encoding="utf-8")
    again = run_displayd("boards", "import", str(source), database_url=settings.database_url, env=NETWORKS)
    assert "boards: 0 created, 3 updated" in again.stdout and "credentials" not in again.stdout
    assert not credential_files(tmp_path, "bang-credentials-*.csv"), "no credentials file when no board is new"
    assert await current(client, "bang-ubnd", rows[0]["token"]) == 200, "an update keeps the credentials"
    board = (await client.get("/api/v1/boards/bang-ubnd", headers=keys.auth("operator"))).json()
    assert board["name"] == "Bảng UBND tỉnh (mới)"


@pytest.mark.parametrize(("name", "content", "problem"), [
    ("bad.csv", CSV_HEADER + CSV_ROWS[0] + "bang-2,Hai,,,poll,,bốn mươi,2,true\n", "line 3: max_chars"),
    ("bad.csv", CSV_HEADER + CSV_ROWS[0] + CSV_ROWS[0], "line 3: board bang-ubnd is already line 2"),
    ("bad.csv", "id,name,colour\nbang-1,Một,đỏ\n", "line 1: unknown column(s) colour"),
    ("bad.yaml", "boards:\n  - {id: bang-1, name: Một, delivery: poll}\n  - id: bang-2\n    name: Hai\n"
                 "    delivery: push\n", "line 3: delivery 'push' needs an endpoint_url"),
    ("bad.yaml", "- {id: bang-1, name: Một, delivery: poll}\n- {id: Bang Hai, name: Hai}\n", "line 2: id"),
    ("bad.csv", "id,name,delivery,lead_seconds\nbang-1,Một,poll,30\nbang-2,Hai,poll,301\n", "line 3: lead_seconds"),
    ("bad.csv", "id,name,delivery,lead_seconds\nbang-1,Một,poll,nửa phút\n", "line 2: lead_seconds"),
    ("bad.yaml", "- {id: bang-1, name: Một, delivery: poll, lead_seconds: '30'}\n", "line 1: lead_seconds"),
    ("bad.csv", "id,name,delivery,endpoint_url\nbang-1,Một,poll,\nbang-2,Hai,stream,http://127.0.0.1:9/show\n",
     "line 3: endpoint_url: stream boards are not pushed to"),
])
async def test_one_bad_line_rejects_the_whole_file_by_its_number(
    settings: Settings, tmp_path: Path, name: str, content: str, problem: str,
) -> None:
    source = tmp_path / name
    source.write_text(content, encoding="utf-8")
    result = run_displayd("boards", "import", str(source), database_url=settings.database_url, env=NETWORKS,
                          check=False)
    assert result.returncode != 0 and problem in result.stderr, result.stderr
    assert "nothing was imported" in result.stderr
    assert await count_rows(settings, "board") == 0
    assert not credential_files(tmp_path, "*credentials*"), "no credentials for boards that do not exist"


async def test_the_api_imports_a_thousand_boards_as_one_change(
    settings: Settings, client: httpx.AsyncClient, keys: Keys,
) -> None:
    version, audited = await count_version(settings), await count_rows(settings, "audit_event")
    boards = [{"id": f"bang-{n:04d}", "name": f"Bảng số {n}", "delivery": "poll", "groups": [f"xa-{n % 10}"]}
              for n in range(1000)]
    response = await client.post("/api/v1/boards/import", json={"boards": boards}, headers=keys.auth("admin"))
    assert response.status_code == 201, response.text
    created = response.json()["created"]
    assert len(created) == 1000 and response.json()["updated"] == []
    assert await count_version(settings) == version + 1, "one change, one snapshot rebuild everywhere"
    poll = await client.get("/api/v1/boards/bang-0999/current",
                            headers={"Authorization": f"Bearer {created[999]['token']}"})
    assert poll.status_code == 200, "this process rebuilt its snapshot at once"
    assert await count_rows(settings, "audit_event") == audited + 1000, "each board audited"

    boards[500]["max_chars"] = "40"  # a string where a number belongs
    extra = {"id": "bang-moi", "name": "Mới", "delivery": "poll"}
    refused = await client.post("/api/v1/boards/import", json={"boards": [*boards, extra]}, headers=keys.auth("admin"))
    assert refused.status_code == 422 and refused.json()["detail"].startswith("item 501: max_chars"), refused.text
    assert await count_rows(settings, "board") == 1000, "nothing written"

    editor = await client.post("/api/v1/boards/import", json={"boards": boards[:1]}, headers=keys.auth("editor"))
    assert editor.status_code == 403


async def test_files_carry_lead_seconds_and_stream_boards(
    settings: Settings, client: httpx.AsyncClient, keys: Keys, tmp_path: Path,
) -> None:
    source = tmp_path / "bang.csv"
    source.write_text("id,name,delivery,endpoint_url,lead_seconds\n"
                      "bang-som,Bảng đẩy sớm,push,http://127.0.0.1:9/show,45\n"
                      "bang-4g,Bảng qua 4G,stream,,5\n"
                      "bang-keo,Bảng tự lấy,poll,,\n", encoding="utf-8")
    made = run_displayd("boards", "import", str(source), "--credentials", str(tmp_path / "creds.csv"),
                        database_url=settings.database_url, env=NETWORKS)
    assert "boards: 3 created, 0 updated" in made.stdout

    async def boards() -> dict[str, tuple[str, str | None, int]]:
        listed = (await client.get("/api/v1/boards", headers=keys.auth("operator"))).json()["items"]
        return {b["id"]: (b["delivery"], b["endpoint_url"], b["lead_seconds"]) for b in listed}

    assert await boards() == {"bang-som": ("push", "http://127.0.0.1:9/show", 45),
                              "bang-4g": ("stream", None, 5),
                              "bang-keo": ("poll", None, 0)}, "an empty cell is the default"

    update = tmp_path / "bang.yaml"
    update.write_text("boards:\n"
                      "  - {id: bang-som, name: Bảng đẩy sớm, delivery: stream, lead_seconds: 300}\n"
                      "  - {id: bang-4g, name: Bảng qua 4G, delivery: stream, lead_seconds: 0}\n",
                      encoding="utf-8")
    again = run_displayd("boards", "import", str(update), database_url=settings.database_url, env=NETWORKS)
    assert "boards: 0 created, 2 updated" in again.stdout
    changed = await boards()
    assert changed["bang-som"] == ("stream", None, 300), "a file's board replaces the fields, its URL too"
    assert changed["bang-4g"] == ("stream", None, 0)


async def test_the_api_import_takes_lead_seconds_as_a_number_only(
    settings: Settings, client: httpx.AsyncClient, keys: Keys,
) -> None:
    boards = [{"id": "bang-a", "name": "A", "delivery": "poll", "lead_seconds": 30},
              {"id": "bang-b", "name": "B", "delivery": "stream", "lead_seconds": 2},
              {"id": "bang-c", "name": "C", "delivery": "both", "endpoint_url": "http://127.0.0.1:9/show"}]
    for bad, problem in [({"lead_seconds": "30"}, "item 2: lead_seconds"),
                         ({"lead_seconds": 301}, "item 2: lead_seconds"),
                         ({"lead_seconds": -5}, "item 2: lead_seconds"),
                         ({"endpoint_url": "http://127.0.0.1:9/show"}, "item 2: endpoint_url: stream boards")]:
        refused = await client.post("/api/v1/boards/import", json={"boards": [boards[0], {**boards[1], **bad}]},
                                    headers=keys.auth("admin"))
        assert refused.status_code == 422 and refused.json()["detail"].startswith(problem), refused.text
        assert await count_rows(settings, "board") == 0, "nothing written"

    response = await client.post("/api/v1/boards/import", json={"boards": boards}, headers=keys.auth("admin"))
    assert response.status_code == 201, response.text
    assert [c["id"] for c in response.json()["created"]] == ["bang-a", "bang-b", "bang-c"]
    listed = (await client.get("/api/v1/boards", headers=keys.auth("operator"))).json()["items"]
    assert {b["id"]: (b["delivery"], b["lead_seconds"]) for b in listed} == {
        "bang-a": ("poll", 30), "bang-b": ("stream", 2), "bang-c": ("both", 0)}


async def count_version(settings: Settings) -> int:
    from sqlalchemy import text

    from displayd.db.session import create_engine

    engine = create_engine(settings)
    async with engine.connect() as connection:
        value = (await connection.execute(text("SELECT version FROM change_version"))).scalar_one()
    await engine.dispose()
    return int(value)
