"""The dashboard's sign-in, session cookie, security headers and the player page, in process.

Each test runs on SQLite and PostgreSQL (the `app` fixture); the browser tests are in
`test_browser.py`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import httpx

from displayd.auth import sessions
from displayd.web.plan import week_plans
from tests.conftest import FakeClock, Keys

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def sign_in(client: httpx.AsyncClient, key: str, **headers: str) -> httpx.Response:
    response = await client.post("/ui/login", content=f"key={key}", headers={**FORM, **headers})
    client.cookies.clear()  # each test sends the cookie it means to, by hand
    return response


def with_cookie(value: str) -> dict[str, str]:
    return {"Cookie": f"{sessions.COOKIE}={value}"}


def session_cookie(response: httpx.Response) -> str:
    value = response.cookies.get(sessions.COOKIE)
    assert value, response.headers
    return value


async def test_login_sets_an_httponly_cookie_and_shows_the_key_nowhere(client: httpx.AsyncClient,
                                                                       keys: Keys) -> None:
    form = await client.get("/ui/login")
    assert form.status_code == 200
    assert 'type="password"' in form.text and 'name="key"' in form.text

    response = await sign_in(client, keys.operator)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui"
    set_cookie = response.headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie and "Path=/" in set_cookie
    assert f"Max-Age={int(sessions.LIFETIME.total_seconds())}" in set_cookie
    assert "Secure" not in set_cookie  # plain http here; https requests get Secure
    assert keys.operator not in response.headers["location"]
    assert keys.operator not in set_cookie
    assert keys.operator not in response.text

    page = await client.get("/ui", headers=with_cookie(session_cookie(response)))
    assert page.status_code == 200
    assert "Bảng điện tử" in page.text and "Đăng xuất" in page.text and "Thanh tra" in page.text
    assert keys.operator not in page.text


async def test_a_wrong_key_shows_the_form_again_with_401(client: httpx.AsyncClient, keys: Keys) -> None:
    response = await sign_in(client, "dk_not-a-key")
    assert response.status_code == 401
    assert "Khoá API không đúng" in response.text
    assert sessions.COOKIE not in response.headers.get("set-cookie", "")
    empty = await client.post("/ui/login", content="", headers=FORM)
    assert empty.status_code == 401


async def test_login_from_another_site_is_refused(client: httpx.AsyncClient, keys: Keys) -> None:
    cross = await sign_in(client, keys.admin, **{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    assert "set-cookie" not in cross.headers
    own = await sign_in(client, keys.admin, **{"Origin": "http://displayd.test", "Sec-Fetch-Site": "same-origin"})
    assert own.status_code == 303


async def test_ui_without_a_session_goes_to_the_login_form(client: httpx.AsyncClient) -> None:
    for path in ("/ui", "/ui/log", "/ui/plan"):
        response = await client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/ui/login"


async def test_the_cookie_opens_reads_but_not_writes(client: httpx.AsyncClient, keys: Keys) -> None:
    cookie = session_cookie(await sign_in(client, keys.admin))
    reads = await client.get("/api/v1/boards", headers=with_cookie(cookie))
    assert reads.status_code == 200
    write = await client.post("/api/v1/slogans", json={"text": "Khẩu hiệu qua cookie"},
                              headers=with_cookie(cookie))
    assert write.status_code == 401


async def test_tampered_and_expired_cookies_are_refused(client: httpx.AsyncClient, keys: Keys,
                                                        clock: FakeClock) -> None:
    cookie = session_cookie(await sign_in(client, keys.operator))
    for bad in (cookie[:-3] + ("AAA" if cookie[-3:] != "AAA" else "BBB"), cookie + "x", "garbage", "A" * 5000):
        assert (await client.get("/api/v1/boards", headers=with_cookie(bad))).status_code == 401
        assert (await client.get("/ui", headers=with_cookie(bad))).status_code == 303
    assert (await client.get("/api/v1/boards", headers=with_cookie(cookie))).status_code == 200

    clock.advance(hours=12, seconds=1)
    assert (await client.get("/api/v1/boards", headers=with_cookie(cookie))).status_code == 401
    assert (await client.get("/ui", headers=with_cookie(cookie))).headers["location"] == "/ui/login"


async def test_logout_clears_the_cookie(client: httpx.AsyncClient, keys: Keys) -> None:
    cookie = session_cookie(await sign_in(client, keys.operator))
    response = await client.post("/ui/logout", headers=with_cookie(cookie))
    assert response.status_code == 303 and response.headers["location"] == "/ui/login"
    assert 'displayd_session=""' in response.headers["set-cookie"] or "Max-Age=0" in response.headers["set-cookie"]


async def test_pages_carry_csp_and_nosniff(client: httpx.AsyncClient, keys: Keys, factory: Any) -> None:
    board = await factory.board("sanh-chinh")
    cookie = session_cookie(await sign_in(client, keys.operator))
    assert (await client.get("/ui/login")).headers["content-security-policy"].startswith("default-src 'self'")
    for path in ("/ui", "/ui/log", "/ui/plan", f"/play/{board['id']}?token={board['token']}"):
        response = await client.get(path, headers=with_cookie(cookie))
        assert response.status_code == 200, path
        assert response.headers["content-security-policy"].startswith("default-src 'self'"), path
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert "<script>" not in response.text  # scripts come from static files only
    css = await client.get("/ui/static/ui.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert (await client.get("/ui/static/..%2Fpages.py")).status_code == 404
    assert (await client.get("/ui/static/pages.py")).status_code == 404


async def test_the_player_page_is_404_for_an_unknown_board(client: httpx.AsyncClient, factory: Any) -> None:
    assert (await client.get("/play/khong-co?token=bt_x")).status_code == 404
    board = await factory.board("sanh-phu")
    page = await client.get(f"/play/{board['id']}")
    assert page.status_code == 200
    assert 'data-board="sanh-phu"' in page.text
    assert board["token"] not in page.text  # the script reads it from the URL, never from the page


async def test_the_plan_escapes_names_and_shows_the_week(client: httpx.AsyncClient, keys: Keys, factory: Any,
                                                         clock: FakeClock) -> None:
    slogan = await factory.approved("<b>Đậm</b> & nhạt")
    await factory.campaign("<i>Cao điểm</i>", playlist_ids=[slogan["id"]], starts_at="2024-05-06T00:00:00+07:00",
                           ends_at="2024-05-09T12:00:00+07:00", daily_hours=[{"start": "06:00", "end": "22:00"}],
                           dwell_seconds=60)
    cookie = session_cookie(await sign_in(client, keys.operator))
    page = await client.get("/ui/plan", headers=with_cookie(cookie))
    assert page.status_code == 200
    assert "&lt;i&gt;Cao điểm&lt;/i&gt;" in page.text and "<i>" not in page.text
    assert "&lt;b&gt;Đậm&lt;/b&gt; &amp; nhạt" in page.text
    assert "Thứ Hai 06/05" in page.text and "06:00–22:00" in page.text
    assert "≈ 960" in page.text  # 16 hours of 60 s slots
    assert "Kế hoạch tuần này" in page.text


class _Campaign:
    def __init__(self, **fields: Any) -> None:
        defaults: dict[str, Any] = {
            "id": 1, "name": "Đợt", "timezone": "Asia/Ho_Chi_Minh", "daily_hours": [], "dwell_seconds": 30,
            "priority": 100, "order": "sequential", "playlist": [{"slogan_id": 1, "weight": 2},
                                                                 {"slogan_id": 2, "weight": 1}],
            "targets": {"all": True}, "paused": False,
        }
        defaults.update(fields)
        self.__dict__.update(defaults)


def test_week_plan_clips_to_the_window_and_counts_slots() -> None:
    now = datetime(2024, 5, 7, 3, 0, tzinfo=UTC)  # Tuesday 10:00 in Hà Nội
    running = _Campaign(starts_at=datetime(2024, 5, 7, 1, 0, tzinfo=UTC),  # Tue 08:00 local
                        ends_at=datetime(2024, 5, 8, 17, 0, tzinfo=UTC),   # Thu 00:00 local
                        daily_hours=[{"start": "22:00", "end": "02:00"}])
    later = _Campaign(id=2, priority=200, starts_at=datetime(2024, 5, 20, tzinfo=UTC),
                      ends_at=datetime(2024, 6, 1, tzinfo=UTC))
    plans = week_plans([running, later], {1: "Một", 2: "Hai"}, now)  # type: ignore[list-item]
    assert [p.id for p in plans] == [1]
    plan = plans[0]
    assert plan.week == "06/05 – 12/05/2024"
    assert [d.hours for d in plan.days[:3]] == [[], ["22:00–02:00"], ["22:00–24:00"]]
    assert [d.slots for d in plan.days[:3]] == [0, 480, 240]
    assert plan.days[1].today and plan.cycle == [1, 2, 1]
    assert plan.daily_hours == "22:00–02:00" and plan.targets == "Tất cả bảng"


def test_any_week_shows_the_campaigns_of_that_week_even_once_over() -> None:
    now = datetime(2024, 5, 7, 3, 0, tzinfo=UTC)
    over = _Campaign(starts_at=datetime(2024, 1, 1, tzinfo=UTC), ends_at=datetime(2024, 3, 1, tzinfo=UTC))
    later = _Campaign(id=2, starts_at=datetime(2024, 5, 20, tzinfo=UTC), ends_at=datetime(2024, 6, 1, tzinfo=UTC))
    assert week_plans([over, later], {}, now) == []  # type: ignore[list-item]
    february = week_plans([over, later], {}, now, day=date(2024, 2, 14))  # type: ignore[list-item]
    assert [(p.id, p.state, p.week) for p in february] == [(1, "ended", "12/02 – 18/02/2024")]
    may = week_plans([over, later], {}, now, day=date(2024, 5, 26))  # type: ignore[list-item]
    assert [(p.id, p.state, p.days[0].slots) for p in may] == [(2, "scheduled", 17 * 120)]  # from 07:00 local
    assert may[0].days[6].slots == 24 * 120 and not any(d.today for d in may[0].days)


async def test_the_plan_page_walks_to_any_week(client: httpx.AsyncClient, keys: Keys, factory: Any) -> None:
    await factory.campaign("Mùa xuân", starts_at="2024-02-01T00:00:00+07:00", ends_at="2024-03-01T00:00:00+07:00")
    cookie = session_cookie(await sign_in(client, keys.operator))
    this_week = await client.get("/ui/plan", headers=with_cookie(cookie))
    assert "Mùa xuân" not in this_week.text and 'href="/ui/plan?week=2024-04-29"' in this_week.text
    february = await client.get("/ui/plan", params={"week": "2024-02-14"}, headers=with_cookie(cookie))
    assert february.status_code == 200
    assert "Kế hoạch tuần 12/02 – 18/02/2024" in february.text and "Mùa xuân" in february.text
    assert "Đã kết thúc" in february.text and 'href="/ui/plan?week=2024-02-19"' in february.text
    for bad in ("2024-02-30", "1999-12-31", "ngày mai"):
        refused = await client.get("/ui/plan", params={"week": bad}, headers=with_cookie(cookie))
        assert refused.status_code == 422 and "không phải một ngày hợp lệ" in refused.text, bad
