"""Fan-out of one slot: displayd's pusher against bare aiohttp (and stock httpx), same run, same server.

    .venv/bin/python bench/fanout.py                         # 1,000 and 10,000 boards, 1,024 in flight
    .venv/bin/python bench/fanout.py --boards 1000,10000 --concurrency 256 --loop asyncio
    .venv/bin/python bench/fanout.py --quick                 # 200 and 400 boards, one run each

Prints, per size, the best of `--repeat` runs for each client and ends with
`fanout ratio: 0.xx of aiohttp (target >= 0.50); t(10k)/t(1k) = x.x (target <= 12); aiohttp's own x.x`.

- The boards are one fast raw-asyncio server (bench/harness/receiver.py `fast`, uvloop when
  installed) in a child process, so it does not share the measured event loop. Board i is the
  path `/b/<i>` on it.
- The server answers `204` with `Connection: close`, so every push opens its own connection, as in
  production: each board is a different host that gets one push per slot, so nothing is reused within
  a slot (and a 30 s slot outlives keep-alive). `--keepalive` measures connection reuse instead.
- Every client gets the same ~400-byte JSON document, the same concurrency (a pool of that many
  workers) and a fresh pool per run. displayd's column is `Pusher.push_all` with real signing and
  `make_client`; aiohttp's is a bare `session.post`; httpx's is `httpx.AsyncClient` with its own pool,
  limits raised to the same concurrency.
- Every run starts after a full `gc.collect()`, so none pays for the garbage (or the gen-2 collection
  due) left by the run before it; the last line also gives bare aiohttp's own t(10k)/t(1k).
- Loopback only, every phase bounded by `--phase-timeout`, the server is stopped on any exit.
  Exit status 0 when both targets are met, 1 when one is missed or something broke.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's displayd and bench.harness

from bench.harness.bare_aiohttp import fan_out, pool
from bench.harness.figures import ratio
from bench.harness.pushes import document, push_client, secret, signed_requests
from bench.harness.receiver import start_receiver
from bench.harness.running import Run, loop_runner, parse_args, run_bench
from displayd.delivery import Pusher

SECRET = secret(b"bench-secret-0123456789abcdef012")
QUICK = {"boards": "200,400", "repeat": 1}
Figures = dict[int, dict[str, tuple[float | None, int]]]  # size -> client -> (best seconds or None, failures)


async def run_httpx(urls: Sequence[str], bodies: Sequence[bytes], concurrency: int) -> int:
    headers = {"content-type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        async def one(i: int) -> bool:
            try:
                response = await client.post(urls[i], content=bodies[i], headers=headers)
                return response.is_success
            except httpx.HTTPError:
                return False

        return await pool(len(urls), concurrency, one)


async def run_displayd(urls: Sequence[str], bodies: Sequence[bytes], concurrency: int) -> int:
    deadline = asyncio.get_running_loop().time() + 120
    requests = signed_requests(urls, bodies, secret=SECRET, deadline=deadline, slot=1234)
    async with push_client(concurrency=concurrency) as client:
        results = await Pusher(client, max_attempts=1).push_all(requests, concurrency=concurrency)
    return sum(not r.delivered for r in results)


CLIENTS: dict[str, Callable[[Sequence[str], Sequence[bytes], int], Awaitable[int]]] = {
    "aiohttp": fan_out, "displayd": run_displayd, "httpx": run_httpx}


async def timed(name: str, urls: Sequence[str], bodies: Sequence[bytes], concurrency: int,
                limit: float) -> tuple[float | None, int]:
    gc.collect()  # every run starts from the same heap: no run pays for the garbage or gen-2 debt of the one before
    started = time.perf_counter()
    try:
        async with asyncio.timeout(limit):
            failures = await CLIENTS[name](urls, bodies, concurrency)
    except TimeoutError:
        return None, len(urls)
    return time.perf_counter() - started, failures


async def measure(base: str, sizes: Sequence[int], concurrency: int, repeat: int, limit: float) -> Figures:
    for name in CLIENTS:  # warm-up: imports, first connections, allocator
        await timed(name, [f"{base}/b/{i}" for i in range(200)], [document(i) for i in range(200)], concurrency, limit)
    figures: Figures = {}
    for size in sizes:
        urls, bodies = [f"{base}/b/{i}" for i in range(size)], [document(i) for i in range(size)]
        figures[size] = {}
        for name in CLIENTS:
            runs = [await timed(name, urls, bodies, concurrency, limit) for _ in range(repeat)]
            done = [run for run in runs if run[0] is not None]
            figures[size][name] = min(done, key=lambda run: run[0] or 0.0) if done else (None, size)
            best, failures = figures[size][name]
            rate = f"{size / best:8.0f}/s" if best else "   timeout"
            print(f"  {size:>6} boards  {name:<9} {best or float('nan'):7.3f} s {rate}  failures {failures}",
                  flush=True)
    return figures


def size_label(boards: int) -> str:
    return f"{boards // 1000}k" if boards % 1000 == 0 else str(boards)


def report(figures: Figures, sizes: Sequence[int]) -> int:
    for size, row in figures.items():
        ours, theirs, stock = row["displayd"][0], row["aiohttp"][0], row["httpx"][0]
        if ours and theirs:
            print(f"  {size:>6} boards: displayd {theirs / ours:.2f} of aiohttp; "
                  f"stock httpx {ratio(theirs, stock) if stock else 0:.2f} of aiohttp")
    first, last = figures[sizes[0]], figures[sizes[-1]]
    ours_first, ours_last, base_first, base_last = (first["displayd"][0], last["displayd"][0], first["aiohttp"][0],
                                                    last["aiohttp"][0])
    if not (ours_first and ours_last and base_last):
        print("fanout ratio: n/a (a run timed out)")
        return 1
    speed, growth = base_last / ours_last, ours_last / ours_first
    base_growth = f"{base_last / base_first:.1f}" if base_first else "n/a"
    print(f"fanout ratio: {speed:.2f} of aiohttp (target >= 0.50); "
          f"t({size_label(sizes[-1])})/t({size_label(sizes[0])}) = {growth:.1f} (target <= 12); "
          f"aiohttp's own {base_growth}")
    return 0 if speed >= 0.5 and growth <= 12 else 1


def fanout(run: Run, args: argparse.Namespace, sizes: list[int]) -> int:
    _, base = start_receiver(run, "fast", *(["--keepalive"] if args.keepalive else []))
    print(f"fanout: {args.loop} loop, concurrency {args.concurrency}, "
          f"{'keep-alive' if args.keepalive else 'a new connection per push'}, "
          f"{len(document(0))}-byte documents, best of {args.repeat}", flush=True)
    figures = loop_runner(args.loop)(measure(base, sizes, args.concurrency, args.repeat, args.phase_timeout))
    return report(figures, sizes)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--boards", default="1000,10000", help="comma-separated fan-out sizes")
    parser.add_argument("--concurrency", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3, help="runs per client and size; the best counts")
    parser.add_argument("--phase-timeout", type=float, default=120.0, help="seconds one run may take")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="uvloop, as `displayd serve` runs under uvicorn[standard]")
    parser.add_argument("--keepalive", action="store_true", help="let the server keep connections open")
    args = parse_args(parser, argv, QUICK)
    sizes = [int(n) for n in args.boards.split(",")]
    return run_bench("fanout", lambda run: fanout(run, args, sizes))


if __name__ == "__main__":
    raise SystemExit(main())
