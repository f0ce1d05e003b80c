"""`displayd campaigns import FILE`: the document's window, peak and anniversary as campaigns."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from displayd.config import Settings
from tests.cli import ROOT, run_displayd
from tests.conftest import Keys, count_rows
from tests.factories import Factory

SLOGANS_FILE = ROOT / "slogans" / "huong-dan-101-muc-IV.yaml"
NAME = "Kỷ niệm 70 năm Chiến thắng Điện Biên Phủ"


async def winner(client: httpx.AsyncClient, keys: Keys, board_id: str, local_noon: str) -> tuple[str, list[str]]:
    """The campaign on the board at noon (Hà Nội) that day, and an hour of its slogans.

    The command ran in another process: this one sees its campaigns within change_poll_seconds."""
    for _ in range(50):
        response = await client.get(f"/api/v1/boards/{board_id}/schedule", headers=keys.auth("operator"),
                                    params={"from": f"{local_noon}T05:00:00Z", "to": f"{local_noon}T06:00:00Z"})
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        if items:
            break
        await asyncio.sleep(0.1)
    assert {item["campaign_name"] for item in items} == {items[0]["campaign_name"]}
    return items[0]["campaign_name"], [item["text"] for item in items]


async def test_the_plan_becomes_three_campaigns_that_win_in_turn(
    settings: Settings, client: httpx.AsyncClient, keys: Keys, factory: Factory,
) -> None:
    await factory.board("bang-ubnd")
    first = run_displayd("campaigns", "import", str(SLOGANS_FILE), database_url=settings.database_url)
    assert "campaigns: 3 created" in first.stdout, first.stdout

    listed = (await client.get("/api/v1/campaigns", headers=keys.auth("operator"))).json()["items"]
    by_name = {c["name"]: c for c in listed}
    base, peak, day = by_name[NAME], by_name[f"{NAME} — cao điểm"], by_name[f"{NAME} — ngày kỷ niệm 07/5"]
    assert (base["starts_at"], base["ends_at"]) == ("2023-12-31T17:00:00Z", "2024-12-31T17:00:00Z")
    assert (peak["starts_at"], peak["ends_at"]) == ("2024-02-29T17:00:00Z", "2024-05-31T17:00:00Z")
    assert (day["starts_at"], day["ends_at"]) == ("2024-05-06T17:00:00Z", "2024-05-07T17:00:00Z")
    assert base["priority"] < peak["priority"] < day["priority"]
    assert all(c["targets"] == {"all": True} and c["timezone"] == "Asia/Ho_Chi_Minh" for c in listed)

    slogans = (await client.get("/api/v1/slogans", params={"status": "approved"},
                                headers=keys.auth("operator"))).json()["items"]
    numbered = {s["number"]: s["id"] for s in slogans}
    theme = next(s["id"] for s in slogans if "theme" in s["tags"])
    weights = {item["slogan_id"]: item["weight"] for item in day["playlist"]}
    assert weights[theme] == weights[numbered[1]] == 3 and weights[numbered[2]] == 1
    assert {item["slogan_id"] for item in base["playlist"]} == {s["id"] for s in slogans}

    assert (await winner(client, keys, "bang-ubnd", "2024-05-07"))[0] == day["name"]
    assert (await winner(client, keys, "bang-ubnd", "2024-04-01"))[0] == peak["name"]
    name, texts = await winner(client, keys, "bang-ubnd", "2024-08-01")
    assert name == base["name"] and len(set(texts)) == len(slogans), "the base cycles every slogan"

    audit_rows = await count_rows(settings, "audit_event")
    again = run_displayd("campaigns", "import", str(SLOGANS_FILE), database_url=settings.database_url)
    assert "campaigns: 0 created, 3 already there" in again.stdout and "slogans: 0 imported" in again.stdout
    assert await count_rows(settings, "campaign") == 3
    assert await count_rows(settings, "audit_event") == audit_rows, "running it twice changes nothing"


@pytest.mark.parametrize(("block", "problem"), [
    ("campaign: {name: X, window: {starts_on: 2024-01-01, ends_on: 2023-01-01}}", "ends before it starts"),
    ("campaign: {name: X, window: {starts_on: 2024-01-01, ends_on: 2024-12-31}, anniversary: 2025-05-07}",
     "anniversary must lie within"),
    ("campaign: {name: X, timezone: Mars/Olympus, window: {starts_on: 2024-01-01, ends_on: 2024-12-31}}",
     "not an IANA time zone"),
    ("campaign: {name: X, timezone: localtime, window: {starts_on: 2024-01-01, ends_on: 2024-12-31}}",
     "not an IANA time zone"),
    ("document: {code: X}", "no `campaign:` block"),
])
def test_a_bad_plan_is_refused_whole(tmp_path: Path, block: str, problem: str) -> None:
    bad = tmp_path / "plan.yaml"
    bad.write_text(f"{block}\ndocument: {{code: X}}\nslogans: [{{number: 1, text: Một}}]\n"
                   if not block.startswith("document") else f"{block}\nslogans: [{{number: 1, text: Một}}]\n",
                   encoding="utf-8")
    url = f"sqlite+aiosqlite:///{tmp_path / 'plan.db'}"
    run_displayd("db", "upgrade", database_url=url)
    result = run_displayd("campaigns", "import", str(bad), database_url=url, check=False)
    assert result.returncode != 0 and problem in result.stderr, result.stderr
    assert "created" not in result.stdout
