"""`/docs` and `/redoc` work offline: every file from displayd itself, under a strict CSP.

Against a real `displayd serve`: the pages and their assets over HTTP, then both UIs in
Debian's Chromium with every request recorded. Also: the vendored files are the pinned ones
(their hashes in the manifest), and the wheel ships them.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import tomllib
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Request

from displayd.web import docs
from tests.cli import ROOT, run_displayd
from tests.servers import Server, start_server
from tests.web.conftest import ARTIFACTS

STATIC = ROOT / "displayd" / "web" / "static"
VENDOR = STATIC / "vendor"
WAIT_MS = 20_000
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".json": "application/json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("docs")
    url = f"sqlite+aiosqlite:///{tmp / 'docs.db'}"
    run_displayd("db", "upgrade", database_url=url)
    started = start_server(url, tmp, DISPLAYD_SCHEDULER_ENABLED="false")
    try:
        yield started
    finally:
        started.stop()


class _Links(HTMLParser):
    """Every URL the page names (src, href), and the body of every script element."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value is not None]
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def test_the_vendored_files_are_the_pinned_ones() -> None:
    manifest = json.loads((VENDOR / "manifest.json").read_text())
    listed: set[Path] = set()
    for package in manifest["packages"]:
        assert package["version"] and package["tarball"].endswith(f"-{package['version']}.tgz")
        for name, entry in package["files"].items():
            path = VENDOR / name
            assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], f"{name} is not the pinned file"
            listed.add(path)
    shipped = {path for path in VENDOR.rglob("*") if path.is_file() and path.name != "manifest.json"}
    assert shipped == listed, "every vendored file is in the manifest, and only those"
    # Both UIs with their licences, no source maps or unused bundles: about 3 MB (1 MB in the wheel).
    assert sum(path.stat().st_size for path in shipped) < 4_000_000
    for name, (path, _) in docs.ASSETS.items():
        assert (STATIC / path).is_file(), name


def test_the_wheel_ships_every_static_file() -> None:
    """The package-data globs of pyproject.toml (setuptools' glob rules) cover every file."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["displayd.web"]
    package = ROOT / "displayd" / "web"
    for path in STATIC.rglob("*"):
        if path.is_file():
            relative = path.relative_to(package).as_posix()
            # setuptools' `*` stops at a slash, as fnmatch's does not: compare segment by segment.
            assert any(len(p.split("/")) == len(relative.split("/")) and
                       all(fnmatch.fnmatchcase(a, b) for a, b in zip(relative.split("/"), p.split("/"), strict=True))
                       for p in patterns), f"{relative} is not in the wheel"


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_pages_name_only_displayd_and_run_under_a_csp(server: Server, path: str) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        page = http.get(path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["default-src"] == "'self'" and directives["script-src"] == "'self'"
        assert "unsafe-eval" not in csp and directives["connect-src"] == "'self'"
        assert page.headers["x-content-type-options"] == "nosniff"
        links = _Links()
        links.feed(page.text)
        assert links.scripts and all(body.strip() == "" for body in links.scripts), "no inline script"
        assert "cdn" not in page.text.lower()
        assert 'data-spec-url="/openapi.json"' in page.text
        for url in links.urls:
            absolute = urljoin(server.url + path, url)
            assert urlsplit(absolute).netloc == urlsplit(server.url).netloc, f"{url} is not displayd's"
            asset = http.get(absolute)
            assert asset.status_code == 200, url
            expected = MEDIA_TYPES[Path(urlsplit(absolute).path).suffix]
            assert asset.headers["content-type"].startswith(expected), (url, asset.headers["content-type"])
            assert asset.headers["x-content-type-options"] == "nosniff"


def test_only_the_listed_assets_are_served(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for name in ("manifest.json", "LICENSE", "..%2F..%2Fdocs.py", "swagger-ui.js"):
            response = http.get(f"/docs/assets/{name}")
            assert response.status_code == 404 and response.json()["error"] == "not_found"
        bundle = http.get("/docs/assets/swagger-ui-bundle.js")
        pinned = json.loads((VENDOR / "manifest.json").read_text())["packages"][0]["files"]
        assert hashlib.sha256(bundle.content).hexdigest() == pinned["swagger-ui/swagger-ui-bundle.js"]["sha256"]


async def test_both_uis_render_with_nothing_from_another_host(server: Server, browser: Browser) -> None:
    origin = urlsplit(server.url)
    requested: list[str] = []
    complaints: list[str] = []  # CSP violations and script errors both land here

    def record(request: Request) -> None:
        requested.append(request.url)

    def complain(message: ConsoleMessage) -> None:
        if message.type == "error":
            complaints.append(message.text)

    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.on("request", record)
    page.on("console", complain)
    page.on("pageerror", lambda error: complaints.append(str(error)))
    try:
        await page.goto(f"{server.url}/docs")
        await page.wait_for_selector(".opblock")
        assert await page.locator(".opblock").count() >= 10  # the operation list
        # Try an operation: Swagger UI's own request goes to displayd too.
        await page.locator('.opblock-summary-path[data-path="/healthz"]').click()
        await page.locator(".try-out__btn").click()
        await page.locator(".execute").click()
        await page.locator(".live-responses-table .response-col_status", has_text="200").wait_for()
        await page.screenshot(path=str(ARTIFACTS / "docs-swagger.png"))

        await page.goto(f"{server.url}/redoc")
        await page.wait_for_selector("[data-section-id^='operation/']", state="attached")
        assert await page.locator("[data-section-id^='operation/']").count() >= 10
        await page.get_by_placeholder("Search...").fill("board")  # the search index runs in a blob: worker
        await page.locator("[data-role='search:results'] li").first.wait_for()
        await page.screenshot(path=str(ARTIFACTS / "docs-redoc.png"))
    finally:
        await context.close()

    assert f"{server.url}/openapi.json" in requested and f"{server.url}/docs/assets/redoc.standalone.js" in requested
    foreign = [url for url in requested
               if not url.startswith(("data:", f"blob:{server.url}/")) and urlsplit(url)[:2] != origin[:2]]
    assert foreign == [], f"fetched from another host: {foreign}"
    assert complaints == []
