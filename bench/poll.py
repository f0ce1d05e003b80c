"""Board poll benchmark: `GET /api/v1/boards/{id}/current` answered 304, against a bare ASGI app.

    .venv/bin/python bench/poll.py                       # 1,000 boards, 3 rounds of 10 s, SQLite
    .venv/bin/python bench/poll.py --quick               # 30 boards, 1 round of 1 s: does it work?
    .venv/bin/python bench/poll.py --database-url postgresql://postgres@127.0.0.1/test

What it measures: requests per second of displayd's poll path when every board already has
the current content (`If-None-Match` matches, so the answer is 304), divided by the
requests per second of a bare ASGI app (no framework, one fixed 304 answer with the same
kind of headers) served by uvicorn with the same settings as `displayd serve`. Target:
at least 0.60. With `--with-200` (the default) it also measures the full 200 answer
against a bare app that returns a body of the same size.

How:
- Everything runs on loopback on free ports, in a temporary directory removed at the end:
  a scratch database (a SQLite file, or with `--database-url` a database created on that
  PostgreSQL server and dropped at the end), `displayd db upgrade`, an admin key, the
  section IV slogans. `--boards` poll boards (default 1,000) in group `bench` are created
  with displayd's board service (bench/harness/boards.py), then `displayd serve` (one
  process, one uvicorn worker) starts; one running campaign (dwell 3600 s, all approved
  slogans) is created through the API so no slot changes during the run; each board's ETag
  is learnt with one GET.
- wrk (Debian's package) loads both servers with the same command and the same Lua script,
  which cycles through the boards setting `Authorization: Bearer <board token>` and
  `If-None-Match: <etag>` (the bare app ignores them), requests pre-formatted in `init`.
- Default load: `--threads 1 --connections 64 --duration 10`, `--rounds 3`, `--pin`. The
  machine has 2 cores and the server (one worker, so one core at most) shares them with
  wrk: one wrk thread pinned to one CPU and the server under test pinned to the other
  (`--pin`, via sched_setaffinity) gave the most stable figures (per-round ratios within
  ±0.02; unpinned they spread ±0.10 as the scheduler moves both onto one core now and then).
  Runs are interleaved (bare, displayd, bare, displayd, ...) after a 2 s warm-up of each,
  to cancel drift; the ratio is of the medians (the mean ratio is printed too).
- Before loading, a sample of boards is checked to answer 304 (and 200 with the body's
  ETag without `If-None-Match`); after each wrk run, any non-2xx/3xx answers or socket
  errors fail the benchmark, since 304s are 3xx and errors would inflate the figure.
- Every process started is stopped at the end (process groups, also on Ctrl-C). Exit
  status 0 whether or not the target is met; 1 when something broke; 2 when wrk is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's displayd and bench.harness

from bench.harness.api import admin_client, create_campaign
from bench.harness.bare_asgi import start_bare
from bench.harness.boards import board_ids, create_boards
from bench.harness.databases import postgresql_url, scratch_database
from bench.harness.deployment import Displayd, isolate_environment
from bench.harness.figures import Rounds, ratio
from bench.harness.processes import BenchError, cpu_split
from bench.harness.running import Run, parse_args, run_bench
from bench.harness.wrk import WrkResult, require_wrk, run_wrk, write_script

TARGET = 0.60
WARMUP_SECONDS = 2.0
SAMPLE = 20
QUICK = {"boards": 30, "duration": 1.0, "rounds": 1, "connections": 8}


@dataclass(frozen=True)
class BoardAuth:
    id: str
    token: str
    etag: str

    @property
    def path(self) -> str:
        return f"/api/v1/boards/{self.id}/current"


async def learn_etags(base: str, tokens: dict[str, str], concurrency: int = 8) -> list[BoardAuth]:
    """One GET per board: each must be showing something; its ETag."""
    etags: dict[str, str] = {}
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=concurrency)) as client:
        async def learn(board_id: str) -> None:
            async with gate:
                response = await client.get(f"/api/v1/boards/{board_id}/current",
                                            headers={"Authorization": f"Bearer {tokens[board_id]}"})
            if response.status_code != 200:
                raise BenchError(f"GET /current of {board_id} answered {response.status_code}: {response.text}")
            if response.json().get("state") != "showing":
                raise BenchError(f"{board_id} is not showing anything: {response.text}")
            etags[board_id] = response.headers["etag"]

        await asyncio.gather(*(learn(board_id) for board_id in tokens))
    return [BoardAuth(board_id, tokens[board_id], etags[board_id]) for board_id in sorted(tokens)]


def check_sample(base: str, boards: list[BoardAuth], *, conditional: bool) -> bytes:
    """A few polls through httpx answer as the load will: 304 with If-None-Match, else 200. Returns a 200 body."""
    body = b""
    with httpx.Client(base_url=base, timeout=10) as client:
        for board in random.Random(1).sample(boards, min(SAMPLE, len(boards))):
            headers = {"Authorization": f"Bearer {board.token}"}
            if conditional:
                headers["If-None-Match"] = board.etag
            response = client.get(board.path, headers=headers)
            expected = 304 if conditional else 200
            if response.status_code != expected or response.headers.get("etag") != board.etag:
                raise BenchError(f"{board.id} answered {response.status_code} (ETag {response.headers.get('etag')}),"
                                 f" expected {expected} with ETag {board.etag}: {response.text}")
            body = body or response.content
    return body


def load(run: Run, args: argparse.Namespace, wrk: str, label: str, targets: dict[str, str],
         script: Path) -> dict[str, Rounds[WrkResult]]:
    """Warm each target up, then run them interleaved `args.rounds` times; fail on any error answer."""
    def one(name: str, url: str, duration: float) -> WrkResult:
        return run_wrk(run.procs, wrk, url, script=script, duration=duration, threads=args.threads,
                       connections=args.connections, cwd=run.workdir, cpus=args.wrk_cpus).check(f"{label} {name}")

    series: dict[str, Rounds[WrkResult]] = {name: Rounds(name) for name in targets}
    for name, url in targets.items():
        one(name, url, WARMUP_SECONDS)
    for round_ in range(1, args.rounds + 1):
        for name, url in targets.items():
            result = one(name, url, args.duration)
            series[name].runs.append(result)
            print(f"  {label} round {round_} {name:<8} {result.rps:>10,.0f} req/s  "
                  f"({result.requests:,} requests, mean latency {result.latency_avg})", flush=True)
    ours, bare = series["displayd"], series["bare"]
    pairs = ", ".join(f"{o.rps / b.rps:.2f}" for o, b in zip(ours.runs, bare.runs, strict=True))
    print(f"  {label}: ratio of medians {ratio(ours.median('rps'), bare.median('rps')):.3f}, "
          f"of means {ratio(ours.mean('rps'), bare.mean('rps')):.3f}, per round {pairs}")
    return series


def summary(label: str, series: dict[str, Rounds[WrkResult]], target: str = "") -> str:
    ours, bare = series["displayd"].median("rps"), series["bare"].median("rps")
    return (f"poll {label} ratio: {ratio(ours, bare):.2f} (displayd {ours:.0f} req/s, bare {bare:.0f} req/s"
            f"{target})")


def measure(run: Run, args: argparse.Namespace, wrk: str) -> int:
    isolate_environment()
    displayd = Displayd(run, run.stack.enter_context(scratch_database(run.workdir, "poll", server=args.database_url)))
    admin_key = displayd.prepare()
    tokens, took = create_boards(displayd.settings(), board_ids(0, args.boards), delivery="poll", groups=["bench"])
    print(f"created {args.boards} boards in {took:.1f} s (service layer)", flush=True)
    base = displayd.serve(cpus=args.server_cpus)
    now = datetime.now(UTC)
    with admin_client(base, admin_key) as client:
        create_campaign(client, name="bench", starts_at=now - timedelta(hours=1), ends_at=now + timedelta(days=1),
                        dwell_seconds=3600, targets={"groups": ["bench"]})
    boards = asyncio.run(learn_etags(base, tokens))
    check_sample(base, boards, conditional=True)
    body = check_sample(base, boards, conditional=False)

    bare, bare_base = start_bare(run, status=304, etag=boards[0].etag, cpus=args.server_cpus)
    script = run.workdir / "poll304.lua"
    write_script(script, [(b.path, {"Authorization": f"Bearer {b.token}", "If-None-Match": b.etag}) for b in boards])
    print(f"304 path: wrk --threads {args.threads} --connections {args.connections} --duration {args.duration:g}s, "
          f"{len(boards)} boards on {displayd.kind}, server CPUs {args.server_cpus or 'any'}, "
          f"wrk CPUs {args.wrk_cpus or 'any'}", flush=True)
    # wrk takes the host from the URL; the paths come from the script
    s304 = load(run, args, wrk, "304", {"bare": f"{bare_base}/", "displayd": f"{base}/"}, script)
    check_sample(base, boards, conditional=True)  # still 304 after the load: the slot did not change under us
    run.procs.finish(bare)

    s200: dict[str, Rounds[WrkResult]] = {}
    if args.with_200:
        (run.workdir / "body.json").write_bytes(body)
        bare200, bare200_base = start_bare(run, status=200, etag=boards[0].etag, body=run.workdir / "body.json",
                                           name="bare200", cpus=args.server_cpus)
        script = run.workdir / "poll200.lua"
        write_script(script, [(b.path, {"Authorization": f"Bearer {b.token}"}) for b in boards])
        print(f"200 path: same load, no If-None-Match; the bare app answers a {len(body)}-byte body", flush=True)
        s200 = load(run, args, wrk, "200", {"bare": f"{bare200_base}/", "displayd": f"{base}/"}, script)
        run.procs.finish(bare200)

    displayd.serving.check_alive()
    print(summary("304", s304, f", target >= {TARGET:.2f}"))
    if s200:
        print(summary("200", s200))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--boards", type=int, default=1000, help="poll boards to create (default 1000)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: the server needs a core)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per server (default 3)")
    parser.add_argument("--with-200", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure the 200 path (default on)")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True,
                        help="pin the server under test to the first CPU and wrk to the others (default on)")
    parser.add_argument("--database-url", type=postgresql_url, default=None,
                        help="run on this PostgreSQL server, in a scratch database created beside the one named "
                             "(default: a temporary SQLite file)")
    args = parse_args(parser, argv, QUICK)
    args.server_cpus, args.wrk_cpus = cpu_split(args.pin)
    if args.boards < 1 or args.duration < 1 or args.connections < 1 or args.threads < 1 or args.rounds < 1:
        parser.error("--boards, --duration, --connections, --threads and --rounds must be positive")
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads")
    wrk = require_wrk()
    return run_bench("poll", lambda run: measure(run, args, wrk))


if __name__ == "__main__":
    sys.exit(main())
