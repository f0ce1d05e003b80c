"""`/ui/reports/{campaign_id}`: the campaign report as a page a person prints on A4 and hands in.

The figures are `displayd.logbook.report.campaign_report`, the same the API answers at
`/api/v1/reports/campaigns/{id}`; here they are written the Vietnamese way (`vi`) and drawn
as inline SVG (`charts`). `?from=YYYY-MM-DD&to=YYYY-MM-DD` narrows the period to those
local days (both included) in the campaign's time zone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, Response

from displayd.auth.roles import Principal
from displayd.campaigns import service as campaigns
from displayd.errors import ResourceNotFound
from displayd.logbook.report import INCIDENTS_LISTED, BoardDelivery, CampaignReport, DayAirtime, campaign_report
from displayd.runtime import runtime_of
from displayd.web import vi
from displayd.web.charts import BarRow, Series, bar_chart, line_chart
from displayd.web.pages import ROLE_NAMES, _nav, _reader, _to_login
from displayd.web.plan import describe_targets
from displayd.web.render import Markup, escape, join, page, tag

router = APIRouter()

TITLE = "Báo cáo kết quả tuyên truyền trên bảng điện tử"
BOARDS_CHARTED = 40  # more boards than this: the chart shows the weakest, the table all
DAYS_LISTED = 62     # a longer period is tabled by month (the chart still has every day)

SHOWN = Series("Thời lượng phát", "shown", "#b3261e")
DELIVERED = Series("Giao thành công", "delivered", "#1e8e3e")
POLLED = Series("Bảng đã lấy tin", "polled", "#0b57d0")
DELIVERY = {"push": "đẩy (push)", "poll": "tự lấy (poll)", "stream": "luồng (stream)", "both": "đẩy và tự lấy"}
ACTIONS = {"campaign.create": "tạo đợt", "campaign.update": "sửa đợt", "campaign.pause": "tạm dừng",
           "campaign.resume": "cho chạy lại", "campaign.delete": "xoá đợt"}
SOURCES = {"push": "phản hồi khi đẩy", "poll": "khi bảng lấy tin"}


def _unit(largest_seconds: float) -> tuple[float, str]:
    """Seconds, minutes or hours, whichever keeps a chart's numbers readable."""
    if largest_seconds >= 7200:
        return 3600.0, "giờ"
    if largest_seconds >= 120:
        return 60.0, "phút"
    return 1.0, "giây"


def _in(unit: str) -> Callable[[float], str]:
    return lambda value: f"{vi.figure(value, 1)}{vi.NBSP}{unit}"


def _table(head: Sequence[str], rows: Sequence[Markup], css: str, numeric: Sequence[int] = ()) -> Markup:
    cells = join([tag("th", h, class_="n" if i in numeric else "") for i, h in enumerate(head)])
    return Markup(f'<table class="{escape(css)}"><thead><tr>{cells}</tr></thead>'
                  f'<tbody>{join(list(rows))}</tbody></table>')


def _row(cells: Sequence[tuple[object, str]], **attrs: object) -> Markup:
    rendered = "".join(f' {k.rstrip("_").replace("_", "-")}="{escape(v)}"' for k, v in attrs.items())
    return Markup(f"<tr{rendered}>{join([tag('td', text, class_=css) for text, css in cells])}</tr>")


def _section(anchor: str, heading: str, *parts: Markup) -> Markup:
    return Markup(f'<section class="part" id="{anchor}">{tag("h2", heading)}{join(list(parts))}</section>')


def _facts(items: Sequence[tuple[str, object]]) -> Markup:
    return Markup(f'<dl class="facts">{join([join([tag("dt", k), tag("dd", v)]) for k, v in items])}</dl>')


def _overview(report: CampaignReport, zone: ZoneInfo, now: datetime) -> Markup:
    t = report.totals
    hours = ", ".join(f"{h['start']}–{h['end']}" for h in report.daily_hours) or "cả ngày"
    state = ("đã xoá" if report.deleted else "tạm dừng" if report.paused
             else "chưa bắt đầu" if now < report.campaign_starts_at
             else "đang chạy" if now < report.campaign_ends_at else "đã kết thúc")
    settings = _facts([
        ("Đợt tuyên truyền", report.name),
        ("Khung thời gian của đợt",
         f"{vi.moment(report.campaign_starts_at, zone)} → {vi.moment(report.campaign_ends_at, zone)}"),
        ("Giờ chạy hằng ngày", hours), ("Thời gian mỗi lượt", f"{report.dwell_seconds} giây"),
        ("Bảng nhận", describe_targets(report.targets)), ("Ưu tiên", report.priority), ("Trạng thái", state),
    ])
    figures = [
        ("Số bảng đã phát", vi.number(t.boards), "boards"),
        ("Số khẩu hiệu đã phát", vi.number(t.slogans), "slogans"),
        ("Số lượt đã phát", vi.number(t.slots), "slots"),
        ("Tổng thời lượng phát (giây)", vi.figure(t.seconds), "seconds"),
        ("Tổng thời lượng phát", vi.duration(t.seconds), "duration"),
        ("Tỷ lệ giao thành công (bảng nhận đẩy)", vi.percent(t.delivered_ratio), "delivered"),
        ("Tỷ lệ bảng đã lấy tin (bảng tự lấy)", vi.percent(t.polled_ratio), "polled"),
        ("Lượt bị lỡ (displayd ngừng chạy)", vi.number(t.missed), "missed"),
        ("Thời gian bị lỡ", vi.duration(t.missed_seconds), "missed-seconds"),
        ("Sự cố toàn vẹn nội dung", vi.number(t.incidents), "incidents"),
    ]
    table = Markup('<table class="totals"><tbody>' + join([
        Markup(f'<tr data-total="{key}">{tag("th", label)}{tag("td", value, class_="n")}</tr>')
        for label, value, key in figures]) + "</tbody></table>")
    return _section("tong-quan", "1. Thông tin chung và kết quả tổng hợp", settings, table)


def _slogans(report: CampaignReport) -> Markup:
    divisor, unit = _unit(max((s.seconds for s in report.slogans), default=0.0))
    label = _in(unit)
    rows = [BarRow(f"{s.number}. {s.text}" if s.number is not None else s.text, (s.seconds / divisor,),
                   key=str(s.slogan_id)) for s in report.slogans if report.totals.seconds]
    chart = bar_chart(rows, [SHOWN], title=f"Thời lượng phát theo khẩu hiệu ({unit})", value_label=label,
                      css="bars slogans")
    table = _table(["Số", "Khẩu hiệu", "Số lượt", "Thời lượng (giây)", "Tỷ trọng", "Lượt bị lỡ"], [
        _row([(s.number if s.number is not None else "—", "n number"), (s.text, "slogan"),
              (vi.number(s.slots), "n slots"), (vi.figure(s.seconds), "n seconds"), (vi.percent(s.share), "n share"),
              (vi.number(s.missed), "n missed")], data_slogan=s.slogan_id)
        for s in report.slogans], "slogans", numeric=(2, 3, 4, 5))
    note = tag("p", "Thời lượng là tổng trên mọi bảng: một lượt 30 giây trên 10 bảng tính là 300 giây.",
               class_="note")
    return _section("khau-hieu", "2. Khẩu hiệu và thời lượng phát",
                    Markup(f'<figure class="chart">{chart}</figure>'), table, note)


def _weakest(boards: Sequence[BoardDelivery]) -> list[BoardDelivery]:
    def worst(b: BoardDelivery) -> tuple[float, str]:
        return min((r for r in (b.delivered_ratio, b.polled_ratio) if r is not None), default=1.0), b.board_id
    return sorted(sorted(boards, key=worst)[:BOARDS_CHARTED], key=lambda b: b.board_id)


def _board_cell(board: BoardDelivery) -> Markup:
    where = " · ".join([board.location or "—", DELIVERY.get(board.delivery or "", "bảng đã xoá")])
    return join([tag("strong", board.name), Markup(" "), tag("span", f"({board.board_id})", class_="id"),
                 tag("span", where, class_="where")])


def _boards(report: CampaignReport) -> Markup:
    charted = report.boards if len(report.boards) <= BOARDS_CHARTED else _weakest(report.boards)
    chart = bar_chart([BarRow(f"{b.name} ({b.board_id})", (b.delivered_ratio, b.polled_ratio), key=b.board_id)
                       for b in charted], [DELIVERED, POLLED], title="Tỷ lệ giao và lấy tin theo bảng",
                      value_label=vi.percent, maximum=1.0, css="bars boards", label_chars=90)
    caption = (f"{len(charted)} bảng có tỷ lệ thấp nhất trong {vi.number(len(report.boards))} bảng; "
               "bảng dưới đây có đủ mọi bảng." if charted is not report.boards else "")
    table = _table(["Bảng (vị trí, cách nhận)", "Số lượt", "Thời lượng (giây)", "Lượt bị lỡ", "Giao thành công",
                    "Đã lấy tin", "Sự cố"], [
        _row([(_board_cell(b), "board"), (vi.number(b.slots), "n slots"),
              (vi.figure(b.seconds), "n seconds"), (vi.number(b.missed), "n missed"),
              (vi.percent(b.delivered_ratio), "n delivered"), (vi.percent(b.polled_ratio), "n polled"),
              (vi.number(b.incidents), "n incidents")], data_board=b.board_id)
        for b in report.boards], "boards", numeric=(1, 2, 3, 4, 5, 6))
    note = tag("p", "Giao thành công: số lượt đẩy tới bảng được bảng nhận ÷ số lượt phải đẩy (kể cả lượt bị lỡ). "
                    "Đã lấy tin: số lượt bảng tự lấy nội dung ít nhất một lần ÷ số lượt của bảng tự lấy. "
                    "“—”: bảng không nhận theo cách đó.", class_="note")
    parts = [Markup(f'<figure class="chart">{chart}{tag("figcaption", caption) if caption else ""}</figure>')]
    if not report.boards:
        parts = [tag("p", "Chưa bảng nào được phát đợt này trong kỳ báo cáo.", class_="empty")]
    return _section("bang", "3. Bảng điện tử: tỷ lệ giao và lấy tin", *parts, table, note)


def _every_day(report: CampaignReport, zone: ZoneInfo) -> list[DayAirtime]:
    """Each local day of the period, those without slots at zero (a line chart must not skip them)."""
    if report.ends_at <= report.starts_at:
        return []
    first = report.starts_at.astimezone(zone).date()
    last = (report.ends_at - timedelta(microseconds=1)).astimezone(zone).date()
    known = {d.date: d for d in report.days}
    return [known.get(d.isoformat(), DayAirtime(date=d.isoformat(), slots=0, seconds=0.0, missed=0))
            for d in (first + timedelta(days=n) for n in range((last - first).days + 1))]


def _days(report: CampaignReport, zone: ZoneInfo) -> Markup:
    days = _every_day(report, zone)
    divisor, unit = _unit(max((d.seconds for d in days), default=0.0))
    labels = [f"{d.date[8:10]}/{d.date[5:7]}" for d in days]
    lines = [(SHOWN, [d.seconds / divisor for d in days])]
    if not any(d.slots or d.missed for d in days):
        labels = []  # nothing was shown: the chart says so rather than draw a flat line
    chart = line_chart(labels, lines, title=f"Thời lượng phát theo ngày ({unit})", value_label=_in(unit))
    if len(days) <= DAYS_LISTED:
        head, rows = "Ngày", [(f"{d.date[8:10]}/{d.date[5:7]}/{d.date[:4]}", d.slots, d.seconds, d.missed)
                              for d in days]
    else:
        months: dict[str, list[float]] = {}
        for d in days:
            totals = months.setdefault(f"{d.date[5:7]}/{d.date[:4]}", [0, 0.0, 0])
            totals[0] += d.slots
            totals[1] += d.seconds
            totals[2] += d.missed
        head, rows = "Tháng", [(month, int(t[0]), t[1], int(t[2])) for month, t in months.items()]
    table = _table([head, "Số lượt", "Thời lượng (giây)", "Lượt bị lỡ"], [
        _row([(label, "day"), (vi.number(slots), "n slots"), (vi.figure(seconds), "n seconds"),
              (vi.number(missed), "n missed")]) for label, slots, seconds, missed in rows], "days", numeric=(1, 2, 3))
    note = tag("p", f"Ngày theo giờ {report.timezone}, tính theo giờ bắt đầu của lượt.", class_="note")
    return _section("theo-ngay", "4. Thời lượng phát theo ngày", Markup(f'<figure class="chart">{chart}</figure>'),
                    table, note)


def _trouble(report: CampaignReport, zone: ZoneInfo) -> Markup:
    t = report.totals
    missed = tag("p", f"{vi.number(t.missed)} lượt ({vi.duration(t.missed_seconds)}, cộng trên mọi bảng) bị lỡ "
                      "vì displayd ngừng chạy; từng bảng xem ở mục 3." if t.missed
                 else "Không có lượt nào bị lỡ.", class_="missed")
    if not report.incidents:
        incidents = tag("p", "Không có sự cố toàn vẹn nội dung nào (không bảng nào báo hiển thị nội dung lạ).",
                        class_="incidents-none")
    else:
        listed = (f"{vi.number(t.incidents)} sự cố: bảng báo đang hiển thị nội dung displayd không hề giao"
                  + (f" (liệt kê {INCIDENTS_LISTED} sự cố gần nhất)." if t.incidents > len(report.incidents) else "."))
        head = ["Thời điểm", "Bảng", "Phát hiện", "Mã nội dung bảng báo", "Ghi chú"]
        incidents = join([tag("p", listed), _table(head, [
            _row([(vi.moment(i.at, zone), "at"), (f"{i.board_name} ({i.board_id})", "board"),
                  (SOURCES.get(i.source, i.source), "source"), (i.reported_hash, "hash"), (i.detail or "", "detail")])
            for i in report.incidents], "incidents")])
    return _section("su-co", "5. Thời gian bị lỡ và sự cố toàn vẹn",
                    tag("h3", "Thời gian bị lỡ"), missed, tag("h3", "Sự cố toàn vẹn nội dung"), incidents)


def _people(report: CampaignReport, zone: ZoneInfo) -> Markup:
    actors = _table(["Người", "Vai trò", "Việc đã làm", "Lần đầu", "Lần cuối"], [
        _row([(a.name, "name"), (", ".join(ROLE_NAMES.get(r, r) for r in a.roles), "role"),
              (", ".join(ACTIONS.get(x, x) for x in a.actions), "actions"), (vi.moment(a.first_at, zone), "at"),
              (vi.moment(a.last_at, zone), "at")]) for a in report.actors], "actors")
    approvers = _table(["Người phê duyệt", "Số khẩu hiệu", "Căn cứ"], [
        _row([(a.name, "name"), (vi.number(len(a.slogan_ids)), "n"), (", ".join(a.references) or "—", "refs")])
        for a in report.approvers], "approvers", numeric=(1,))
    return _section("nguoi-thuc-hien", "6. Người thực hiện",
                    _facts([("Người tạo đợt", report.created_by)]),
                    tag("h3", "Những người thay đổi đợt (theo nhật ký kiểm tra)"),
                    actors if report.actors else tag("p", "—", class_="empty"),
                    tag("h3", "Người phê duyệt khẩu hiệu"),
                    approvers if report.approvers else tag("p", "—", class_="empty"))


def _dates(report: CampaignReport, zone: ZoneInfo) -> tuple[date, date]:
    last = report.ends_at - timedelta(microseconds=1) if report.ends_at > report.starts_at else report.ends_at
    return report.starts_at.astimezone(zone).date(), last.astimezone(zone).date()


def _tools(report: CampaignReport, zone: ZoneInfo) -> Markup:
    first, last = _dates(report, zone)
    low = report.campaign_starts_at.astimezone(zone).date().isoformat()
    high = (report.campaign_ends_at - timedelta(microseconds=1)).astimezone(zone).date().isoformat()
    return Markup(
        f'<nav class="tools"><form method="get" action="/ui/reports/{report.campaign_id}">'
        f'<label>Từ ngày <input type="date" name="from" value="{first.isoformat()}" min="{low}" max="{high}"></label> '
        f'<label>Đến ngày <input type="date" name="to" value="{last.isoformat()}" min="{low}" max="{high}"></label> '
        '<button type="submit">Xem</button></form>'
        f'<a class="button secondary" href="/api/v1/reports/campaigns/{report.campaign_id}'
        f'?from={report.starts_at.isoformat().replace("+00:00", "Z")}'
        f'&amp;to={report.ends_at.isoformat().replace("+00:00", "Z")}">Số liệu (JSON)</a>'
        '<span class="hint">In ra giấy A4: lệnh In của trình duyệt (Ctrl+P).</span></nav>')


def _period(from_: str | None, to: str | None, zone: ZoneInfo) -> tuple[datetime | None, datetime | None]:
    """Local midnight starting day `from_` and ending day `to` (both `YYYY-MM-DD`, included);
    ValueError if either is no date of 2000-2099 or they are in the wrong order."""
    def midnight(value: str | None, *, after: bool) -> datetime | None:
        if not value:
            return None
        day = date.fromisoformat(value)
        if not date(2000, 1, 1) <= day <= date(2099, 12, 31):
            raise ValueError(value)
        return datetime.combine(day + timedelta(days=1 if after else 0), time(0), tzinfo=zone)

    start, end = midnight(from_, after=False), midnight(to, after=True)
    if start is not None and end is not None and end <= start:
        raise ValueError(f"{from_} → {to}")
    return start, end


def _not_found(request: Request, who: Principal, campaign_id: str) -> Response:
    return page("report.html", title="Không có đợt này", status=404, nav=_nav(request, who, ""), body_class="report",
                stylesheet="report.css", tools=Markup(""), head=Markup(""),
                sections=tag("p", f"Không có đợt tuyên truyền #{campaign_id}.", class_="empty"), sign=Markup(""))


@router.get("/ui/reports/{campaign_id}")
async def report_page(request: Request, campaign_id: str,
                      from_: Annotated[str | None, Query(alias="from")] = None, to: str | None = None) -> Response:
    who = await _reader(request)
    if who is None:
        return _to_login()
    if not (campaign_id.isascii() and campaign_id.isdigit()):
        return _not_found(request, who, campaign_id)
    now: datetime = runtime_of(request.app).clock()
    async with runtime_of(request.app).sessionmaker() as session:
        try:
            campaign = await campaigns.get(session, int(campaign_id), include_deleted=True)
        except ResourceNotFound:
            return _not_found(request, who, campaign_id)
        zone = ZoneInfo(campaign.timezone)
        try:
            start, end = _period(from_, to, zone)
        except ValueError:
            report = await campaign_report(session, campaign.id, start=None, end=None, now=now)
            return page("report.html", title=TITLE, status=422, nav=_nav(request, who, ""), body_class="report",
                        stylesheet="report.css", tools=_tools(report, zone), head=Markup(""), sign=Markup(""),
                        sections=tag("p", f"“{from_ or ''} → {to or ''}” không phải khoảng ngày hợp lệ "
                                          "(YYYY-MM-DD, 2000–2099, từ ngày trước đến ngày sau).", class_="empty"))
        report = await campaign_report(session, campaign.id, start=start, end=end, now=now)
    return page("report.html", title=f"{TITLE}: {report.name}", nav=_nav(request, who, ""), body_class="report",
                stylesheet="report.css", tools=_tools(report, zone), head=_head(report, zone),
                sections=join([_overview(report, zone, now), _slogans(report), _boards(report), _days(report, zone),
                               _trouble(report, zone), _people(report, zone)]),
                sign=_sign(report, zone, who))


def _head(report: CampaignReport, zone: ZoneInfo) -> Markup:
    period = (f"Kỳ báo cáo: từ {vi.moment(report.starts_at, zone)} đến {vi.moment(report.ends_at, zone)} "
              f"(giờ {report.timezone})")
    return Markup(
        '<header class="doc-head"><div class="issuer"><p>VĂN PHÒNG SỞ</p><p class="small">Hệ thống bảng điện tử</p>'
        '</div><div class="motto"><p>CỘNG HOÀ XÃ HỘI CHỦ NGHĨA VIỆT NAM</p><p class="u">Độc lập - Tự do - Hạnh phúc'
        '</p></div></header>'
        f'<h1>{tag("span", "BÁO CÁO", class_="kind")}{tag("span", "Kết quả tuyên truyền trên bảng điện tử")}</h1>'
        f'{tag("p", report.name, class_="subject")}{tag("p", period, class_="period")}')


def _sign(report: CampaignReport, zone: ZoneInfo, who: Principal) -> Markup:
    made = report.generated_at.astimezone(zone)
    when = f"Lập lúc {made:%H:%M} ngày {made:%d} tháng {made:%m} năm {made:%Y}, từ nhật ký luân phiên của displayd."
    return Markup(
        f'<footer class="sign">{tag("p", when, class_="made")}'
        f'<div class="signature">{tag("p", "NGƯỜI LẬP BÁO CÁO", class_="role")}'
        f'{tag("p", "(Ký, ghi rõ họ tên)", class_="small")}{tag("p", who.name, class_="name")}</div></footer>')
