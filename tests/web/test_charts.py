"""The report's SVG charts and Vietnamese number formats: pure functions, no database."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from displayd.web import vi
from displayd.web.charts import NO_DATA, BarRow, Series, bar_chart, line_chart, nice_ticks, truncate

SVG = "{http://www.w3.org/2000/svg}"
A = Series("Giao thành công", "delivered", "#1e8e3e")
B = Series("Đã lấy tin", "polled", "#0b57d0")


def parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # well-formed XML, or this raises


def bars(svg: ET.Element) -> list[ET.Element]:
    return svg.findall(f".//{SVG}rect[@data-value]")


def texts(svg: ET.Element, css: str) -> list[str]:
    return [t.text or "" for t in svg.iter(f"{SVG}text") if t.get("class") == css]


@pytest.mark.parametrize(("maximum", "expected"), [
    (7200, [0, 2000, 4000, 6000, 8000]), (1.0, [0, 0.2, 0.4, 0.6, 0.8, 1.0]), (3, [0, 1, 2, 3]),
    (0.07, [0, 0.02, 0.04, 0.06, 0.08]), (100, [0, 20, 40, 60, 80, 100]), (0, [0, 1]), (12, [0, 2.5, 5, 7.5, 10, 12.5]),
])
def test_nice_ticks(maximum: float, expected: list[float]) -> None:
    assert nice_ticks(maximum) == expected


def test_bars_are_proportional_and_labelled() -> None:
    rows = [BarRow("Bảng sảnh chính", (1.0, 0.5), key="sanh"), BarRow("Bảng cổng", (0.25, None), key="cong")]
    svg = parse(bar_chart(rows, [A, B], title="Tỷ lệ", value_label=vi.percent, maximum=1.0))
    widths = [float(r.get("width", "")) for r in bars(svg)]
    assert len(widths) == 3  # the missing ratio draws no bar
    assert widths[1] == pytest.approx(widths[0] / 2) and widths[2] == pytest.approx(widths[0] / 4)
    assert [r.get("fill") for r in bars(svg)] == ["#1e8e3e", "#0b57d0", "#1e8e3e"]
    assert texts(svg, "value") == ["100\u00a0%", "50\u00a0%", "25\u00a0%"] and texts(svg, "value none") == ["—"]
    assert [g.get("data-key") for g in svg.iter(f"{SVG}g") if g.get("class") == "row"] == ["sanh", "cong"]
    assert texts(svg, "label") == ["Bảng sảnh chính", "Bảng cổng"]
    assert texts(svg, "tick")[0] == "0\u00a0%" and texts(svg, "tick")[-1] == "100\u00a0%"
    assert svg.findtext(f"{SVG}title") == "Tỷ lệ" and svg.get("role") == "img"
    assert " style=" not in bar_chart(rows, [A, B], title="x", value_label=vi.percent)  # the CSP forbids it
    height = float(svg.get("height", ""))
    taller = parse(bar_chart([*rows, BarRow("Thêm", (0.1, 0.1))], [A, B], title="x", value_label=vi.percent))
    assert float(taller.get("height", "")) > height  # one more board, one more group


def test_bars_scale_to_the_largest_value_by_default() -> None:
    svg = parse(bar_chart([BarRow("a", (7200.0,)), BarRow("b", (1800.0,))], [A], title="t", value_label=vi.figure))
    a, b = (float(r.get("width", "")) for r in bars(svg))
    assert a / b == pytest.approx(4)
    assert texts(svg, "tick")[-1] == "8.000"  # rounded up to a tick, thousands with a dot
    assert not [e for e in svg.iter(f"{SVG}g") if e.get("class") == "legend"]  # one series: no legend


def test_text_is_escaped_and_long_labels_are_cut() -> None:
    evil = '<script>alert(1)</script> & "quoted" ' + "Điện Biên Phủ " * 20
    markup = bar_chart([BarRow(evil, (5.0,), key='"><x')], [A], title="<b>t</b>", value_label=vi.figure)
    svg = parse(markup)
    assert "<script>" not in markup and "<b>" not in markup and '"><x' not in markup
    assert svg.find(f".//{SVG}script") is None
    shown = texts(svg, "label")[0]
    assert shown.endswith("…") and len(shown) <= 95 and shown.startswith("<script>")  # text, not markup
    assert evil in [t.text for t in svg.iter(f"{SVG}title")]  # the whole label on hover
    assert truncate("ngắn", 10) == "ngắn" and truncate("một hai ba", 5) == "một…"


def test_empty_charts_say_so() -> None:
    for markup in (bar_chart([], [A], title="t", value_label=vi.figure),
                   line_chart([], [(A, [])], title="t", value_label=vi.figure)):
        assert texts(parse(markup), "no-data") == [NO_DATA]


def test_line_chart_points_follow_the_values() -> None:
    labels = [f"{d:02d}/05" for d in range(1, 8)]
    shown = [0.0, 3600.0, 7200.0, 7200.0, 1800.0, 0.0, 3600.0]
    missed = [0.0, 0.0, 300.0, 0.0, 0.0, 0.0, 0.0]
    svg = parse(line_chart(labels, [(A, shown), (B, missed)], title="Theo ngày", value_label=vi.figure))
    lines = svg.findall(f".//{SVG}polyline")
    assert [p.get("stroke") for p in lines] == ["#1e8e3e", "#0b57d0"]
    points = [tuple(float(c) for c in p.split(",")) for p in (lines[0].get("points") or "").split()]
    assert len(points) == 7
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    assert xs == sorted(xs) and xs[1] - xs[0] == pytest.approx(xs[6] - xs[5])  # days evenly spaced
    assert ys[2] == ys[3] < ys[1] < ys[4] < ys[0] == ys[5]  # higher value, higher on the page (smaller y)
    bottom = ys[0]
    assert (bottom - ys[1]) * 2 == pytest.approx(bottom - ys[2])
    assert len(svg.findall(f".//{SVG}circle")) == 14
    assert texts(svg, "tick")[-7:] == labels and "legend" in [t.get("class") for t in svg.iter(f"{SVG}text")]


def test_a_year_of_days_has_a_dozen_labels_and_no_dots() -> None:
    labels = [f"ngày {n}" for n in range(366)]
    svg = parse(line_chart(labels, [(A, [float(n % 7) for n in range(366)])], title="t", value_label=vi.figure))
    day_labels = [t for t in texts(svg, "tick") if t.startswith("ngày")]
    assert 10 <= len(day_labels) <= 13 and day_labels[0] == "ngày 0"
    assert not svg.findall(f".//{SVG}circle")
    with pytest.raises(ValueError, match="values"):
        line_chart(["a", "b"], [(A, [1.0])], title="t", value_label=vi.figure)


def test_one_day_sits_in_the_middle() -> None:
    svg = parse(line_chart(["07/05"], [(A, [30.0])], title="t", value_label=vi.figure))
    (circle,) = svg.findall(f".//{SVG}circle")
    assert 300 < float(circle.get("cx", "")) < 380


@pytest.mark.parametrize(("value", "text"), [
    (0, "0"), (7200.0, "7.200"), (1234567.5, "1.234.567,5"), (12.25, "12,25"), (0.0004, "0"), (30.0006, "30,001"),
])
def test_figures(value: float, text: str) -> None:
    assert vi.figure(value) == text


def test_percent_duration_and_dates() -> None:
    assert vi.percent(0.8625) == "86,25\u00a0%" and vi.percent(0.975) == "97,5\u00a0%"
    assert vi.percent(1.0) == "100\u00a0%" and vi.percent(0.0) == "0\u00a0%" and vi.percent(None) == "—"
    assert vi.percent(0.5851) == "58,51\u00a0%" and vi.percent(0.123456) == "12,35\u00a0%"
    assert vi.number(1234.5, 1) == "1.234,5" and vi.number(1000) == "1.000"
    assert vi.duration(7530) == "2\u00a0giờ 5\u00a0phút 30\u00a0giây" and vi.duration(0) == "0\u00a0giây"
    assert vi.duration(3600 * 1234) == "1.234\u00a0giờ"
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    t = datetime(2024, 5, 6, 17, 0, tzinfo=UTC)  # midnight in Hà Nội
    assert vi.day(t, zone) == "07/05/2024" and vi.moment(t, zone) == "07/05/2024 00:00"
