"""The emergency stop on the dashboard: the red banner on every page while a stop holds, and
the forms that start and lift it for admins and approvers.

    banner(who, runtime.snapshot.stop, back="/ui/log")        # Markup; empty while none holds
    start_control(who, runtime.snapshot.stop, back="/ui/log")  # the header's "Dừng khẩn cấp…"

The banner is read from this process's snapshot, the same one polls are answered from. The
forms post to `/ui/emergency-stop` and `/ui/emergency-stop/lift`: the only writes a
dashboard session may make, because the person who must blank every board is often looking
at the dashboard, not at a terminal. They are guarded like sign-in and sign-out: the cookie
is SameSite=Strict (another site's form arrives without it) and the post must come from our
own pages (`same_origin`). The work is `displayd.emergency.service`'s, audited under the
signed-in person's name; a second start while one holds, or a lift when none does, changes
nothing and just shows the page again.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from displayd.auth.roles import Permission, Principal
from displayd.campaigns.schemas import DEFAULT_TIMEZONE
from displayd.deps import commit_now
from displayd.emergency import service
from displayd.emergency.schemas import REASON_MAX
from displayd.errors import InvalidInput, ResourceNotFound
from displayd.live.snapshot import StopView
from displayd.runtime import runtime_of
from displayd.web import vi
from displayd.web.render import Markup, escape, page, tag
from displayd.web.session import same_origin, signed_in

router = APIRouter()

OFFICE_ZONE = ZoneInfo(DEFAULT_TIMEZONE)
# Where a form sends the person back: one of our own pages, never another site (`//host`, `/\host`).
_BACK = re.compile(r"/ui(/[^\s\\?#]*)?(\?[^\s\\#]*)?")


def _back(value: str) -> str:
    return value if len(value) <= 2000 and _BACK.fullmatch(value) and "/.." not in value else "/ui"


def _form(action: str, back: str, inner: Markup, css: str) -> Markup:
    return Markup(f'<form method="post" action="{action}" class="{css}">{inner}'
                  f'<input type="hidden" name="next" value="{escape(back)}"></form>')


def start_control(who: Principal, stop: StopView | None, *, back: str) -> Markup:
    """The header's control to start a stop (a reason is required), for those who may."""
    if stop is not None or not who.may(Permission.EMERGENCY_STOP):
        return Markup("")
    inner = Markup(
        '<label for="estop-reason">Lý do dừng khẩn cấp (bắt buộc)</label>'
        f'<textarea id="estop-reason" name="reason" required maxlength="{REASON_MAX}" rows="3"></textarea>'
        '<p class="hint">Mọi bảng điện tử sẽ trống ngay lập tức, cho đến khi lệnh dừng được gỡ.</p>'
        '<button type="submit" class="danger">Tắt mọi bảng ngay</button>')
    return Markup('<details class="estop-start"><summary>Dừng khẩn cấp…</summary>'
                  f'{_form("/ui/emergency-stop", back, inner, "estop-form")}</details>')


def banner(who: Principal, stop: StopView | None, *, back: str) -> Markup:
    """The red banner while a stop holds: why, who, since when; and, for those who may, the lift."""
    if stop is None:
        return Markup("")
    since = f"Do {stop.started_by} bật lúc {vi.moment(stop.started_at, OFFICE_ZONE)} (giờ Việt Nam). " \
            "Các bảng chỉ chạy lại khi lệnh dừng được gỡ."
    lift = Markup("")
    if who.may(Permission.EMERGENCY_STOP):
        inner = Markup('<button type="submit">Xác nhận: cho mọi bảng chạy lại</button>')
        lift = Markup('<details class="estop-lift"><summary>Gỡ dừng khẩn cấp…</summary>'
                      f'{_form("/ui/emergency-stop/lift", back, inner, "estop-form")}</details>')
    return Markup(f'<section class="estop" role="alert" data-stop="{stop.id}">'
                  '<h2>DỪNG KHẨN CẤP: mọi bảng đang tắt</h2>'
                  f'{tag("p", "Lý do: " + stop.reason, class_="reason")}{tag("p", since, class_="since")}'
                  f'{lift}</section>')


def _notice(status: int, heading: str, message: str, back: str) -> Response:
    return page("notice.html", title=heading, status=status, heading=heading,
                message=tag("p", message, class_="error"), back=back)


async def _fields(request: Request) -> dict[str, str]:
    # Parsed by hand, as sign-in is: FastAPI's Form() needs python-multipart.
    parsed = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=10)
    return {name: values[0] for name, values in parsed.items()}


async def _act(request: Request, *, lift: bool) -> Response:
    fields = await _fields(request)
    back = _back(fields.get("next", "/ui"))
    if not same_origin(request):
        return _notice(403, "Không thực hiện", "Yêu cầu không đến từ trang của displayd.", back)
    who = await signed_in(request)
    if who is None:
        return RedirectResponse("/ui/login", status_code=303, headers={"Cache-Control": "no-store"})
    if not who.may(Permission.EMERGENCY_STOP):
        return _notice(403, "Không có quyền", "Chỉ quản trị và lãnh đạo Sở (phê duyệt) được dừng khẩn cấp "
                                              "hoặc gỡ lệnh dừng.", back)
    runtime = runtime_of(request.app)
    async with runtime.sessionmaker() as session:
        try:
            if lift:
                await service.lift(session, actor=who, now=runtime.clock())
            else:
                await service.start(session, actor=who, now=runtime.clock(), reason=fields.get("reason", ""))
        except InvalidInput as exc:
            return _notice(422, "Chưa dừng khẩn cấp", f"Lý do không hợp lệ: {exc.detail}.", back)
        except ResourceNotFound:
            pass  # lifted meanwhile by someone else: the page shows it
        else:
            await commit_now(request, session)  # the snapshot (and the banner) before the page is shown again
    return RedirectResponse(back, status_code=303, headers={"Cache-Control": "no-store"})


@router.post("/ui/emergency-stop")
async def start_stop(request: Request) -> Response:
    return await _act(request, lift=False)


@router.post("/ui/emergency-stop/lift")
async def lift_stop(request: Request) -> Response:
    return await _act(request, lift=True)
