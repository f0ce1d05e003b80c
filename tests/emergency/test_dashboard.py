"""The emergency stop on the dashboard, in process: the red banner on every page while a stop
holds, and the start and lift forms for admins and approvers only, from our own pages only.
SQLite and PostgreSQL; Chromium drives the same forms in `test_browser.py`."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from displayd.auth import sessions
from tests.conftest import FakeClock, Keys
from tests.factories import Factory, sign_in

URL = "/api/v1/emergency-stop"
BANNER = "DỪNG KHẨN CẤP: mọi bảng đang tắt"
START_CONTROL = 'action="/ui/emergency-stop"'
LIFT_CONTROL = 'action="/ui/emergency-stop/lift"'
OWN = {"Origin": "http://displayd.test", "Sec-Fetch-Site": "same-origin",
       "Content-Type": "application/x-www-form-urlencoded"}


def cookie(value: str) -> dict[str, str]:
    return {"Cookie": f"{sessions.COOKIE}={value}"}


async def pages(client: httpx.AsyncClient, factory: Factory, session: str) -> dict[str, str]:
    campaign = await factory.campaign("Đợt báo cáo")
    out = {}
    for path in ("/ui", "/ui/log", "/ui/plan", "/ui/plan?week=2024-05-13", f"/ui/reports/{campaign['id']}",
                 "/ui/reports/999"):
        response = await client.get(path, headers=cookie(session))
        assert response.status_code in (200, 404), (path, response.status_code)
        out[path] = response.text
    return out


async def stop_of(client: httpx.AsyncClient, keys: Keys) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get(URL, headers=keys.auth("operator"))).json()
    return body


async def test_the_banner_is_on_every_page_while_a_stop_holds(client: httpx.AsyncClient, keys: Keys,
                                                              factory: Factory, clock: FakeClock) -> None:
    operator = await sign_in(client, keys.operator)
    for path, text in (await pages(client, factory, operator)).items():
        assert BANNER not in text and 'class="estop"' not in text, path
    clock.advance(hours=2, minutes=30)  # 02:30 UTC is 09:30 in Hà Nội
    stop = (await client.post(URL, json={"reason": "Nội dung <b>sai</b> & cần gỡ"},
                              headers=keys.auth("approver"))).json()
    for path, text in (await pages(client, factory, operator)).items():
        assert BANNER in text, path
        assert f'data-stop="{stop["id"]}"' in text
        assert "Lý do: Nội dung &lt;b&gt;sai&lt;/b&gt; &amp; cần gỡ" in text  # escaped, never markup
        assert "Do Lãnh đạo Sở bật lúc 07/05/2024 09:30 (giờ Việt Nam)" in text
        assert LIFT_CONTROL not in text and START_CONTROL not in text, path  # an operator may not
    await client.delete(URL, headers=keys.auth("admin"))
    for path, text in (await pages(client, factory, operator)).items():
        assert BANNER not in text, path


@pytest.mark.parametrize(("who", "may"), [("admin", True), ("approver", True), ("editor", False),
                                          ("operator", False)])
async def test_only_admins_and_approvers_see_the_controls(client: httpx.AsyncClient, keys: Keys,
                                                          who: str, may: bool) -> None:
    session = await sign_in(client, getattr(keys, who))
    idle = (await client.get("/ui/log", headers=cookie(session))).text
    assert (START_CONTROL in idle) is may and LIFT_CONTROL not in idle
    if may:
        assert 'name="reason" required maxlength="300"' in idle and 'name="next" value="/ui/log"' in idle
    await client.post(URL, json={"reason": "Kiểm tra"}, headers=keys.auth("admin"))
    stopped = (await client.get("/ui/log", headers=cookie(session))).text
    assert BANNER in stopped and START_CONTROL not in stopped
    assert (LIFT_CONTROL in stopped) is may


async def test_start_and_lift_from_the_dashboard(client: httpx.AsyncClient, keys: Keys, factory: Factory) -> None:
    await factory.campaign()
    board = await factory.board("bang-a")
    session = await sign_in(client, keys.approver)
    started = await client.post("/ui/emergency-stop", headers={**OWN, **cookie(session)},
                                content=urlencode({"reason": "Bảng hiển thị sai", "next": "/ui/plan?week=2024-05-13"}))
    assert started.status_code == 303 and started.headers["location"] == "/ui/plan?week=2024-05-13"
    stop = await stop_of(client, keys)
    assert stop["active"] is True and stop["reason"] == "Bảng hiển thị sai" and stop["started_by"] == "Lãnh đạo Sở"
    assert (await factory.current(board)).json()["state"] == "idle"
    page = (await client.get("/ui/plan?week=2024-05-13", headers=cookie(session))).text
    assert BANNER in page and "Bảng hiển thị sai" in page
    # A second press (another tab, a double click) changes nothing.
    again = await client.post("/ui/emergency-stop", headers={**OWN, **cookie(session)}, content="reason=Kh%C3%A1c")
    assert again.status_code == 303 and again.headers["location"] == "/ui"
    assert await stop_of(client, keys) == stop

    lifted = await client.post("/ui/emergency-stop/lift", headers={**OWN, **cookie(session)}, content="next=%2Fui")
    assert lifted.status_code == 303 and lifted.headers["location"] == "/ui"
    assert await stop_of(client, keys) == {"active": False}
    assert (await factory.current(board)).json()["state"] == "showing"
    assert BANNER not in (await client.get("/ui", headers=cookie(session))).text
    # Lifting again (a stale page): nothing to lift, the page is shown again.
    stale = await client.post("/ui/emergency-stop/lift", headers={**OWN, **cookie(session)})
    assert stale.status_code == 303 and stale.headers["location"] == "/ui"

    events = (await client.get("/api/v1/audit", params={"entity_type": "emergency_stop"},
                               headers=keys.auth("admin"))).json()["items"]
    assert [(e["action"], e["actor"], e["role"]) for e in events] == [
        ("emergency_stop.lift", "Lãnh đạo Sở", "approver"), ("emergency_stop.start", "Lãnh đạo Sở", "approver")]


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Origin": "http://displayd.test.evil.example"},
])
@pytest.mark.parametrize("action", ["/ui/emergency-stop", "/ui/emergency-stop/lift"])
async def test_a_post_from_another_site_changes_nothing(client: httpx.AsyncClient, keys: Keys,
                                                        headers: dict[str, str], action: str) -> None:
    if action.endswith("/lift"):
        await client.post(URL, json={"reason": "Đang dừng"}, headers=keys.auth("admin"))
    before = await stop_of(client, keys)
    session = await sign_in(client, keys.admin)
    response = await client.post(action, content="reason=T%E1%BA%AFt", headers={
        **headers, **cookie(session), "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 403
    assert "Yêu cầu không đến từ trang của displayd." in response.text
    assert await stop_of(client, keys) == before


@pytest.mark.parametrize("who", ["editor", "operator"])
async def test_others_may_not_post_the_forms(client: httpx.AsyncClient, keys: Keys, who: str) -> None:
    session = await sign_in(client, getattr(keys, who))
    refused = await client.post("/ui/emergency-stop", content="reason=T%E1%BA%AFt",
                                headers={**OWN, **cookie(session)})
    assert refused.status_code == 403 and "Không có quyền" in refused.text
    assert await stop_of(client, keys) == {"active": False}
    await client.post(URL, json={"reason": "Đang dừng"}, headers=keys.auth("admin"))
    refused = await client.post("/ui/emergency-stop/lift", headers={**OWN, **cookie(session)})
    assert refused.status_code == 403
    assert (await stop_of(client, keys))["active"] is True


async def test_without_a_session_the_forms_go_to_sign_in(client: httpx.AsyncClient, keys: Keys) -> None:
    for action in ("/ui/emergency-stop", "/ui/emergency-stop/lift"):
        for headers in ({}, cookie("a" * 43)):
            response = await client.post(action, content="reason=T%E1%BA%AFt", headers={**OWN, **headers})
            assert response.status_code == 303 and response.headers["location"] == "/ui/login", action
    assert await stop_of(client, keys) == {"active": False}
    # An API key is no session: the forms are for people at the dashboard.
    keyed = await client.post("/ui/emergency-stop", content="reason=T%E1%BA%AFt",
                              headers={**OWN, **keys.auth("admin")})
    assert keyed.status_code == 303 and keyed.headers["location"] == "/ui/login"


@pytest.mark.parametrize(("body", "why"), [("", "reason is empty"), ("reason=+%09+", "reason is empty"),
                                           ("reason=" + "x" * 301, "301 characters"),
                                           ("reason=a%E2%80%8Bb", "zero-width")])
async def test_a_bad_reason_is_shown_and_nothing_starts(client: httpx.AsyncClient, keys: Keys,
                                                        body: str, why: str) -> None:
    session = await sign_in(client, keys.admin)
    response = await client.post("/ui/emergency-stop", content=body + "&next=%2Fui%2Flog",
                                 headers={**OWN, **cookie(session)})
    assert response.status_code == 422
    text = html.unescape(response.text)
    assert "Chưa dừng khẩn cấp" in text and why in text and 'href="/ui/log"' in response.text
    assert await stop_of(client, keys) == {"active": False}


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/ui", "/\\evil.example", "/uix",
                                    "/ui/../api/v1/keys", "javascript:alert(1)", "/ui\r\nSet-Cookie: x=1",
                                    "/api/v1/keys", ""])
async def test_the_way_back_stays_on_the_dashboard(client: httpx.AsyncClient, keys: Keys, target: str) -> None:
    session = await sign_in(client, keys.admin)
    response = await client.post("/ui/emergency-stop", headers={**OWN, **cookie(session)},
                                 content=urlencode({"reason": "Dừng", "next": target}))
    assert response.status_code == 303 and response.headers["location"] == "/ui"
    assert (await stop_of(client, keys))["active"] is True
