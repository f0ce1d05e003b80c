"""Stricter input, through the API: bounded dates, IANA zones only, targets that exist, JSON
numbers that are numbers, and no text that renders as nothing.

Each refusal is a 422 `{"error", "detail"}` whose detail names the field (or the missing
boards and groups), and nothing is written.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from displayd import rotation
from displayd.auth.roles import cli_principal
from displayd.campaigns import service as campaigns
from displayd.config import Settings
from displayd.db.session import create_engine, create_sessionmaker
from displayd.errors import InvalidInput
from tests.conftest import FakeClock, Keys, count_rows
from tests.factories import Factory

CAMPAIGNS = "/api/v1/campaigns"


def _refused(response: httpx.Response, *named: str) -> str:
    assert response.status_code == 422, response.text
    body = response.json()
    assert set(body) == {"error", "detail"} and body["error"] == "invalid_input", body
    for name in named:
        assert name in body["detail"], (name, body["detail"])
    return str(body["detail"])


async def _create(client: httpx.AsyncClient, keys: Keys, factory: Factory, **fields: Any) -> httpx.Response:
    body = {**factory.campaign_body("Đợt thử", await factory.approved_ids()), **fields}
    return await client.post(CAMPAIGNS, json=body, headers=keys.auth("editor"))


# --- Bounded dates -------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"starts_at": "1999-12-31T00:00:00Z"}, "starts_at"),
        ({"starts_at": "1999-12-31T23:59:59.999999Z"}, "starts_at"),
        ({"starts_at": "2000-01-01T06:59:59+07:00"}, "starts_at"),  # 1999-12-31T23:59:59Z
        ({"ends_at": "2100-01-01T00:00:00.000001Z"}, "ends_at"),
        ({"ends_at": "2100-01-01T00:00:00-01:00"}, "ends_at"),
        ({"starts_at": "0001-01-01T00:00:00Z", "ends_at": "9999-12-31T23:59:59Z"}, "starts_at"),
    ],
)
async def test_a_campaign_window_outside_the_span_is_422_naming_the_field(
    client: httpx.AsyncClient, keys: Keys, factory: Factory, settings: Settings, fields: dict[str, str], field: str,
) -> None:
    detail = _refused(await _create(client, keys, factory, **fields), field, "2000-01-01", "2100-01-01")
    assert detail.startswith(f"{field}:")
    assert await count_rows(settings, "campaign") == 0


async def test_a_campaign_edit_outside_the_span_is_422_and_changes_nothing(
    client: httpx.AsyncClient, keys: Keys, factory: Factory,
) -> None:
    campaign = await factory.campaign()
    url = f"{CAMPAIGNS}/{campaign['id']}"
    _refused(await client.patch(url, json={"ends_at": "2100-01-02T00:00:00Z"}, headers=keys.auth("editor")),
             "ends_at")
    assert (await client.get(url, headers=keys.auth("editor"))).json() == campaign


async def test_the_whole_span_in_the_zone_furthest_ahead_plans_to_its_last_slot(
    client: httpx.AsyncClient, keys: Keys, factory: Factory, clock: FakeClock,
) -> None:
    """Both ends are accepted, and a window ending at 2100-01-01 in UTC+14 plans to the end:
    the last slot, /current in it, and the dashboard's week plan (which steps past it)."""
    board = await factory.board("bang-cuoi")
    created = await _create(client, keys, factory, starts_at="2000-01-01T14:00:00+14:00",
                            ends_at="2100-01-01T00:00:00Z", timezone="Pacific/Kiritimati", dwell_seconds=3600,
                            daily_hours=[{"start": "22:00", "end": "02:00"}, {"start": "06:00", "end": "24:00"}])
    assert created.status_code == 201, created.text
    assert created.json()["starts_at"] == "2000-01-01T00:00:00Z"
    schedule = await client.get("/api/v1/boards/bang-cuoi/schedule",
                                params={"from": "2099-12-31T00:00:00Z", "to": "2100-01-01T00:00:00Z"},
                                headers=keys.auth("operator"))
    assert schedule.status_code == 200, schedule.text
    items = schedule.json()["items"]
    assert items and items[-1]["ends_at"] == "2100-01-01T00:00:00Z"
    assert items[-1]["local_ends_at"] == "2100-01-01T14:00:00+14:00"

    clock.now = datetime(2099, 12, 31, 23, 30, tzinfo=UTC)  # 13:30 on 1 January 2100 in Kiritimati
    current = (await factory.current(board)).json()
    assert current["state"] == "showing" and current["valid_until"] == "2100-01-01T00:00:00Z"
    signed_in = await client.post("/ui/login", data={"key": keys.operator})
    assert signed_in.status_code == 303
    plan = await client.get("/ui/plan")
    assert plan.status_code == 200
    assert f'class="plan" data-campaign="{created.json()["id"]}"' in plan.text  # this week's plan is shown
    assert "plan-errors" not in plan.text  # and no planning fault


@pytest.mark.parametrize(("fields", "field"), [
    ({"starts_at": datetime(1999, 12, 31, tzinfo=UTC)}, "starts_at"),
    ({"ends_at": datetime(2100, 1, 1, 0, 0, 1, tzinfo=UTC)}, "ends_at"),
    ({"timezone": "localtime"}, "time zone"),
])
async def test_callers_other_than_the_api_are_held_to_the_same_rules(
    client: httpx.AsyncClient, factory: Factory, settings: Settings, fields: dict[str, Any], field: str,
) -> None:
    """A file import or a script calls the service, not the API: the service checks too."""
    data = {"name": "Đợt nhập từ tệp", "starts_at": datetime(2024, 5, 1, tzinfo=UTC),
            "ends_at": datetime(2024, 6, 1, tzinfo=UTC), "timezone": "Asia/Ho_Chi_Minh", "daily_hours": [],
            "dwell_seconds": 30, "priority": 100, "order": "sequential", "paused": False,
            "playlist": [{"slogan_id": s, "weight": 1} for s in await factory.approved_ids()],
            "targets": {"all": True}, **fields}
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            with pytest.raises(InvalidInput, match=field):
                await campaigns.create(session, actor=cli_principal("script"), now=datetime(2024, 5, 7, tzinfo=UTC),
                                       data=data)
            await session.rollback()
    finally:
        await engine.dispose()
    assert await count_rows(settings, "campaign") == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "1999-12-31T23:00:00Z", "to": "2000-01-01T01:00:00Z"}, "from"),
        ({"from": "2099-12-31T23:00:00Z", "to": "2100-01-01T01:00:00Z"}, "to"),
        ({"from": "0001-01-01T00:00:00Z", "to": "9999-12-31T23:59:59Z"}, "from"),
    ],
)
async def test_a_schedule_range_outside_the_span_is_422_naming_the_parameter(
    client: httpx.AsyncClient, keys: Keys, factory: Factory, params: dict[str, str], field: str,
) -> None:
    await factory.board("bang-a")
    response = await client.get("/api/v1/boards/bang-a/schedule", params=params, headers=keys.auth("operator"))
    assert _refused(response, field, "2100-01-01").startswith(f"{field}:")  # `from`, not `query.from`


@pytest.mark.parametrize("path", ["/api/v1/rotations", "/api/v1/rotations?format=csv",
                                  "/api/v1/reports/airtime", "/api/v1/reports/airtime?format=csv"])
@pytest.mark.parametrize(("name", "instant"), [("from", "1999-12-31T23:59:59Z"), ("to", "2100-01-01T00:00:01Z")])
async def test_a_report_range_outside_the_span_is_422_naming_the_parameter(
    client: httpx.AsyncClient, keys: Keys, path: str, name: str, instant: str,
) -> None:
    response = await client.get(path, params={name: instant}, headers=keys.auth("operator"))
    assert _refused(response, name).startswith(f"{name}:")
    within = await client.get(path, params={"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"},
                              headers=keys.auth("operator"))
    assert within.status_code == 200, within.text


# --- IANA zones only ---------------------------------------------------------------------

NOT_ZONES = ["localtime", "Factory", "posixrules", "posix/Asia/Ho_Chi_Minh", "right/UTC", "Asia/Hanoi",
             "asia/ho_chi_minh"]
ZONES = ["UTC", "Etc/UTC", "Etc/GMT-14", "Asia/Ho_Chi_Minh", "Asia/Saigon", "Pacific/Kiritimati"]


def test_the_accepted_names_are_the_iana_ones() -> None:
    names = rotation.timezone_names()
    assert set(ZONES) <= names
    assert not names & {"localtime", "Factory", "posixrules"}
    assert not any(n.startswith(("posix/", "right/")) for n in names)
    assert len(names) > 400  # the whole database, not a short list
    for name in NOT_ZONES:
        with pytest.raises(ValueError, match="unknown time zone"):
            rotation.zone(name)


async def test_only_iana_zone_names_are_accepted(client: httpx.AsyncClient, keys: Keys, factory: Factory,
                                                 settings: Settings) -> None:
    for name in NOT_ZONES:
        _refused(await _create(client, keys, factory, timezone=name), "timezone", repr(name))
    assert await count_rows(settings, "campaign") == 0
    for name in ZONES:
        response = await _create(client, keys, factory, timezone=name)
        assert response.status_code == 201, (name, response.text)
        assert response.json()["timezone"] == name
    url = f"{CAMPAIGNS}/{response.json()['id']}"
    _refused(await client.patch(url, json={"timezone": "localtime"}, headers=keys.auth("editor")), "timezone")
    assert (await client.get(url, headers=keys.auth("editor"))).json()["timezone"] == ZONES[-1]


# --- Targets must exist ------------------------------------------------------------------

async def test_targets_must_name_existing_boards_or_groups(client: httpx.AsyncClient, keys: Keys, factory: Factory,
                                                           settings: Settings) -> None:
    await factory.board("bang-co", groups=["nhom-co"])
    await factory.board("bang-xoa", groups=["nhom-xoa"])
    assert (await client.delete("/api/v1/boards/bang-xoa", headers=keys.auth("admin"))).status_code == 204

    detail = _refused(await _create(client, keys, factory, targets={"boards": ["bang-co", "bang-ma", "bang-xoa"]}),
                      "targets.boards", "bang-ma", "bang-xoa")
    assert "bang-co" not in detail  # only the missing ones are named
    _refused(await _create(client, keys, factory, targets={"groups": ["nhom-ma", "nhom-co"]}),
             "targets.groups", "nhom-ma")
    _refused(await _create(client, keys, factory, targets={"groups": ["nhom-xoa"]}), "nhom-xoa")
    assert await count_rows(settings, "campaign") == 0

    by_board = await _create(client, keys, factory, targets={"boards": ["bang-co"]})
    assert by_board.status_code == 201, by_board.text
    by_group = await _create(client, keys, factory, targets={"groups": ["nhom-co"]})
    assert by_group.status_code == 201, by_group.text
    url = f"{CAMPAIGNS}/{by_group.json()['id']}"
    _refused(await client.patch(url, json={"targets": {"groups": ["nhom-co", "nhom-moi"]}},
                                headers=keys.auth("editor")), "nhom-moi")
    assert (await client.get(url, headers=keys.auth("editor"))).json()["targets"] == {"groups": ["nhom-co"]}
    # An edit that leaves the targets alone is not held to them again.
    renamed = await client.patch(url, json={"name": "Đợt đổi tên"}, headers=keys.auth("editor"))
    assert renamed.status_code == 200, renamed.text


async def test_all_boards_needs_no_board(client: httpx.AsyncClient, keys: Keys, factory: Factory) -> None:
    response = await _create(client, keys, factory, targets={"all": True})
    assert response.status_code == 201, response.text


async def test_a_long_list_of_missing_boards_is_named_in_part(client: httpx.AsyncClient, keys: Keys,
                                                              factory: Factory) -> None:
    missing = [f"bang-{i:03d}" for i in range(100)]
    detail = _refused(await _create(client, keys, factory, targets={"boards": missing}), "bang-000", "80 more")
    assert "bang-099" not in detail


# --- Numbers are JSON numbers ------------------------------------------------------------

@pytest.mark.parametrize(
    ("field", "value"),
    [("dwell_seconds", "30"), ("priority", "200"), ("dwell_seconds", 30.5), ("priority", True),
     ("paused", "true"), ("paused", 0), ("order", 1)],
)
async def test_a_campaign_number_must_be_a_json_number(client: httpx.AsyncClient, keys: Keys, factory: Factory,
                                                       settings: Settings, field: str, value: Any) -> None:
    _refused(await _create(client, keys, factory, **{field: value}), field)
    assert await count_rows(settings, "campaign") == 0


async def test_numbers_nested_and_in_other_bodies(client: httpx.AsyncClient, keys: Keys, factory: Factory,
                                                  settings: Settings) -> None:
    [first, *_] = await factory.approved_ids()
    _refused(await _create(client, keys, factory, playlist=[{"slogan_id": str(first), "weight": 1}]),
             "playlist.0.slogan_id")
    _refused(await _create(client, keys, factory, playlist=[{"slogan_id": first, "weight": "2"}]),
             "playlist.0.weight")
    _refused(await _create(client, keys, factory, targets={"all": "true"}), "targets.all")
    _refused(await client.post("/api/v1/slogans", json={"text": "Khẩu hiệu số", "number": "2"},
                               headers=keys.auth("editor")), "number")
    board_body = {"id": "bang-so", "name": "Bảng", "delivery": "poll"}
    for field, value in [("max_chars", "40"), ("lines", "2"), ("offset", "0"), ("enabled", "false")]:
        response = await client.post("/api/v1/boards", json={**board_body, field: value}, headers=keys.auth("admin"))
        _refused(response, field)
    assert await count_rows(settings, "board") == 0
    # The same values as JSON numbers (and ISO strings for instants) are fine.
    board = await client.post("/api/v1/boards", json={**board_body, "max_chars": 40, "lines": 2, "offset": 0,
                                                      "enabled": False}, headers=keys.auth("admin"))
    assert board.status_code == 201, board.text
    created = await _create(client, keys, factory, dwell_seconds=30, priority=200, paused=True,
                            starts_at="2024-05-01T07:00:00+07:00")
    assert created.status_code == 201, created.text
    assert created.json()["starts_at"] == "2024-05-01T00:00:00Z"
    patched = await client.patch(f"{CAMPAIGNS}/{created.json()['id']}", json={"dwell_seconds": "60"},
                                 headers=keys.auth("editor"))
    _refused(patched, "dwell_seconds")


# --- Characters that render as nothing ---------------------------------------------------

INVISIBLE = {
    "HANGUL CHOSEONG FILLER": "\u115f", "HANGUL JUNGSEONG FILLER": "\u1160", "HANGUL FILLER": "\u3164",
    "HALFWIDTH HANGUL FILLER": "\uffa0", "BRAILLE PATTERN BLANK": "\u2800", "COMBINING GRAPHEME JOINER": "\u034f",
    "MONGOLIAN FREE VARIATION SELECTOR ONE": "\u180b", "MONGOLIAN VOWEL SEPARATOR": "\u180e",
    "MONGOLIAN FREE VARIATION SELECTOR FOUR": "\u180f", "VARIATION SELECTOR-1": "\ufe00",
    "VARIATION SELECTOR-16": "\ufe0f", "VARIATION SELECTOR-17": "\U000e0100", "TAG SPACE": "\U000e0020",
    "LANGUAGE TAG": "\U000e0001", "unassigned U+E0FFF": "\U000e0fff", "WORD JOINER": "\u2060",
    "NOMINAL DIGIT SHAPES": "\u206f", "ZERO WIDTH SPACE": "\u200b", "RIGHT-TO-LEFT MARK": "\u200f",
    "LEFT-TO-RIGHT EMBEDDING": "\u202a", "RIGHT-TO-LEFT OVERRIDE": "\u202e", "SOFT HYPHEN": "\u00ad",
    "KHMER VOWEL INHERENT AQ": "\u17b4", "ARABIC LETTER MARK": "\u061c", "ZERO WIDTH NO-BREAK SPACE": "\ufeff",
    "MUSICAL SYMBOL BEGIN BEAM": "\U0001d173", "SHORTHAND FORMAT LETTER OVERLAP": "\U0001bca0",
}


async def test_text_that_renders_as_nothing_is_refused(client: httpx.AsyncClient, keys: Keys,
                                                       settings: Settings) -> None:
    for name, char in INVISIBLE.items():
        for text in (f"Điện{char}Biên Phủ", char, f"{char}{char}", f"Điện Biên {char}"):
            response = await client.post("/api/v1/slogans", json={"text": text}, headers=keys.auth("editor"))
            assert response.status_code == 422, (name, text, response.text)
            assert response.json()["detail"].startswith("text"), (name, response.text)
    assert await count_rows(settings, "slogan") == 0


async def test_invisible_characters_are_refused_in_names_and_tags_too(client: httpx.AsyncClient, keys: Keys,
                                                                      factory: Factory) -> None:
    for body in ({"text": "Khẩu hiệu", "tags": ["\u3164"]}, {"text": "Khẩu hiệu", "source": "101\u2800HD"}):
        response = await client.post("/api/v1/slogans", json=body, headers=keys.auth("editor"))
        assert response.status_code == 422, (body, response.text)
    _refused(await _create(client, keys, factory, name="\u3164\u3164"), "name")
    board = await client.post("/api/v1/boards", json={"id": "bang-a", "name": "Bảng\u115f"},
                              headers=keys.auth("admin"))
    _refused(board, "name")


async def test_the_ideographic_space_is_folded_like_any_space(client: httpx.AsyncClient, keys: Keys) -> None:
    """U+3000 shows as a gap (it is white space, not an invisible mark), so it is folded to
    one space, like a no-break space; text made only of it is empty."""
    response = await client.post("/api/v1/slogans", json={"text": "Điện\u3000Biên\u3000\u3000Phủ"},
                                 headers=keys.auth("editor"))
    assert response.status_code == 201, response.text
    assert response.json()["text"] == "Điện Biên Phủ"
    _refused(await client.post("/api/v1/slogans", json={"text": "\u3000\u3000"}, headers=keys.auth("editor")),
             "empty")
