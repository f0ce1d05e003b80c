"""Server-side HTML: `string.Template` pages where every value is HTML-escaped.

    page("login.html", title="Đăng nhập", error="Khoá không đúng")

A value is escaped unless it is a `Markup` fragment, which only this package builds (from
escaped parts), so a slogan or a board name can never become markup. Templates live in
`templates/` beside this module and are read once.
"""

from __future__ import annotations

import html
from functools import cache
from pathlib import Path
from string import Template

from fastapi.responses import HTMLResponse

TEMPLATES = Path(__file__).parent / "templates"

# Scripts only from our own static files, no inline code, no framing: a slogan that slips
# markup past every escape still cannot run.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    # The player's URL carries its board token: never send it to another origin. (Not
    # `no-referrer`: that makes Chromium send `Origin: null` on our own sign-in form.)
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class Markup(str):
    """HTML already made safe (built from escaped parts); inserted as is."""


def escape(value: object) -> str:
    return value if isinstance(value, Markup) else html.escape(str(value), quote=True)


def join(parts: list[Markup]) -> Markup:
    return Markup("".join(parts))


def tag(name: str, text: object, **attrs: object) -> Markup:
    """`tag("td", "x", class_="n")` → `<td class="n">x</td>`, text and attributes escaped."""
    rendered = "".join(f' {k.rstrip("_").replace("_", "-")}="{escape(v)}"' for k, v in attrs.items())
    return Markup(f"<{name}{rendered}>{escape(text)}</{name}>")


@cache
def _template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text(encoding="utf-8"))


def render(name: str, **values: object) -> str:
    return _template(name).substitute({k: escape(v) for k, v in values.items()})


def page(name: str, *, title: str, status: int = 200, body_class: str = "", stylesheet: str = "ui.css",
         **values: object) -> HTMLResponse:
    """A whole page: `name` rendered into the shared layout."""
    body = Markup(render(name, **values))
    document = render("layout.html", title=title, body=body, body_class=body_class, stylesheet=stylesheet,
                      nav=values.get("nav", Markup("")))
    return HTMLResponse(document, status_code=status, headers=SECURITY_HEADERS)
