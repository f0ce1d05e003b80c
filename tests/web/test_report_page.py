"""The campaign report page `/ui/reports/{id}` in process, on SQLite and PostgreSQL (the
browser prints it in `test_report_pdf.py`)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import httpx

from displayd.config import Settings
from tests.conftest import Keys
from tests.factories import Factory
from tests.logbook.test_report import log_of_two_boards, report
from tests.logbook.test_rotations_api import slot_rows, write
from tests.web.test_pages import session_cookie, sign_in, with_cookie


async def cookie_for(client: httpx.AsyncClient, key: str) -> dict[str, str]:
    return with_cookie(session_cookie(await sign_in(client, key)))


def cell(html: str, row_attr: str, css: str) -> str:
    """The text of the `td.<css>` cell in the table row `<tr {row_attr}>`."""
    row = re.search(rf'<tr {re.escape(row_attr)}>(.*?)</tr>', html, re.S)
    assert row, row_attr
    found = re.search(rf'<td class="[^"]*\b{re.escape(css)}\b[^"]*">(.*?)</td>', row.group(1), re.S)
    assert found, (row_attr, css)
    return found.group(1)


async def test_the_page_shows_the_api_figures_the_vietnamese_way(client: httpx.AsyncClient, keys: Keys,
                                                                 factory: Factory, settings: Settings) -> None:
    c, ids = await log_of_two_boards(client, keys, factory, settings)
    body = await report(client, keys, c)
    page = await client.get(f"/ui/reports/{c}", headers=await cookie_for(client, keys.operator))
    assert page.status_code == 200
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    html = page.text
    assert "Báo cáo kết quả tuyên truyền trên bảng điện tử" in html
    assert "Kỷ niệm 70 năm Chiến thắng Điện Biên Phủ" in html
    assert "Kỳ báo cáo: từ 01/05/2024 07:00 đến 07/05/2024 07:00 (giờ Asia/Ho_Chi_Minh)" in html
    assert cell(html, f'data-slogan="{ids[0]}"', "seconds") == "8.250"
    assert cell(html, f'data-slogan="{ids[0]}"', "share") == "58,51\u00a0%"
    assert cell(html, f'data-slogan="{ids[2]}"', "seconds") == "0"
    assert cell(html, 'data-board="bang-day"', "delivered") == "86,25\u00a0%"
    assert cell(html, 'data-board="bang-day"', "polled") == "—"
    assert cell(html, 'data-board="bang-keo"', "polled") == "25\u00a0%"
    assert cell(html, 'data-total="seconds"', "n") == "14.100"
    assert cell(html, 'data-total="missed-seconds"', "n") == "5\u00a0phút"
    assert cell(html, 'data-total="incidents"', "n") == "2"
    assert body["totals"]["seconds"] == 14100.0
    # Every chart is well-formed SVG, drawn here: no script, no inline style (the CSP forbids both).
    charts = re.findall(r"<svg .*?</svg>", html, re.S)
    assert len(charts) == 3
    for svg in charts:
        ET.fromstring(svg)
    assert "<script" not in html and " style=" not in html
    assert "Chuyên viên A" in html and "Lãnh đạo Sở" in html and "tạm dừng" in html
    assert "NGƯỜI LẬP BÁO CÁO" in html and "Thanh tra" in html  # the signer is who is signed in


async def test_dates_narrow_the_page(client: httpx.AsyncClient, keys: Keys, factory: Factory,
                                     settings: Settings) -> None:
    c, _ = await log_of_two_boards(client, keys, factory, settings)
    cookie = await cookie_for(client, keys.operator)
    narrow = await client.get(f"/ui/reports/{c}?from=2024-05-07&to=2024-05-07", headers=cookie)
    assert narrow.status_code == 200
    assert "từ 07/05/2024 00:00 đến 07/05/2024 07:00" in narrow.text
    assert cell(narrow.text, 'data-total="seconds"', "n") == "6.900"
    for query in ("from=2024-13-01", "to=hôm-nay", "from=2024-05-07&to=2024-05-06", "from=1999-12-31"):
        bad = await client.get(f"/ui/reports/{c}?{query}", headers=cookie)
        assert bad.status_code == 422, query
        assert "không phải khoảng ngày hợp lệ" in bad.text


async def test_sign_in_first_and_unknown_campaigns(client: httpx.AsyncClient, keys: Keys, factory: Factory) -> None:
    c = (await factory.campaign())["id"]
    anonymous = await client.get(f"/ui/reports/{c}")
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/ui/login"
    cookie = await cookie_for(client, keys.operator)
    for missing in ("99999", "abc", "0", "١٢", "9" * 30):
        page = await client.get(f"/ui/reports/{missing}", headers=cookie)
        assert page.status_code == 404, missing
        assert "Không có đợt tuyên truyền" in page.text
    empty = await client.get(f"/ui/reports/{c}", headers=cookie)
    assert empty.status_code == 200 and "Không có số liệu trong khoảng thời gian này." in empty.text


async def test_the_plan_links_to_the_report(client: httpx.AsyncClient, keys: Keys, factory: Factory) -> None:
    c = (await factory.campaign())["id"]
    plan = await client.get("/ui/plan", headers=await cookie_for(client, keys.operator))
    assert f'href="/ui/reports/{c}"' in plan.text
    css = await client.get("/ui/static/report.css")
    assert css.status_code == 200 and "@page { size: A4;" in css.text


async def test_many_boards_and_a_long_period(client: httpx.AsyncClient, keys: Keys, factory: Factory,
                                             settings: Settings) -> None:
    ids = await factory.approved_ids()
    c = (await factory.campaign(starts_at="2024-01-01T00:00:00+07:00", ends_at="2025-01-01T00:00:00+07:00"))["id"]
    rows = []
    for n in range(45):  # boards 40..44 failed every push: the chart keeps the 40 weakest
        rows += slot_rows(f"bang-{n:02d}", c, ids, 0, 4, status="failed" if n >= 40 else "delivered")
    await write(settings, rows)
    html = (await client.get(f"/ui/reports/{c}", headers=await cookie_for(client, keys.operator))).text
    boards_chart = re.search(r'<svg [^>]*class="chart bars boards".*?</svg>', html, re.S)
    assert boards_chart
    charted = re.findall(r'<g class="row" data-key="([^"]+)"', boards_chart.group(0))
    assert len(charted) == 40 and {f"bang-{n}" for n in range(40, 45)} <= set(charted)
    assert "40 bảng có tỷ lệ thấp nhất trong 45 bảng" in html
    assert len(re.findall(r'<tr data-board="', html)) == 45  # the table has them all
    # 01/01 to 07/05 (the fake clock): 128 days on the chart, by month in the table.
    days_chart = re.search(r'<svg [^>]*class="chart lines".*?</svg>', html, re.S)
    assert days_chart
    points = re.search(r'<polyline points="([^"]+)"', days_chart.group(0))
    assert points and len(points.group(1).split()) == 128
    months = re.findall(r'<td class="day">(\d\d/2024)</td>', html)
    assert months == ["01/2024", "02/2024", "03/2024", "04/2024", "05/2024"]
    assert cell(html, 'data-total="seconds"', "n") == "5.400"  # 45 boards × 4 slots × 30 s
