"""`displayd demo`: a whole office on one machine, rotating slogans within a minute.

    displayd demo --port 8000 --dwell 10

What it sets up, in one process and one event loop:
- the embedded SQLite database `var/demo.db` (relative to the working directory), deleted
  and made afresh on every run, or the database named by DISPLAYD_DATABASE_URL (kept);
- the section IV slogans (`slogans/huong-dan-101-muc-IV.yaml`), keys for the four roles;
- three simulated push boards on a loopback HTTP server (one path per board) that check
  every Standard Webhooks signature with the board's secret, de-duplicate retries by
  `webhook-id`, and do what a board does (`displayd.boardside`): content arrives
  LEAD_SECONDS ahead and is shown at its slot's start, on the second, by the board's clock
  (each line printed then); they answer `{"content_hash": …}` of what they show, as a real
  board may;
- one web-player board (delivery `poll`) to open in a browser;
- a campaign starting now with a short dwell, targeting every board;
- `displayd serve`'s application (uvicorn, the poll path in front), the URLs and the keys.

Ctrl-C (or SIGTERM) stops the server and the simulated boards and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx
import uvicorn
from aiohttp import web

from displayd.boardside import BoardSide
from displayd.config import Settings
from displayd.delivery import signing
from displayd.live.stream import close_streams
from displayd.serving import Server

if TYPE_CHECKING:
    from starlette.applications import Starlette

DEMO_DATABASE = Path("var/demo.db")
SLOGANS_NAME = "huong-dan-101-muc-IV.yaml"
LOOPBACK = "127.0.0.0/8"
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
LEAD_SECONDS = 2  # the push boards' lead: content arrives this long before it is due

Echo = Callable[[str], None]


@dataclass(frozen=True)
class DemoBoard:
    id: str
    name: str
    location: str
    delivery: str
    offset: int


# Offsets differ so the three push boards show three different slogans in the same slot.
PUSH_BOARDS = (
    DemoBoard("bang-sanh", "Bảng sảnh chính", "Sảnh tầng 1", "push", 0),
    DemoBoard("bang-cong", "Bảng cổng cơ quan", "Cổng chính", "push", 1),
    DemoBoard("bang-hoi-truong", "Bảng hội trường", "Hội trường tầng 3", "push", 2),
)
PLAYER_BOARD = DemoBoard("man-hinh-le-tan", "Màn hình lễ tân", "Quầy lễ tân", "poll", 3)
KEY_HOLDERS = (("admin", "Quản trị (demo)"), ("editor", "Chuyên viên (demo)"),
               ("approver", "Lãnh đạo Sở (demo)"), ("operator", "Thanh tra (demo)"))


def slogans_file() -> Path:
    """The section IV slogans: the repository's copy in a checkout, else the package's own."""
    package = Path(__file__).resolve().parent
    for candidate in (package.parent / "slogans" / SLOGANS_NAME, package / "demo_slogans.yaml"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{SLOGANS_NAME} is neither in the checkout nor in the package")


def demo_settings(environ: dict[str, str] | os._Environ[str] = os.environ) -> tuple[Settings, bool]:
    """The demo's settings and whether its database is the throw-away `var/demo.db`.

    Loopback is added to the board networks (the simulated boards live there); logs are
    quiet (warnings only) unless DISPLAYD_LOG_LEVEL says otherwise, so the boards' lines stand out.
    """
    base = Settings.load()
    overrides: dict[str, Any] = {
        "allowed_board_networks": [*base.allowed_board_networks,
                                   *([] if LOOPBACK in base.allowed_board_networks else [LOOPBACK])],
    }
    throwaway = "DISPLAYD_DATABASE_URL" not in environ
    if throwaway:
        overrides["database_url"] = f"sqlite+aiosqlite:///{DEMO_DATABASE}"
    if "DISPLAYD_LOG_LEVEL" not in environ:
        overrides["log_level"] = "WARNING"
    return Settings.load(**overrides), throwaway


def remove_demo_database() -> list[Path]:
    """Delete `var/demo.db` and its WAL, shared-memory and key files: every run starts fresh."""
    removed = []
    for path in sorted(DEMO_DATABASE.parent.glob(DEMO_DATABASE.name + "*")):
        path.unlink()
        removed.append(path)
    return removed


def prepare(settings: Settings) -> tuple[int, dict[str, str]]:
    """Migrate, import the slogans, make one key per role: (slogans imported, keys by role)."""
    from displayd.auth.keys import create_key
    from displayd.auth.roles import cli_principal
    from displayd.catalog.importer import import_file
    from displayd.db import migrate
    from displayd.db.session import create_engine, create_sessionmaker

    if settings.sqlite_path is not None:
        settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings)

    async def work() -> tuple[int, dict[str, str]]:
        engine = create_engine(settings)
        now = datetime.now(UTC)
        actor = cli_principal("demo")
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                result = await import_file(session, slogans_file(), actor=actor, now=now)
                keys = {}
                for role, name in KEY_HOLDERS:
                    _, keys[role] = await create_key(session, actor=actor, role=role, name=name, now=now)
        finally:
            await engine.dispose()
        return len(result.added) + len(result.unchanged), keys

    return asyncio.run(work())


@dataclass
class SimulatedBoards:
    """Push boards on one loopback HTTP server, `POST /<board_id>` each. They hold what arrives
    until it is due and print each change of what they show, on the second."""

    echo: Echo
    host: str = "127.0.0.1"
    port: int = 0
    secrets: dict[str, str] = field(default_factory=dict)
    shown: dict[str, list[str]] = field(default_factory=dict)
    sides: dict[str, BoardSide] = field(default_factory=dict)
    _seen: dict[str, set[str]] = field(default_factory=dict)
    _on_screen: dict[str, tuple[Any, ...] | None] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    _ticking: asyncio.Task[None] | None = None

    def url(self, board_id: str) -> str:
        return f"http://{self.host}:{self.port}/{board_id}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{board_id}", self._push)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])  # port 0 asked for a free one
        self._ticking = asyncio.create_task(self._tick(), name="displayd-demo-boards")

    async def stop(self) -> None:
        if self._ticking is not None:
            self._ticking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticking
        if self._runner is not None:
            await self._runner.cleanup()

    async def _push(self, request: web.Request) -> web.Response:
        board_id = request.match_info["board_id"]
        body = await request.read()
        now = datetime.now(UTC)
        clock = now.astimezone(ZONE).strftime("%H:%M:%S")
        secret = self.secrets.get(board_id)
        if secret is None:
            return web.json_response({"error": "not_found"}, status=404)
        try:
            webhook_id = signing.verify(secret, request.headers, body, now=time.time())
        except signing.BadSignature as problem:
            self.echo(f"[{board_id}] {clock} ✗ refused: {problem} (webhook-id {request.headers.get('webhook-id')})")
            return web.json_response({"error": "bad_signature", "detail": str(problem)}, status=401)
        seen = self._seen.setdefault(board_id, set())
        side = self.sides.setdefault(board_id, BoardSide())
        if webhook_id not in seen:  # a retry of a push already taken changes nothing
            seen.add(webhook_id)
            side.receive(json.loads(body), now)
        showing = side.showing(now)
        return web.json_response({"content_hash": showing["content_hash"]} if showing else {})

    async def _tick(self) -> None:
        """Each board's screen, looked at just after every whole second."""
        while True:
            await asyncio.sleep(1.005 - time.time() % 1)
            now = datetime.now(UTC)
            for board_id, side in self.sides.items():
                showing = side.showing(now)
                seen = None if showing is None else (showing["slot"]["campaign_id"], showing["slot"]["index"],
                                                     showing["content_hash"])
                if seen == self._on_screen.get(board_id):
                    continue
                self._on_screen[board_id] = seen
                clock = now.astimezone(ZONE).strftime("%H:%M:%S")
                if showing is None:
                    self.echo(f"[{board_id}] {clock} ✓ (blank)")
                    continue
                text = showing["content"]["text"]
                self.shown.setdefault(board_id, []).append(text)
                slot = showing["slot"]
                self.echo(f"[{board_id}] {clock} ✓ {text}  (slot {slot['index']}, until {_local(slot['ends_at'])})")


def _local(moment: str) -> str:
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).astimezone(ZONE).strftime("%H:%M:%S")


class _Server(Server):
    """uvicorn without its own signal handling: the demo stops the boards and the server together."""

    def __init__(self, config: uvicorn.Config, app: Starlette) -> None:
        super().__init__(config, before_shutdown=lambda: close_streams(app))
        self.ready = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.ready.set()


async def _setup(base: str, admin: str, editor: str, boards: SimulatedBoards, dwell: int) -> str:
    """Boards, then the campaign (so no push comes before a board's secret is known); the player's token."""
    tokens: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        for board in (*PUSH_BOARDS, PLAYER_BOARD):
            body: dict[str, Any] = {"id": board.id, "name": board.name, "location": board.location,
                                    "delivery": board.delivery, "offset": board.offset,
                                    "lead_seconds": LEAD_SECONDS}
            if board.delivery == "push":
                body["endpoint_url"] = boards.url(board.id)
            auth = {"Authorization": f"Bearer {admin}"}
            response = await http.post("/api/v1/boards", json=body, headers=auth)
            if response.status_code == 409:  # a kept database from an earlier run: same boards, new URL and secret
                patch = {"endpoint_url": body["endpoint_url"]} if board.delivery == "push" else {}
                (await http.patch(f"/api/v1/boards/{board.id}", json=patch, headers=auth)).raise_for_status()
                response = await http.post(f"/api/v1/boards/{board.id}/credentials", headers=auth)
            response.raise_for_status()
            made = response.json()
            boards.secrets[board.id] = made["secret"]
            tokens[board.id] = made["token"]
        slogans = (await http.get("/api/v1/slogans", params={"status": "approved", "limit": 1000},
                                  headers={"Authorization": f"Bearer {editor}"})).json()["items"]
        starts_at = datetime.now(UTC).replace(microsecond=0)
        response = await http.post("/api/v1/campaigns", headers={"Authorization": f"Bearer {editor}"}, json={
            "name": "Demo: Kỷ niệm 70 năm Chiến thắng Điện Biên Phủ",
            "starts_at": starts_at.isoformat(), "ends_at": (starts_at + timedelta(days=7)).isoformat(),
            "dwell_seconds": dwell, "priority": 900, "order": "sequential",
            "playlist": [{"slogan_id": s["id"], "weight": 1} for s in slogans], "targets": {"all": True}})
        response.raise_for_status()
    return tokens[PLAYER_BOARD.id]


def _banner(base: str, boards: SimulatedBoards, player_token: str, keys: dict[str, str], count: int,
            dwell: int) -> Iterator[str]:
    yield ""
    yield f"displayd demo is running: {count} slogans rotating every {dwell} s on {len(PUSH_BOARDS) + 1} boards."
    yield f"  dashboard  {base}/ui"
    yield f"  player     {base}/play/{PLAYER_BOARD.id}?token={player_token}"
    yield f"  API docs   {base}/docs"
    yield f"  metrics    {base}/metrics"
    yield f"  simulated push boards: {', '.join(boards.url(b.id) for b in PUSH_BOARDS)}"
    yield "keys (Authorization: Bearer …):"
    for role, _ in KEY_HOLDERS:
        yield f"  {role:<9}{keys[role]}"
    yield f'try:  curl -H "Authorization: Bearer {keys["operator"]}" {base}/api/v1/boards'
    yield "Ctrl-C stops the demo."
    yield ""


async def run(settings: Settings, *, port: int, dwell: int, keys: dict[str, str], count: int, echo: Echo) -> int:
    """Serve until SIGINT/SIGTERM; the exit status."""
    from displayd.app import create_app
    from displayd.live.poll import PollPath
    from displayd.serving import raise_open_file_limit, uvicorn_config

    raise_open_file_limit(settings)
    app = create_app(settings)
    config = uvicorn_config(PollPath(app, app), settings, host="127.0.0.1", port=port)
    server = _Server(config, app)
    loop = asyncio.get_running_loop()

    def stop() -> None:
        if server.should_exit:
            server.force_exit = True  # a second Ctrl-C: do not wait for open connections
        server.should_exit = True

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)
    boards = SimulatedBoards(echo)
    await boards.start()
    serving = asyncio.create_task(server.serve(), name="displayd-demo-server")
    try:
        ready = asyncio.create_task(server.ready.wait())
        await asyncio.wait([ready, serving], return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if not server.started:
            await serving
            return 0 if server.should_exit else 1  # stopped during start-up, or could not bind
        base = settings.public_url or f"http://127.0.0.1:{port}"
        try:
            player_token = await _setup(f"http://127.0.0.1:{port}", keys["admin"], keys["editor"], boards, dwell)
        except httpx.HTTPError:
            if not server.should_exit:
                raise
        else:  # a Ctrl-C during set-up goes straight to stopping
            for line in _banner(base.rstrip("/"), boards, player_token, keys, count, dwell):
                echo(line)
        await serving
    finally:
        if not serving.done():  # set-up failed: still stop the server cleanly
            server.should_exit = True
            await serving
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await boards.stop()
    echo("displayd demo stopped.")
    return 0
