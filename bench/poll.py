"""Board poll benchmark: `GET /api/v1/boards/{id}/current` answered 304, against a bare ASGI app.

What it measures: requests per second of displayd's poll path when every board already has
the current content (`If-None-Match` matches, so the answer is 304), divided by the
requests per second of a bare ASGI app (no framework, one fixed 304 answer with the same
kind of headers) served by uvicorn with the same settings as `displayd serve`. Target:
at least 0.60. With `--with-200` (the default) it also measures the full 200 answer
against a bare app that returns a body of the same size.

How:
- Everything runs on loopback (127.0.0.1) on free ports, in a temporary directory that is
  removed at the end: a SQLite database, `displayd db upgrade`, an admin key, the section IV
  slogans, then `displayd serve` (one process, one uvicorn worker). Through the API it
  creates `--boards` poll boards (default 1,000) in group `bench` and one running campaign
  (dwell 3600 s, all approved slogans) so no slot changes during the run; each board's
  ETag is learnt with one GET.
- wrk (Debian's package) loads both servers with the same command and the same Lua script,
  which cycles through the boards setting `Authorization: Bearer <board token>` and
  `If-None-Match: <etag>` (the bare app ignores them). The requests are pre-formatted in
  the script's `init`, so wrk spends as little CPU as possible.
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

Run: `.venv/bin/python bench/poll.py [--boards 1000] [--duration 10] [--connections 64]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import (  # the helper module sits beside this script
    DISPLAYD,
    LOOPBACK,
    SLOGANS,
    BenchError,
    Child,
    Processes,
    WrkResult,
    cli,
    cpu_split,
    displayd_env,
    free_port,
    lua_string,
    require_wrk,
    run_wrk,
    sigterm_as_interrupt,
    start_bare,
    wait_ready,
    warn_if_busy,
)

TARGET = 0.60
WARMUP_SECONDS = 2.0
SAMPLE = 20


@dataclass(frozen=True)
class BoardAuth:
    id: str
    token: str
    etag: str


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def _post(client: httpx.AsyncClient, url: str, body: dict[str, object]) -> dict[str, object]:
    response = await client.post(url, json=body)
    if response.status_code != 201:
        raise BenchError(f"POST {url} {body} answered {response.status_code}: {response.text}")
    return response.json()  # type: ignore[no-any-return]


async def populate(base: str, admin_key: str, boards: int, concurrency: int = 8) -> list[BoardAuth]:
    """Create the boards and the campaign through the API; learn every board's ETag."""
    headers = {"Authorization": f"Bearer {admin_key}"}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60, limits=limits) as client:
        response = await client.get("/api/v1/slogans", params={"status": "approved", "limit": 1000})
        response.raise_for_status()
        slogan_ids = [item["id"] for item in response.json()["items"]]
        if not slogan_ids:
            raise BenchError("no approved slogans after the import")
        tokens: dict[str, str] = {}
        gate = asyncio.Semaphore(concurrency)

        async def create(i: int) -> None:
            board_id = f"bang-{i:04d}"
            async with gate:
                made = await _post(client, "/api/v1/boards", {
                    "id": board_id, "name": f"Bảng {i}", "delivery": "poll", "groups": ["bench"]})
            tokens[board_id] = str(made["token"])

        started = time.monotonic()
        await asyncio.gather(*(create(i) for i in range(boards)))
        print(f"created {boards} boards in {time.monotonic() - started:.1f} s", flush=True)
        # After the boards: a campaign's targets must name a group some board is in.
        now = datetime.now(UTC)
        await _post(client, "/api/v1/campaigns", {
            "name": "bench", "starts_at": iso(now - timedelta(hours=1)), "ends_at": iso(now + timedelta(days=1)),
            "dwell_seconds": 3600, "playlist": [{"slogan_id": i, "weight": 1} for i in slogan_ids],
            "targets": {"groups": ["bench"]},
        })

        etags: dict[str, str] = {}

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
            response = client.get(f"/api/v1/boards/{board.id}/current", headers=headers)
            expected = 304 if conditional else 200
            if response.status_code != expected or response.headers.get("etag") != board.etag:
                raise BenchError(f"{board.id} answered {response.status_code} (ETag {response.headers.get('etag')}),"
                                 f" expected {expected} with ETag {board.etag}: {response.text}")
            body = body or response.content
    return body


def write_lua(path: Path, boards: list[BoardAuth], *, conditional: bool) -> None:
    """A wrk script cycling through the boards with their token (and ETag when `conditional`)."""
    rows = []
    for board in boards:
        etag = lua_string(board.etag) if conditional else "nil"
        rows.append(f"  {{{lua_string(f'/api/v1/boards/{board.id}/current')}, "
                    f"{lua_string('Bearer ' + board.token)}, {etag}}},")
    path.write_text("\n".join([
        "-- generated by bench/poll.py",
        "local boards = {", *rows, "}",
        "local requests = {}",
        "local n = #boards",
        "local i = 0",
        "function init(args)",
        "  for k, b in ipairs(boards) do",
        '    local headers = {["Host"] = wrk.host .. ":" .. tostring(wrk.port), ["Authorization"] = b[2]}',
        '    if b[3] then headers["If-None-Match"] = b[3] end',
        '    requests[k] = wrk.format("GET", b[1], headers)',
        "  end",
        "end",
        "function request()",
        "  i = i % n + 1",
        "  return requests[i]",
        "end",
        "",
    ]))


@dataclass
class Series:
    name: str
    runs: list[WrkResult]

    @property
    def median(self) -> float:
        return statistics.median(r.rps for r in self.runs)

    @property
    def mean(self) -> float:
        return statistics.fmean(r.rps for r in self.runs)


def measure(label: str, targets: list[tuple[str, str]], script: Path, args: argparse.Namespace, procs: Processes,
            wrk: str, workdir: Path) -> dict[str, Series]:
    """Warm each target up, then run them interleaved `args.rounds` times; fail on any error answer."""
    series = {name: Series(name, []) for name, _ in targets}

    def one(name: str, url: str, duration: float) -> WrkResult:
        result = run_wrk(procs, wrk, url, script=script, duration=duration, threads=args.threads,
                         connections=args.connections, cwd=workdir, cpus=args.wrk_cpus)
        if result.requests == 0:
            raise BenchError(f"{label} {name}: wrk completed no requests:\n{result.output}")
        if result.non_2xx_3xx:
            raise BenchError(f"{label} {name}: {result.non_2xx_3xx} of {result.requests} answers were not 2xx/3xx:\n"
                             f"{result.output}")
        if result.socket_error_count:
            raise BenchError(f"{label} {name}: socket errors {result.socket_errors}:\n{result.output}")
        return result

    for name, url in targets:
        one(name, url, WARMUP_SECONDS)
    for round_ in range(1, args.rounds + 1):
        for name, url in targets:
            result = one(name, url, args.duration)
            series[name].runs.append(result)
            print(f"  {label} round {round_} {name:<8} {result.rps:>10,.0f} req/s  "
                  f"({result.requests:,} requests, mean latency {result.latency_avg})", flush=True)
    return series


def report(label: str, series: dict[str, Series]) -> float:
    ours, bare = series["displayd"], series["bare"]
    ratio = ours.median / bare.median
    pairs = ", ".join(f"{o.rps / b.rps:.2f}" for o, b in zip(ours.runs, bare.runs, strict=True))
    print(f"  {label}: ratio of medians {ratio:.3f}, of means {ours.mean / bare.mean:.3f}, per round {pairs}")
    return ratio


def start_displayd(procs: Processes, workdir: Path, env: dict[str, str],
                   cpus: set[int] | None = None) -> tuple[Child, str]:
    port = free_port()
    child = procs.start("displayd", [str(DISPLAYD), "serve", "--host", LOOPBACK, "--port", str(port)], env=env,
                        cwd=workdir, log_path=workdir / "displayd.log", cpus=cpus)
    return child, f"http://{LOOPBACK}:{port}"


def run(args: argparse.Namespace, wrk: str, workdir: Path, procs: Processes) -> None:
    env = displayd_env(workdir)
    cli(["db", "upgrade"], env=env, cwd=workdir)
    created = cli(["keys", "create", "--role", "admin", "--name", "bench"], env=env, cwd=workdir)
    admin_key = created.strip().splitlines()[-1]
    print(cli(["slogans", "import", str(SLOGANS)], env=env, cwd=workdir).strip(), flush=True)

    server, base = start_displayd(procs, workdir, env, args.server_cpus)
    try:
        measure_all(args, wrk, workdir, procs, server, base, admin_key)
    except BenchError as exc:
        raise BenchError(f"{exc}\n--- displayd log (last lines) ---\n{server.log_tail()}") from exc


def measure_all(args: argparse.Namespace, wrk: str, workdir: Path, procs: Processes, server: Child, base: str,
                admin_key: str) -> None:
    wait_ready(server, f"{base}/readyz")
    boards = asyncio.run(populate(base, admin_key, args.boards))
    check_sample(base, boards, conditional=True)
    body = check_sample(base, boards, conditional=False)

    bare_env = {**os.environ, "BARE_STATUS": "304", "BARE_ETAG": boards[0].etag}
    bare, bare_base = start_bare(procs, workdir, name="bare", env=bare_env, cpus=args.server_cpus)
    wait_ready(bare, f"{bare_base}/", status=304)

    url = f"{base}/"  # wrk takes the host from the URL; the paths come from the script
    script = workdir / "poll304.lua"
    write_lua(script, boards, conditional=True)
    print(f"304 path: wrk --threads {args.threads} --connections {args.connections} --duration {args.duration:g}s, "
          f"{len(boards)} boards, server CPUs {args.server_cpus or 'any'}, wrk CPUs {args.wrk_cpus or 'any'}",
          flush=True)
    s304 = measure("304", [("bare", f"{bare_base}/"), ("displayd", url)], script, args, procs, wrk, workdir)
    check_sample(base, boards, conditional=True)  # still 304 after the load: the slot did not change under us
    ratio304 = report("304", s304)
    procs.finish(bare)

    ratio200: float | None = None
    s200: dict[str, Series] = {}
    if args.with_200:
        (workdir / "body.json").write_bytes(body)
        bare_env = {**os.environ, "BARE_STATUS": "200", "BARE_ETAG": boards[0].etag,
                    "BARE_BODY": str(workdir / "body.json")}
        bare200, bare200_base = start_bare(procs, workdir, name="bare200", env=bare_env, cpus=args.server_cpus)
        wait_ready(bare200, f"{bare200_base}/")
        script = workdir / "poll200.lua"
        write_lua(script, boards, conditional=False)
        print(f"200 path: same load, no If-None-Match; the bare app answers a {len(body)}-byte body", flush=True)
        s200 = measure("200", [("bare", f"{bare200_base}/"), ("displayd", url)], script, args, procs, wrk, workdir)
        ratio200 = report("200", s200)

    if server.process.poll() is not None:
        raise BenchError(f"displayd exited during the run:\n{server.log_tail()}")
    print(f"poll 304 ratio: {ratio304:.2f} (displayd {s304['displayd'].median:.0f} req/s, "
          f"bare {s304['bare'].median:.0f} req/s, target >= {TARGET:.2f})")
    if ratio200 is not None:
        print(f"poll 200 ratio: {ratio200:.2f} (displayd {s200['displayd'].median:.0f} req/s, "
              f"bare {s200['bare'].median:.0f} req/s)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
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
    args = parser.parse_args(argv)
    args.server_cpus, args.wrk_cpus = cpu_split(args.pin)
    if args.boards < 1 or args.duration < 1 or args.connections < 1 or args.threads < 1 or args.rounds < 1:
        parser.error("--boards, --duration, --connections, --threads and --rounds must be positive")
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = require_wrk()
    sigterm_as_interrupt()
    started = time.monotonic()
    warn_if_busy()
    procs = Processes()
    try:
        with tempfile.TemporaryDirectory(prefix="displayd-bench-poll-") as tmp:
            try:
                run(args, wrk, Path(tmp), procs)
            finally:
                procs.stop_all()
    except BenchError as exc:
        print(f"bench/poll.py failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench/poll.py interrupted; every process it started has been stopped", file=sys.stderr)
        return 130
    sys.stdout.flush()
    print(f"total time {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
