"""The dashboard's pages (`/ui`, `/ui/log`, `/ui/plan`), sign-in and sign-out, and static assets.

Pages are thin HTML shells rendered on the server; the board grid and the rotation log are
filled by scripts in `static/` that read the REST API with the session cookie, so the
dashboard shows exactly what the API says. The week plan is rendered here (`plan.py`).
"""

from __future__ import annotations

import contextlib
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, RedirectResponse

from displayd.auth.guard import Kind
from displayd.auth.keys import hash_secret
from displayd.auth.roles import Permission, Principal
from displayd.campaigns import service as campaigns
from displayd.campaigns.schemas import DEFAULT_TIMEZONE
from displayd.deps import client_address
from displayd.live.snapshot import Snapshot
from displayd.runtime import runtime_of
from displayd.web import emergency
from displayd.web.plan import CampaignWeek, monday_of, week_plans
from displayd.web.render import SECURITY_HEADERS, Markup, join, page, tag
from displayd.web.replicas import replicas_section
from displayd.web.session import end_session, open_session, same_origin, signed_in

router = APIRouter()

STATIC = Path(__file__).parent / "static"
# Only these files are served: a fixed list cannot be walked out of with `..`.
ASSETS = {
    "ui.css": "text/css; charset=utf-8",
    "player.css": "text/css; charset=utf-8",
    "report.css": "text/css; charset=utf-8",
    "common.js": "text/javascript; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "log.js": "text/javascript; charset=utf-8",
    "player.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
    "fonts.css": "text/css; charset=utf-8",
    **{font.name: "font/woff2" for font in STATIC.glob("*.woff2")},
}
ROLE_NAMES = {"admin": "quản trị", "editor": "biên tập", "approver": "phê duyệt", "operator": "vận hành"}
STATES = {"running": "Đang chạy", "scheduled": "Sắp chạy", "paused": "Tạm dừng", "ended": "Đã kết thúc"}
FIRST_WEEK, LAST_WEEK = date(2000, 1, 3), date(2099, 12, 28)  # Mondays: the span campaigns may take


def _to_login() -> RedirectResponse:
    return RedirectResponse("/ui/login", status_code=303, headers={"Cache-Control": "no-store"})


def _nav(request: Request, who: Principal, current: str) -> Markup:
    """The top of every dashboard page: the header and, while an emergency stop holds, its banner."""
    links = [("/ui", "Bảng điện tử"), ("/ui/log", "Nhật ký luân phiên"), ("/ui/plan", "Kế hoạch tuần này")]
    items = join([tag("a", label, href=href, class_="active" if href == current else "") for href, label in links])
    stop = runtime_of(request.app).snapshot.stop
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Markup(
        '<header class="top"><span class="brand">displayd · Văn phòng Sở</span>'
        f'<nav>{items}</nav>{emergency.start_control(who, stop, back=here)}'
        f'<span class="who">{tag("span", who.name)} '
        f'({tag("span", ROLE_NAMES.get(who.role, who.role))})</span>'
        '<form method="post" action="/ui/logout" class="logout"><button type="submit">Đăng xuất</button></form>'
        f'</header>{emergency.banner(who, stop, back=here)}'
    )


async def _reader(request: Request) -> Principal | None:
    who = await signed_in(request)
    return who if who is not None and who.may(Permission.READ) else None


@router.get("/ui/login")
async def login_form(request: Request) -> Response:
    if await _reader(request) is not None:
        return RedirectResponse("/ui", status_code=303)
    return page("login.html", title="Đăng nhập", error="", body_class="login")


@router.post("/ui/login")
async def login(request: Request) -> Response:
    if not same_origin(request):
        return page("login.html", title="Đăng nhập", status=403, body_class="login",
                    error=tag("p", "Yêu cầu đăng nhập không đến từ trang này.", class_="error"))
    guard = runtime_of(request.app).guard
    address = client_address(request)
    retry_after = guard.retry_after(address)
    if retry_after is not None:
        held = page("login.html", title="Đăng nhập", status=429, body_class="login",
                    error=tag("p", f"Đăng nhập sai quá nhiều lần từ địa chỉ này. Thử lại sau {retry_after} giây.",
                              class_="error"))
        held.headers["Retry-After"] = str(retry_after)
        return held
    # Parsed by hand: FastAPI's Form() needs python-multipart, which displayd does not depend on.
    fields = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=10)
    key = (fields.get("key") or [""])[0].strip()
    principal = await runtime_of(request.app).key_cache.principal(hash_secret(key)) if key else None
    if principal is None or principal.key_id is None or not principal.may(Permission.READ):
        guard.failed(Kind.SIGN_IN, address)
        return page("login.html", title="Đăng nhập", status=401, body_class="login",
                    error=tag("p", "Khoá API không đúng hoặc đã bị thu hồi.", class_="error"))
    response = RedirectResponse("/ui", status_code=303, headers={"Cache-Control": "no-store"})
    await open_session(request, response, principal.key_id)
    return response


@router.post("/ui/logout")
async def logout(request: Request) -> Response:
    response = _to_login()
    if same_origin(request):  # another site may not sign a person out either
        await end_session(request, response)
    return response


def _plan_alerts(snapshot: Snapshot) -> Markup:
    """The planning faults this process knows of: what is left out of which board's plan."""
    if not snapshot.errors:
        return Markup("")
    items = []
    for (campaign_id, board_id), message in sorted(snapshot.errors.items(), key=lambda e: str(e[0])):
        if campaign_id is None:
            what = f"Bảng {board_id} tạm để trống"
        else:
            name = snapshot.campaign_names.get(campaign_id, "?")
            what = f"Đợt #{campaign_id} ({name}) bị bỏ khỏi " + (f"kế hoạch của bảng {board_id}" if board_id
                                                                else "mọi kế hoạch")
        items.append(tag("li", f"{what}: {message}", data_campaign=campaign_id or "", data_board=board_id or ""))
    return Markup('<section class="alert plan-errors" role="alert"><h2>Lỗi lập kế hoạch</h2>'
                  '<p>Các bảng khác vẫn chạy bình thường. Sửa hoặc xoá đợt bị lỗi.</p>'
                  f'<ul>{join(items)}</ul></section>')


@router.get("/ui")
async def dashboard(request: Request) -> Response:
    who = await _reader(request)
    if who is None:
        return _to_login()
    runtime = runtime_of(request.app)
    return page("dashboard.html", title="Bảng điện tử", nav=_nav(request, who, "/ui"),
                alerts=_plan_alerts(runtime.snapshot), replicas=await replicas_section(runtime))


@router.get("/ui/log")
async def rotation_log(request: Request) -> Response:
    who = await _reader(request)
    if who is None:
        return _to_login()
    return page("log.html", title="Nhật ký luân phiên", nav=_nav(request, who, "/ui/log"))


def _plan_section(plan: CampaignWeek) -> Markup:
    facts = [
        ("Khung thời gian", f"{plan.window} ({plan.timezone})"), ("Giờ chạy hằng ngày", plan.daily_hours),
        ("Thời gian mỗi lượt", f"{plan.dwell_seconds} giây"), ("Ưu tiên", plan.priority),
        ("Thứ tự", "lần lượt" if plan.order == "sequential" else "xáo trộn mỗi vòng"), ("Bảng nhận", plan.targets),
    ]
    dl = join([join([tag("dt", k), tag("dd", v)]) for k, v in facts])
    playlist = join([Markup(f'<li>{tag("span", e.text, class_="slogan")} '
                            f'{tag("span", f"×{e.weight}", class_="weight")}</li>') for e in plan.playlist])
    numbers = {e.slogan_id: n for n, e in enumerate(plan.playlist, start=1)}
    cycle = " → ".join(f"#{numbers.get(s, s)}" for s in plan.cycle)
    days = join([
        Markup(f'<tr class="{"today" if d.today else ""}">{tag("th", d.label)}'
               f'{tag("td", ", ".join(d.hours) or "không chạy")}'
               f'{tag("td", f"≈ {d.slots:,}".replace(",", ".") if d.hours else "—", class_="n")}</tr>')
        for d in plan.days
    ])
    return Markup(
        f'<section class="plan" data-campaign="{plan.id}">'
        f'<h2>{tag("span", plan.name)} {tag("span", STATES.get(plan.state, plan.state), class_="state " + plan.state)}'
        f'</h2><dl>{dl}</dl>{tag("a", "Báo cáo kết quả", href=f"/ui/reports/{plan.id}", class_="report-link")}'
        f'<div class="cols"><div><h3>Danh sách khẩu hiệu (trọng số)</h3><ol>{playlist}</ol>'
        f'{tag("p", "Vòng luân phiên: " + cycle, class_="cycle")}</div>'
        f'<div><h3>Tuần {tag("span", plan.week)}</h3><table class="days"><thead><tr><th>Ngày</th>'
        f'<th>Giờ chạy</th><th>Số lượt</th></tr></thead><tbody>{days}</tbody></table></div></div></section>'
    )


@router.get("/ui/plan")
async def week_plan(request: Request, week: str | None = None) -> Response:
    """The plan of the week holding `week` (`YYYY-MM-DD`, any day of it; default this week)."""
    who = await _reader(request)
    if who is None:
        return _to_login()
    # The page's "this week" on the office's clock; each campaign's week is on its own zone's.
    today = runtime_of(request.app).clock().astimezone(ZoneInfo(DEFAULT_TIMEZONE)).date()
    day: date | None = None
    with contextlib.suppress(ValueError):
        day = date.fromisoformat(week) if week else None
    if week and (day is None or not FIRST_WEEK <= monday_of(day) <= LAST_WEEK):
        return page("plan.html", title="Kế hoạch tuần", status=422, nav=_nav(request, who, "/ui/plan"),
                    heading="Kế hoạch tuần", weeks=_week_links(monday_of(today), today), alerts=Markup(""),
                    plans=tag("p", f"“{week}” không phải một ngày hợp lệ (YYYY-MM-DD, 2000–2099).",
                              class_="empty"))
    async with runtime_of(request.app).sessionmaker() as session:
        rows = await campaigns.all_live(session)
    snapshot: Snapshot = runtime_of(request.app).snapshot
    plans = week_plans(rows, snapshot.slogans, runtime_of(request.app).clock(),
                       on_error=lambda campaign_id, exc: snapshot.report(campaign_id, None, exc), day=day)
    monday = monday_of(day or today)
    this_week = day is None or monday == monday_of(today)
    sunday = monday + timedelta(days=6)
    heading = "Kế hoạch tuần này" if this_week else f"Kế hoạch tuần {monday:%d/%m} – {sunday:%d/%m/%Y}"
    body = join([_plan_section(p) for p in plans]) or tag(
        "p", "Không có đợt tuyên truyền nào chạy trong tuần này." if this_week
        else "Không có đợt tuyên truyền nào chạy trong tuần đó.", class_="empty")
    return page("plan.html", title=heading, nav=_nav(request, who, "/ui/plan"), heading=heading, plans=body,
                weeks=_week_links(monday, today), alerts=_plan_alerts(snapshot))


def _week_links(monday: date, today: date) -> Markup:
    """Previous / this / next week, and a date field to jump to any week (a plain GET form)."""
    links = [(monday - timedelta(days=7), "← Tuần trước"), (monday_of(today), "Tuần này"),
             (monday + timedelta(days=7), "Tuần sau →")]
    anchors = join([tag("a", label, href=f"/ui/plan?week={target.isoformat()}", class_="button")
                    for target, label in links if FIRST_WEEK <= target <= LAST_WEEK])
    return Markup(f'<nav class="weeks">{anchors}<form method="get" action="/ui/plan">'
                  f'<label>Tuần có ngày <input type="date" name="week" value="{monday.isoformat()}" '
                  f'min="{FIRST_WEEK.isoformat()}" max="{(LAST_WEEK + timedelta(days=6)).isoformat()}"></label>'
                  f' <button type="submit">Xem</button></form></nav>')


@router.get("/ui/static/{name}")
async def asset(name: str) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        return Response("not found", status_code=404, media_type="text/plain")
    return FileResponse(STATIC / name, media_type=media_type,
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"})


@router.get("/play/{board_id}")
async def player(request: Request, board_id: Annotated[str, PathParam()]) -> Response:
    """The web player's page; the token stays in the URL (DESIGN), read by the script only."""
    if board_id not in runtime_of(request.app).snapshot.boards:
        return Response("Không có bảng này.", status_code=404, media_type="text/plain; charset=utf-8",
                        headers=SECURITY_HEADERS)
    return page("player.html", title=runtime_of(request.app).snapshot.boards[board_id].name, body_class="player",
                stylesheet="player.css", board_id=board_id)
