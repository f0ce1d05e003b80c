"""The API documentation pages, `/docs` (Swagger UI) and `/redoc` (ReDoc), served offline.

Office LANs are often cut off from the internet, so every file these pages load comes from
displayd itself: Swagger UI and ReDoc are vendored in `static/vendor/` (pinned versions and
SHA-256 hashes in `static/vendor/manifest.json`), and each page's start-up code is a static
file in `static/docs/`, so the pages run under a CSP that allows no other host and no
inline script. FastAPI's own docs routes (which load from a CDN) are turned off in `create_app`.
"""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, HTMLResponse

from displayd.errors import ResourceNotFound

router = APIRouter(include_in_schema=False)

STATIC = Path(__file__).parent / "static"
ASSET_PATH = "/docs/assets"
# Only these files are served: a fixed list cannot be walked out of with `..`.
ASSETS = {
    "swagger-ui-bundle.js": ("vendor/swagger-ui/swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    "swagger-ui.css": ("vendor/swagger-ui/swagger-ui.css", "text/css; charset=utf-8"),
    "redoc.standalone.js": ("vendor/redoc/redoc.standalone.js", "text/javascript; charset=utf-8"),
    "swagger-init.js": ("docs/swagger-init.js", "text/javascript; charset=utf-8"),
    "redoc-init.js": ("docs/redoc-init.js", "text/javascript; charset=utf-8"),
}

# Our own origin only. What the two UIs need beyond `default-src 'self'`: inline styles
# (both set `style` attributes; ReDoc injects <style> elements), `data:` images (Swagger
# UI's icons), and a `blob:` worker (ReDoc's search index runs in one it builds in memory).
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "object-src 'none'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'self'",
])
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _page(title: str, *, stylesheet: str | None, root: str, spec_url: str, scripts: list[str]) -> HTMLResponse:
    link = f'<link rel="stylesheet" href="{ASSET_PATH}/{stylesheet}">\n' if stylesheet else ""
    script_tags = "".join(f'<script src="{ASSET_PATH}/{name}"></script>\n' for name in scripts)
    document = (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n"
        '<link rel="icon" href="/ui/static/favicon.svg" type="image/svg+xml">\n'
        f"{link}</head>\n<body>\n"
        f'<div id="{root}" data-spec-url="{html.escape(spec_url, quote=True)}"></div>\n'
        f"{script_tags}</body>\n</html>\n"
    )
    return HTMLResponse(document, headers=PAGE_HEADERS)


def _spec_url(request: Request) -> str:
    return str(request.app.openapi_url or "/openapi.json")


@router.get("/docs")
async def swagger_ui(request: Request) -> Response:
    return _page(f"{request.app.title} API (Swagger UI)", stylesheet="swagger-ui.css", root="swagger-ui",
                 spec_url=_spec_url(request), scripts=["swagger-ui-bundle.js", "swagger-init.js"])


@router.get("/redoc")
async def redoc(request: Request) -> Response:
    return _page(f"{request.app.title} API (ReDoc)", stylesheet=None, root="redoc",
                 spec_url=_spec_url(request), scripts=["redoc.standalone.js", "redoc-init.js"])


@router.get(ASSET_PATH + "/{name}")
async def asset(name: str) -> Response:
    found = ASSETS.get(name)
    if found is None:
        raise ResourceNotFound("documentation asset", name)
    path, media_type = found
    # Revalidated on each use (the ETag makes that cheap): a new displayd may ship a new version.
    return FileResponse(STATIC / path, media_type=media_type,
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})
