"""The bare baseline of the HTTP benchmarks: an ASGI app with no framework and one fixed answer,
served by stock uvicorn (uvloop, httptools, no access log). `displayd serve` adds its own
protocol class (`displayd.serving`: limits on heads and idle connections) and trusted-proxy
headers; served with those, this app answered as fast (49.9k/56.4k/57.4k against
50.6k/56.0k/60.4k req/s stock, interleaved, on 2026-12-04): what the ratio measures is displayd's
own work.

    child, base = start_bare(run, status=304, etag='"1-0-…"')             # 304, ETag, Cache-Control
    child, base = start_bare(run, status=200, etag=etag, body=path)       # 200 with the body in `path`

It runs in a child process (`python -m bench.harness.bare_asgi`), pinned to `cpus` when given.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from bench.harness.processes import LOOPBACK, Child, free_port, module_argv, python_env, wait_ready
from bench.harness.running import Run

Message = MutableMapping[str, Any]


def make_app(status: int, etag: str, body: bytes) -> Callable[..., Awaitable[None]]:
    headers = [(b"etag", etag.encode()), (b"cache-control", b"max-age=3600")]
    if status == 200:
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    start = {"type": "http.response.start", "status": status, "headers": headers}
    end = {"type": "http.response.body", "body": body if status == 200 else b""}

    async def app(scope: Message, receive: Callable[[], Awaitable[Message]],
                  send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send(start)
        await send(end)

    return app


def start_bare(run: Run, *, status: int, etag: str, body: Path | None = None, name: str = "bare",
               cpus: set[int] | None = None) -> tuple[Child, str]:
    """Serve the bare app on a free loopback port; (child, base URL) once it answers `status`."""
    port = free_port()
    argv = module_argv(__name__, "--port", str(port), "--status", str(status), "--etag", etag,
                       *(["--body", str(body)] if body else []))
    child = run.procs.start(name, argv, env=python_env(), cwd=run.workdir, log_path=run.workdir / f"{name}.log",
                            cpus=cpus)
    base = f"http://{LOOPBACK}:{port}"
    wait_ready(child, f"{base}/", status=status)
    return child, base


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="the bare ASGI baseline (started by the benchmarks)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--status", type=int, choices=(200, 304), default=304)
    parser.add_argument("--etag", default='"1-0-0123456789abcdef0123456789abcdef"')
    parser.add_argument("--body", type=Path, help="the 200 answer's body")
    args = parser.parse_args()
    app = make_app(args.status, args.etag, args.body.read_bytes() if args.body else b"")
    # uvicorn's stock server; displayd's protocol class costs nothing measurable (module docstring).
    uvicorn.run(app, host=LOOPBACK, port=args.port, log_config=None, access_log=False, server_header=False)


if __name__ == "__main__":
    main()
