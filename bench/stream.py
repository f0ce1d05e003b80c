"""Board event stream benchmark: 5,000 streams open on one `displayd serve`, a short dwell, a retirement.

    .venv/bin/python bench/stream.py                 # 5,000 streams, dwell 5 s, SQLite
    .venv/bin/python bench/stream.py --quick         # 500 streams: does it work?
    .venv/bin/python bench/stream.py --database-url postgresql://postgres@127.0.0.1/test

`--streams` `delivery: stream` boards each hold one stream open; one campaign of every slogan,
`--dwell` s slots. Measured:
- late shows: each `show` sent ahead (revision 0 of every slot whose lead window, 2 s for stream
  boards, began after its stream had its first event) must arrive before its `slot.starts_at`.
  A slot whose window began while its stream was still opening was sent at the opening, late
  or not, and is not counted;
- a retirement half a second into a slot: its blank revision's arrival on each stream − the
  moment the API call was sent, p50/p99/max (never arrived: infinitely late); target 99 % within
  500 ms;
- memory per open stream: server RSS with the streams open − before, over the streams; target
  <= 20 KB. The baseline is read after every board polled once and two slots passed (the
  snapshot's per-board answers and the leader's per-slot work are in it), the second reading
  two slots after every stream opened; the server's CPU per slot over the same windows;
- the rotation log of the slots sent ahead: rows delivered before their start (informational).

Loopback only, a temporary directory, a scratch database (SQLite, or one created beside
`--database-url` and dropped). Boards are created with the board service and made `delivery:
stream` in the database before `displayd serve` starts (DISPLAYD_MAX_CONNECTIONS above the
stream count). The client is this script in a child process (`--client`): raw asyncio sockets,
the chunked body parsed by hand, each event's `time.time()` noted; it writes a file once every
stream has its first event and, on SIGTERM, what it saw. `--pin` (default) puts the server on
the first CPU and the client on the others.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import shutil
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's displayd and bench.harness

from bench.harness.api import admin_client, create_campaign, iso, parse_iso
from bench.harness.boards import board_ids, create_boards
from bench.harness.databases import postgresql_url, scratch_database
from bench.harness.deployment import Displayd, isolate_environment
from bench.harness.figures import percentile, verdict
from bench.harness.processes import LOOPBACK, BenchError, Child, cpu_split, memory_mb, python_env
from bench.harness.running import Run, parse_args, run_bench
from displayd.protocol import STREAM_LEAD

QUICK = {"streams": 500}
RETIREMENT_TARGET = 0.5  # seconds, for 99 % of the streams
KB_TARGET = 20.0
CONNECTING = 200  # streams opening at once (uvicorn's accept backlog is 2048)


# The client (a child process)

async def client(port: int, workdir: Path) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tokens: list[list[str]] = json.loads((workdir / "tokens.json").read_text())
    shows: list[tuple[int, int, int, float, float]] = []  # (stream, slot index, revision, arrival, starts_at)
    blanks: list[tuple[int, int, int, float]] = []  # (stream, slot index or -1, revision, arrival)
    starts: dict[str, float] = {}
    opened_at: dict[int, float] = {}  # stream → its first event's arrival
    first = asyncio.Event()
    opened = [0]
    broken: list[str] = []
    gate = asyncio.Semaphore(CONNECTING)

    def event(number: int, block: bytes, arrival: float) -> None:
        fields = dict(line.split(": ", 1) for line in block.decode().split("\n") if line and line[0] != ":")
        if "data" not in fields:
            return
        data = json.loads(fields["data"])
        slot = data.get("slot")
        if fields["event"] == "show":
            starts_at = starts.get(slot["starts_at"])
            if starts_at is None:
                starts_at = starts[slot["starts_at"]] = parse_iso(slot["starts_at"]).timestamp()
            shows.append((number, slot["index"], data["revision"], arrival, starts_at))
        else:
            blanks.append((number, slot["index"] if slot else -1, data.get("revision", 0), arrival))

    async def events(number: int, reader: asyncio.StreamReader, buffer: bytes) -> tuple[int, bytes]:
        """Read one chunk of the body (chunked encoding) and note its events; (events, what is left)."""
        size = int((await reader.readline()).strip(), 16)
        if size == 0:
            raise EOFError("the stream ended")
        buffer += (await reader.readexactly(size + 2))[:-2]
        arrival, count = time.time(), 0
        while b"\n\n" in buffer:
            block, buffer = buffer.split(b"\n\n", 1)
            event(number, block, arrival)
            count += 1
        return count, buffer

    async def stream(number: int, board_id: str, token: str) -> None:
        writer = None
        try:
            async with gate:  # until its first event: the next ones open meanwhile
                reader, writer = await asyncio.open_connection(LOOPBACK, port, limit=1 << 20)
                writer.write(f"GET /api/v1/boards/{board_id}/events HTTP/1.1\r\nHost: {LOOPBACK}\r\n"
                             f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    raise BenchError(head.split(b"\r\n", 1)[0].decode())
                count, buffer = 0, b""
                while count == 0:
                    count, buffer = await events(number, reader, buffer)
            opened_at[number] = time.time()
            opened[0] += 1
            if opened[0] == len(tokens):
                first.set()
            while True:
                _, buffer = await events(number, reader, buffer)
        except (OSError, ValueError, EOFError, asyncio.IncompleteReadError, BenchError) as exc:
            broken.append(f"{board_id}: {exc!r}")
        finally:
            if writer is not None:
                writer.close()

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    tasks = [asyncio.create_task(stream(n, b, t)) for n, (b, t) in enumerate(tokens)]
    await first.wait()
    (workdir / "ready").write_text(str(time.time()))
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    (workdir / "seen.json").write_text(json.dumps({"shows": shows, "blanks": blanks, "broken": broken,
                                                         "opened_at": opened_at}))


# The run

def make_streamed(displayd: Displayd) -> None:
    """`delivery: stream` for every board (the API does not take it yet), before `serve` starts."""
    from sqlalchemy import update

    from displayd.db.models import Board
    from displayd.db.session import create_engine

    async def work() -> None:
        engine = create_engine(displayd.settings())
        try:
            async with engine.begin() as connection:
                await connection.execute(update(Board).values(delivery="stream"))
        finally:
            await engine.dispose()

    asyncio.run(work())


async def poll_all(base: str, tokens: dict[str, str]) -> None:
    """One poll per board: each board's current answer is in the snapshot before the baseline."""
    gate = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        async def poll(board_id: str) -> None:
            async with gate:
                response = await http.get(f"/api/v1/boards/{board_id}/current",
                                          headers={"Authorization": f"Bearer {tokens[board_id]}"})
            if response.status_code != 200:
                raise BenchError(f"poll of {board_id} answered {response.status_code}")

        await asyncio.gather(*(poll(b) for b in tokens))


def wait_for_file(path: Path, displayd: Displayd, client: Child, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        displayd.serving.check_alive()
        client.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(f"{path.name} did not appear within {timeout:.0f} s")
        time.sleep(0.1)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def next_slot(start: datetime, dwell: int, after: datetime) -> datetime:
    return start + timedelta(seconds=dwell * (math.floor((after - start).total_seconds() / dwell) + 1))


def measure(run: Run, args: argparse.Namespace) -> int:
    isolate_environment()
    if args.keep_log is not None:  # unwound after the children have stopped
        run.stack.callback(lambda: (run.workdir / "displayd.log").exists() and shutil.copyfile(
            run.workdir / "displayd.log", args.keep_log))
    url = run.stack.enter_context(scratch_database(run.workdir, "stream", server=args.database_url))
    displayd = Displayd(run, url, overrides={"max_connections": str(args.streams + 1024)})
    admin_key = displayd.prepare()
    tokens, took = create_boards(displayd.settings(), board_ids(0, args.streams), delivery="poll")
    make_streamed(displayd)
    print(f"created {args.streams} stream boards in {took:.1f} s (service layer)", flush=True)
    base = displayd.serve(cpus=args.server_cpus)
    pid = displayd.serving.process.pid
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    with admin_client(base, admin_key) as admin:
        create_campaign(admin, name="bench stream", starts_at=start, ends_at=start + timedelta(days=1),
                        dwell_seconds=args.dwell, targets={"all": True})
        asyncio.run(poll_all(base, tokens))
        displayd.wait_until(datetime.now(UTC) + timedelta(seconds=args.dwell))
        cpu = cpu_seconds(pid)
        displayd.wait_until(datetime.now(UTC) + timedelta(seconds=2 * args.dwell))
        cpu_idle = (cpu_seconds(pid) - cpu) / 2
        _, before = memory_mb(pid)

        (run.workdir / "tokens.json").write_text(json.dumps(sorted(tokens.items())))
        opening = time.monotonic()
        client = run.procs.start("client", [sys.executable, __file__, "--client", str(base.rsplit(":", 1)[1]),
                                            str(run.workdir)], env=python_env(), cwd=run.workdir,
                                 log_path=run.workdir / "client.log", cpus=args.client_cpus)
        wait_for_file(run.workdir / "ready", displayd, client, timeout=300)
        print(f"{args.streams} streams open, each with its first event, {time.monotonic() - opening:.1f} s after "
              "the client started", flush=True)
        cpu = cpu_seconds(pid)
        displayd.wait_until(datetime.now(UTC) + timedelta(seconds=2 * args.dwell))
        cpu_streams = (cpu_seconds(pid) - cpu) / 2
        _, after = memory_mb(pid)

        # Half a second into a slot (the next is sent 2 s before its start): only the slot under way is held.
        retire_at = next_slot(start, args.dwell, datetime.now(UTC)) + timedelta(seconds=0.5)
        displayd.wait_until(retire_at)
        current = admin.get(f"/api/v1/boards/{board_ids(0, 1)[0]}/current").json()
        slot, slogan = current["slot"]["index"], current["content"]["slogan_id"]
        called = time.time()
        retired = admin.post(f"/api/v1/slogans/{slogan}/retire", json={"reason": "bench"})
        answered = time.time() - called
        if retired.status_code != 200:
            raise BenchError(f"retiring slogan {slogan} answered {retired.status_code}: {retired.text}")
        displayd.wait_until(datetime.now(UTC) + timedelta(seconds=2 * args.dwell))
        run.procs.finish(client)  # SIGTERM: it writes what it saw and exits
        if client.process.returncode != 0 or not (run.workdir / "seen.json").exists():
            raise BenchError(f"the client exited with {client.process.returncode}:\n{client.log_tail()}")
    seen = json.loads((run.workdir / "seen.json").read_text())
    time.sleep(3)  # the stream log is written every 2 s

    opened_at = {int(number): at for number, at in seen["opened_at"].items()}
    ahead = [(arrival, starts_at, index) for number, index, revision, arrival, starts_at in seen["shows"]
             if revision == 0 and number in opened_at and starts_at - STREAM_LEAD > opened_at[number]]
    late = sum(arrival >= starts_at for arrival, starts_at, _ in ahead)
    margins = [starts_at - arrival for arrival, starts_at, _ in ahead]
    got: dict[int, float] = {}
    for number, index, revision, arrival in seen["blanks"]:
        if index == slot and revision >= 1 and arrival >= called and number not in got:
            got[number] = arrival - called
    latencies = sorted(got.values()) + [math.inf] * (args.streams - len(got))
    rows = displayd.rotation_log(sorted({datetime.fromtimestamp(s, UTC) for _, s, _ in ahead}))
    on_time = sum(status == "delivered" and delivered_at is not None and delivered_at < starts_at
                  for status, starts_at, delivered_at in rows)
    per_stream = (after - before) * 1e6 / args.streams / 1024

    print(f"displayd on {displayd.kind}, {args.streams} streams, dwell {args.dwell} s, campaign from {iso(start)}; "
          f"{len(seen['broken'])} streams broke", flush=True)
    for line in seen["broken"][:5]:
        print(f"  | {line}")
    problems = displayd.logged_problems()
    if problems:
        print(f"displayd logged {len(problems)} warning/error lines; the first ones:")
        for line in problems[:40]:
            print(f"  | {line}")
    by_slot: dict[datetime, list[int]] = {}
    for status, starts_at, delivered_at in rows:
        counts = by_slot.setdefault(starts_at, [0, 0, 0])
        counts[0] += 1
        counts[1] += status == "delivered"
        counts[2] += delivered_at is not None and delivered_at < starts_at
    print(f"rotation log: {on_time} of {len(rows)} rows of the slots sent ahead delivered before their start; "
          "per slot (rows, delivered, before the start): " + ", ".join(
              f"{t:%H:%M:%S} {n}/{d}/{b}" for t, (n, d, b) in sorted(by_slot.items())))
    print(f"late shows: {late} of {len(ahead)} sent ahead arrived at or after their start (smallest margin "
          f"{min(margins, default=math.nan):.3f} s, p1 {percentile(margins, 0.01):.3f} s): {verdict(late == 0)}")
    p99 = percentile(latencies, 0.99)
    print(f"retirement: the blank revision reached {len(got)} of {args.streams} streams; after the API call "
          f"p50 {percentile(latencies, 0.5) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms "
          f"(the call answered in {answered * 1000:.0f} ms; target 99 % within {RETIREMENT_TARGET * 1000:.0f} ms: "
          f"{verdict(p99 <= RETIREMENT_TARGET)})")
    print(f"server CPU per {args.dwell} s slot: {cpu_idle:.2f} s without streams, {cpu_streams:.2f} s with them "
          f"({(cpu_streams - cpu_idle) / args.streams * 1e6:.0f} µs per stream per slot)")
    print(f"memory per open stream: {per_stream:.1f} KB (RSS {before:.1f} MB before, {after:.1f} MB with the streams "
          f"open; target <= {KB_TARGET:.0f} KB: {verdict(per_stream <= KB_TARGET)})")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--client"]:
        asyncio.run(client(int(argv[1]), Path(argv[2])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--streams", type=int, default=5000, help="boards, one stream each (default 5000)")
    parser.add_argument("--dwell", type=int, default=5, help="campaign dwell seconds, >= 5 (default 5)")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True,
                        help="pin the server to the first CPU and the client to the others (default on)")
    parser.add_argument("--keep-log", type=Path, default=None, help="copy displayd's log here at the end")
    parser.add_argument("--database-url", type=postgresql_url, default=None,
                        help="run on this PostgreSQL server, in a scratch database created beside the one named "
                             "(default: a temporary SQLite file)")
    args = parse_args(parser, argv, QUICK)
    if not 1 <= args.streams <= 99_999 or args.dwell < 5:
        parser.error("--streams must be 1..99999 and --dwell at least 5")
    args.server_cpus, args.client_cpus = cpu_split(args.pin)
    return run_bench("stream", lambda run: measure(run, args))


if __name__ == "__main__":
    sys.exit(main())
