"""Slot-start benchmark: how late slots start on 1,000 push boards, and displayd's peak RSS with 10,000.

What it measures:
1. Lateness of slot starts. `--boards` (default 1,000) push boards and one campaign with
   `--dwell` (default 5 s) slots; over `--slots` (default 20) slot boundaries, the arrival
   time of every push at its board − the slot's `starts_at` (from the push body).
   - The target (p99 <= 50 ms) is on the slot starts: per slot, the first of its pushes to
     reach a board, i.e. how late displayd starts a slot. A (board, slot) pair that never
     arrived also fails it.
   - Per (board, slot) pair, the lateness adds the fan-out itself: 1,000 requests take one
     core 145-210 ms even with bare aiohttp on this machine. So the same run measures bare
     aiohttp (`--bare-rounds`, default 5) POSTing to the same 1,000 boards on the same
     receiver, connections warm, displayd stopped, and prints displayd's per-pair p99 next
     to it as a ratio. From displayd's side, the rotation log's `delivered_at − starts_at`
     is printed too (the boundary job's own lateness is the `displayd_slot_lateness_seconds`
     histogram on /metrics).
2. Peak RSS (`VmHWM` of /proc/<pid>/status) of the `displayd serve` process after at least
   `--rss-slots` (default 3) boundaries with `--rss-boards` (default 10,000) push boards
   configured. Target: <= 250 MB.

How:
- Loopback only, free ports, a temporary directory removed at the end, SQLite database:
  `displayd db upgrade`, an admin key, the section IV slogans.
- The fake boards are one receiver in a separate process (this script with `--receiver`):
  a minimal HTTP/1.1 asyncio server answering 200 to every POST /<board_id>, recording
  time.time() on the complete request, the webhook-id and the body; it writes them out on
  GET /dump (and on SIGTERM). It shares no loop or CPU accounting with displayd.
- Boards are created directly with the service layer (`displayd.boards.service.create`, the
  code `POST /api/v1/boards` runs) while displayd is stopped, in batches of 500 per
  transaction: the API takes ~60 boards/s. Endpoint `http://127.0.0.1:<port>/<board_id>`.
- `displayd serve` is then started; the campaign (dwell `--dwell`, all approved slogans,
  all boards) is created through the API, starting at a whole minute in the past. The
  slot current at its creation is pushed on the change, mid-slot, and is not counted: once
  those pushes have arrived, the measured slots are the next `--slots` boundaries.
- Then displayd is stopped, boards are added up to `--rss-boards`, displayd is started
  again (it first records the slots it missed while down, then pushes the current one);
  after its first push it runs `--rss-slots` more boundaries (their lateness is printed as
  well, informational); VmHWM is read just before it is stopped.
- displayd runs at log level WARNING (`--log-level`); its warnings and errors, tracebacks
  included, are printed at the end (`--keep-log PATH` keeps the whole log). The machine
  has 2 cores: a load average above 0.5 before the run is warned about, since anything
  else running delays the event loop and shows up directly as lateness.
- Every process started is in its own process group and stopped in `finally`.

Run: `.venv/bin/python bench/slots.py [--boards 1000] [--slots 20] [--dwell 5] [--rss-boards 10000]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import (  # the helper module sits beside this script
    DISPLAYD,
    LOOPBACK,
    SECRET_KEY,
    SLOGANS,
    BenchError,
    Child,
    Processes,
    cli,
    displayd_env,
    free_port,
    sigterm_as_interrupt,
    wait_ready,
    warn_if_busy,
)

NETWORKS = '["127.0.0.0/8"]'
LATENESS_TARGET_MS = 50.0
RSS_TARGET_MB = 250.0
BATCH = 500


# ------------------------------------------------------------------ the receiver (its own process)

class _Receiver(asyncio.Protocol):
    """HTTP/1.1 with Content-Length bodies and keep-alive; every request is answered 200."""

    records: ClassVar[list[tuple[float, str, str, bytes]]] = []  # (arrival, path, webhook-id, body)
    dump_to: ClassVar[Path] = Path()

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        arrival = time.time()
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].decode("latin-1").split("\r\n")
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < head_end + 4 + length:
                return
            body = self.buffer[head_end + 4:head_end + 4 + length]
            self.buffer = self.buffer[head_end + 4 + length:]
            method, path = head[0].split(" ")[:2]
            answer = b""
            if method == "GET" and path == "/dump":
                answer = str(dump()).encode()
            elif method == "GET" and path == "/count":
                answer = str(len(self.records)).encode()
            elif method == "POST":
                self.records.append((arrival, path, headers.get("webhook-id", ""), body))
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer))


def dump() -> int:
    """Write every record as a JSON line; the number written."""
    lines = []
    for arrival, path, webhook_id, body in _Receiver.records:
        try:
            document = json.loads(body)
        except ValueError:
            document = {}
        slot = document.get("slot") or {}
        lines.append(json.dumps({"arrival": arrival, "board": path.lstrip("/"), "webhook_id": webhook_id,
                                 "type": document.get("type"), "starts_at": slot.get("starts_at"),
                                 "slot_index": slot.get("index")}))
    tmp = _Receiver.dump_to.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + ("\n" if lines else ""))
    tmp.replace(_Receiver.dump_to)
    return len(lines)


def receiver_main(port: int, out: Path) -> None:
    _Receiver.dump_to = out

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        server = await loop.create_server(_Receiver, LOOPBACK, port, backlog=4096)
        print(f"receiver listening on {LOOPBACK}:{port}", flush=True)
        await stop.wait()
        server.close()
        dump()

    asyncio.run(serve())


# ------------------------------------------------------------------ displayd set-up

def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def create_boards(workdir: Path, first: int, count: int, receiver_port: int) -> float:
    """Boards bang-<first>..bang-<first+count-1> through the service layer (displayd stopped); seconds taken."""
    from displayd.auth.roles import cli_principal
    from displayd.boards import service
    from displayd.boards.schemas import BoardCreate
    from displayd.config import Settings
    from displayd.db.session import create_engine, create_sessionmaker
    from displayd.keyring import master_key

    settings = Settings(database_url=f"sqlite+aiosqlite:///{workdir / 'bench.db'}", secret_key=SECRET_KEY,
                        allowed_board_networks=json.loads(NETWORKS))
    master, networks, actor = master_key(settings), settings.board_networks(), cli_principal("bench")

    async def work() -> None:
        engine = create_engine(settings)
        try:
            sessionmaker = create_sessionmaker(engine)
            for start in range(first, first + count, BATCH):
                async with sessionmaker() as session, session.begin():
                    now = datetime.now(UTC)
                    for i in range(start, min(start + BATCH, first + count)):
                        board_id = f"bang-{i:05d}"
                        data = BoardCreate(id=board_id, name=f"Bảng {i}", delivery="push",
                                           endpoint_url=f"http://{LOOPBACK}:{receiver_port}/{board_id}").model_dump()
                        await service.create(session, actor=actor, now=now, data=data, networks=networks,
                                             master=master)
        finally:
            await engine.dispose()

    started = time.monotonic()
    asyncio.run(work())
    return time.monotonic() - started


def start_displayd(procs: Processes, workdir: Path, env: dict[str, str], tag: str) -> tuple[Child, str]:
    port = free_port()
    child = procs.start(f"displayd-{tag}", [str(DISPLAYD), "serve", "--host", LOOPBACK, "--port", str(port)],
                        env=env, cwd=workdir, log_path=workdir / "displayd.log")
    base = f"http://{LOOPBACK}:{port}"
    wait_ready(child, f"{base}/readyz", timeout=120)
    return child, base


def create_campaign(base: str, admin_key: str, dwell: int) -> tuple[datetime, datetime]:
    """The campaign, starting at a whole minute in the past; (its start, when it was created)."""
    headers = {"Authorization": f"Bearer {admin_key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        response = client.get("/api/v1/slogans", params={"status": "approved", "limit": 1000})
        response.raise_for_status()
        slogans = [item["id"] for item in response.json()["items"]]
        now = datetime.now(UTC)
        start = now.replace(second=0, microsecond=0) - timedelta(minutes=1)
        response = client.post("/api/v1/campaigns", json={
            "name": "bench slots", "starts_at": iso(start), "ends_at": iso(start + timedelta(days=1)),
            "dwell_seconds": dwell, "playlist": [{"slogan_id": i, "weight": 1} for i in slogans],
            "targets": {"all": True}})
        if response.status_code != 201:
            raise BenchError(f"POST /api/v1/campaigns answered {response.status_code}: {response.text}")
    return start, now


# ------------------------------------------------------------------ measuring

@dataclass
class Lateness:
    label: str
    expected: int
    values_ms: list[float]
    missing: int
    duplicates: int
    other: int

    def quantile(self, q: float) -> float:
        ordered = sorted(self.values_ms)
        if not ordered:
            return math.nan
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    def line(self) -> str:
        return (f"  {self.label}: {len(self.values_ms)} of {self.expected} (board, slot) pushes arrived, "
                f"{self.missing} never arrived, {self.duplicates} duplicates, {self.other} other requests; "
                f"lateness p50 {self.quantile(0.5):.1f} ms, p95 {self.quantile(0.95):.1f} ms, "
                f"p99 {self.quantile(0.99):.1f} ms, max {max(self.values_ms, default=math.nan):.1f} ms, "
                f"min {min(self.values_ms, default=math.nan):.1f} ms")


def boundaries(campaign_start: datetime, dwell: int, after: datetime, count: int) -> list[datetime]:
    """The first `count` slot starts strictly after `after` (plus a margin)."""
    k = math.floor((after - campaign_start).total_seconds() / dwell) + 1
    first = campaign_start + timedelta(seconds=k * dwell)
    if (first - after).total_seconds() < 0.5:  # too close to the creation's own sync: skip it
        first += timedelta(seconds=dwell)
    return [first + timedelta(seconds=i * dwell) for i in range(count)]


def wait_until(t: datetime, child: Child) -> None:
    while (left := (t - datetime.now(UTC)).total_seconds()) > 0:
        if child.process.poll() is not None:
            raise BenchError(f"displayd exited with status {child.process.returncode}:\n{child.log_tail(60)}")
        time.sleep(min(left, 1.0))


def receiver_lateness(label: str, records: list[dict[str, Any]], board_ids: list[str],
                      starts: list[datetime]) -> Lateness:
    wanted = {iso(s) for s in starts}
    arrived: dict[tuple[str, str], float] = {}
    duplicates = other = 0
    for record in records:
        starts_at = record.get("starts_at")
        if record.get("type") in ("bare", "warm"):
            continue  # the baseline's
        if record.get("type") != "show" or starts_at is None:
            other += 1
            continue
        key_iso = iso(parse_iso(starts_at))
        if key_iso not in wanted:
            continue
        key = (record["board"], key_iso)
        if key in arrived:
            duplicates += 1
            continue
        arrived[key] = (record["arrival"] - parse_iso(starts_at).timestamp()) * 1000
    expected = len(board_ids) * len(starts)
    return Lateness(label, expected, list(arrived.values()), expected - len(arrived), duplicates, other)


def slot_starts(records: list[dict[str, Any]], starts: list[datetime]) -> list[float]:
    """Per slot: ms from the slot's start to the first of its pushes arriving at any board,
    i.e. how late displayd started the slot (the per-board figure adds the fan-out)."""
    wanted = {iso(s): s.timestamp() for s in starts}
    first: dict[str, float] = {}
    for record in records:
        starts_at = record.get("starts_at")
        if record.get("type") != "show" or starts_at is None:
            continue
        key = iso(parse_iso(starts_at))
        if key in wanted:
            first[key] = min(first.get(key, math.inf), record["arrival"])
    return sorted((first[k] - wanted[k]) * 1000 for k in first)


def displayd_lateness(label: str, db: Path, starts: list[datetime]) -> tuple[Lateness, dict[str, int]]:
    """From the rotation log: delivered_at − starts_at of the measured slots, and their statuses."""
    fmt = "%Y-%m-%d %H:%M:%S.%f"
    keys = [s.astimezone(UTC).replace(tzinfo=None).strftime(fmt) for s in starts]
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as connection:
        marks = ",".join("?" * len(keys))
        rows = connection.execute(f"SELECT push_status, starts_at, delivered_at FROM rotation "
                                  f"WHERE starts_at IN ({marks})", keys).fetchall()
    statuses: dict[str, int] = {}
    values: list[float] = []
    for status, starts_at, delivered_at in rows:
        statuses[status] = statuses.get(status, 0) + 1
        if delivered_at is not None:
            values.append((datetime.fromisoformat(delivered_at) - datetime.fromisoformat(starts_at)).total_seconds()
                          * 1000)
    return Lateness(label, len(rows), values, len(rows) - len(values), 0, 0), statuses


def received_count(base: str) -> int:
    return int(httpx.get(f"{base}/count", timeout=10).text)


def wait_for_pushes(base: str, at_least: int, child: Child, timeout: float) -> float:
    """Wait until the receiver has `at_least` requests (displayd leads and pushes); seconds waited."""
    started = time.monotonic()
    while received_count(base) < at_least:
        if child.process.poll() is not None:
            raise BenchError(f"displayd exited with status {child.process.returncode}:\n{child.log_tail(60)}")
        if time.monotonic() - started > timeout:
            raise BenchError(f"displayd pushed nothing for {timeout:.0f} s:\n{child.log_tail(60)}")
        time.sleep(0.2)
    return time.monotonic() - started


def read_records(base: str, path: Path) -> list[dict[str, Any]]:
    response = httpx.get(f"{base}/dump", timeout=60)
    response.raise_for_status()
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def vm_hwm_mb(pid: int) -> tuple[float, float]:
    """(VmHWM, VmRSS) of `pid` in MB (10^6 bytes)."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            fields[name] = int(value.split()[0]) * 1024 / 1e6
    return fields["VmHWM"], fields["VmRSS"]


def check_log(workdir: Path) -> list[str]:
    """Warning and error entries in displayd's log, each with its traceback lines."""
    path = workdir / "displayd.log"
    if not path.exists():
        return []
    entries: list[str] = []
    keep = False
    for line in path.read_text(errors="replace").splitlines():
        starts_entry = line[:4].isdigit() and line[4:5] == "-"  # "2026-11-27 18:31:26,432 LEVEL name: ..."
        if starts_entry:
            keep = any(f" {level} " in line for level in ("WARNING", "ERROR", "CRITICAL"))
        elif not keep and ("Traceback" in line or "Error" in line):
            keep = True  # uvicorn and the interpreter print some without our format
        if keep:
            entries.append(line)
    return entries


def bare_aiohttp(receiver_port: int, board_ids: list[str], rounds: int) -> None:
    """The floor for the per-(board, slot) figure: bare aiohttp, from this (otherwise idle) process
    with displayd stopped, POSTs a document of a push's size to every board on the same receiver at
    `rounds` chosen instants, connections warm as displayd's are between slots. No signing, no
    log, no retries: what one event loop can fan out at best. Records have type "bare"."""
    import aiohttp

    async def work() -> None:
        urls = [f"http://{LOOPBACK}:{receiver_port}/{board_id}" for board_id in board_ids]
        text = "Nhiệt liệt chào mừng kỷ niệm 70 năm Chiến thắng Điện Biên Phủ (07/5/1954 - 07/5/2024)! " * 3
        connector = aiohttp.TCPConnector(limit=4096)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def post(url: str, body: bytes) -> None:
                async with session.post(url, data=body, headers={"content-type": "application/json"}) as answer:
                    await answer.read()

            for number in range(rounds + 1):  # the first round opens the connections and is not counted
                at = math.ceil(time.time()) + 0.5
                body = json.dumps({"type": "bare" if number else "warm", "slot": {"starts_at": iso(
                    datetime.fromtimestamp(at, UTC))}, "content": {"text": text}}).encode()
                await asyncio.sleep(max(0.0, at - time.time()))
                await asyncio.gather(*(post(url, body) for url in urls))

    asyncio.run(work())


def bare_lateness(records: list[dict[str, Any]], board_ids: list[str], rounds: int) -> Lateness:
    values = [(r["arrival"] - parse_iso(r["starts_at"]).timestamp()) * 1000 for r in records
              if r.get("type") == "bare" and r.get("starts_at")]
    expected = len(board_ids) * rounds
    return Lateness(f"{len(board_ids)} boards, bare aiohttp x {rounds} rounds", expected, values,
                    expected - len(values), 0, 0)


# ------------------------------------------------------------------ the run

def run(args: argparse.Namespace, workdir: Path, procs: Processes) -> list[str]:
    env = displayd_env(workdir, args.log_level)
    cli(["db", "upgrade"], env=env, cwd=workdir)
    admin_key = cli(["keys", "create", "--role", "admin", "--name", "bench"], env=env, cwd=workdir).strip() \
        .splitlines()[-1]
    print(cli(["slogans", "import", str(SLOGANS)], env=env, cwd=workdir).strip(), flush=True)

    receiver_port = free_port()
    dump_path = workdir / "received.jsonl"
    receiver = procs.start("receiver", [sys.executable, str(Path(__file__).resolve()), "--receiver",
                                        str(receiver_port), str(dump_path)],
                           env=dict(os.environ), cwd=workdir, log_path=workdir / "receiver.log")
    receiver_base = f"http://{LOOPBACK}:{receiver_port}"
    deadline = time.monotonic() + 20
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{receiver_base}/ping", timeout=2).status_code == 200:
                break
        if time.monotonic() > deadline or receiver.process.poll() is not None:
            raise BenchError(f"the receiver did not start:\n{receiver.log_tail()}")
        time.sleep(0.1)

    took = create_boards(workdir, 0, args.boards, receiver_port)
    print(f"created {args.boards} push boards in {took:.1f} s (service layer)", flush=True)
    board_ids = [f"bang-{i:05d}" for i in range(args.boards)]

    lines: list[str] = []
    server, base = start_displayd(procs, workdir, env, "1")
    campaign_start, created = create_campaign(base, admin_key, args.dwell)
    # The change pushes the current slot at once; wait for it, so the measured slots follow a working start.
    wait_for_pushes(receiver_base, args.boards, server, timeout=60)
    starts = boundaries(campaign_start, args.dwell, max(created, datetime.now(UTC)), args.slots)
    print(f"campaign from {iso(campaign_start)}, dwell {args.dwell} s; measuring {args.slots} slots "
          f"{iso(starts[0])} .. {iso(starts[-1])}", flush=True)
    wait_until(starts[-1] + timedelta(seconds=args.dwell + 2), server)  # + the last slot's recording
    hwm1, _ = vm_hwm_mb(server.process.pid)
    records = read_records(receiver_base, dump_path)
    ours = receiver_lateness(f"{args.boards} boards, receiver", records, board_ids, starts)
    theirs, statuses = displayd_lateness(f"{args.boards} boards, displayd delivered_at", workdir / "bench.db", starts)
    print(ours.line(), flush=True)
    print(theirs.line() + f"; statuses {statuses}", flush=True)
    firsts = slot_starts(records, starts)
    slot_p99 = firsts[min(len(firsts) - 1, max(0, math.ceil(0.99 * len(firsts)) - 1))] if firsts else math.nan
    print(f"  slot starts (first push of each of {len(firsts)} slots): p50 {firsts[len(firsts) // 2]:.1f} ms, "
          f"p99 {slot_p99:.1f} ms" if firsts else "  slot starts: no slot arrived", flush=True)
    print(f"  displayd VmHWM with {args.boards} boards: {hwm1:.0f} MB", flush=True)
    procs.finish(server)
    bare_aiohttp(receiver_port, board_ids, args.bare_rounds)
    bare = bare_lateness(read_records(receiver_base, dump_path), board_ids, args.bare_rounds)
    print(bare.line(), flush=True)

    rss_line = ""
    if args.rss_boards > args.boards:
        took = create_boards(workdir, args.boards, args.rss_boards - args.boards, receiver_port)
        print(f"created {args.rss_boards - args.boards} more push boards in {took:.1f} s (service layer)",
              flush=True)
        all_ids = [f"bang-{i:05d}" for i in range(args.rss_boards)]
        before = received_count(receiver_base)
        server, base = start_displayd(procs, workdir, env, "2")
        up = datetime.now(UTC)
        # On taking over it first records the slots missed while it was down, then pushes the current one.
        waited = wait_for_pushes(receiver_base, before + 1, server, timeout=120)
        print(f"  restarted with {args.rss_boards} boards: first push {waited:.1f} s after /readyz answered",
              flush=True)
        rss_starts = boundaries(campaign_start, args.dwell, max(up, datetime.now(UTC)), args.rss_slots)
        wait_until(rss_starts[-1] + timedelta(seconds=args.dwell + 2), server)
        hwm, rss = vm_hwm_mb(server.process.pid)
        records = read_records(receiver_base, dump_path)
        big = receiver_lateness(f"{args.rss_boards} boards, receiver", records, all_ids, rss_starts)
        big_theirs, big_statuses = displayd_lateness(f"{args.rss_boards} boards, displayd delivered_at",
                                                     workdir / "bench.db", rss_starts)
        print(big.line(), flush=True)
        print(big_theirs.line() + f"; statuses {big_statuses}", flush=True)
        print(f"  displayd with {args.rss_boards} boards after {args.rss_slots} slots: VmHWM {hwm:.0f} MB, "
              f"VmRSS {rss:.0f} MB", flush=True)
        procs.finish(server)
        verdict = "met" if hwm <= RSS_TARGET_MB else "MISSED"
        rss_line = f"peak RSS with {args.rss_boards} boards: {hwm:.0f} MB (target <= {RSS_TARGET_MB:.0f} MB, {verdict})"

    problems = check_log(workdir)
    if problems:
        print(f"displayd logged {len(problems)} warning/error lines (with tracebacks); the first ones:", flush=True)
        for line in problems[:args.log_lines]:
            print(f"  | {line}", flush=True)
    verdict = "met" if slot_p99 <= LATENESS_TARGET_MS and ours.missing == 0 else "MISSED"
    lines.append(f"slot starts p99 lateness: {slot_p99:.0f} ms (target <= {LATENESS_TARGET_MS:.0f} ms, {verdict}; "
                 f"the first push of each of {args.slots} slots to reach a board; {ours.missing} of "
                 f"{ours.expected} (board, slot) pushes never arrived)")
    lines.append(f"per (board, slot) arrival p99: displayd {ours.quantile(0.99):.0f} ms, bare aiohttp "
                 f"{bare.quantile(0.99):.0f} ms: the fan-out at {bare.quantile(0.99) / ours.quantile(0.99):.2f} "
                 f"of bare aiohttp's speed (displayd-side p99 {theirs.quantile(0.99):.0f} ms)")
    if rss_line:
        lines.append(rss_line)
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--boards", type=int, default=1000, help="push boards for the lateness run (default 1000)")
    parser.add_argument("--slots", type=int, default=20, help="slot boundaries measured (default 20)")
    parser.add_argument("--dwell", type=int, default=5, help="campaign dwell seconds, >= 5 (default 5)")
    parser.add_argument("--rss-boards", type=int, default=10_000,
                        help="boards for the peak RSS run (default 10000; <= --boards skips it)")
    parser.add_argument("--rss-slots", type=int, default=3, help="slot boundaries in the RSS run (default 3)")
    parser.add_argument("--bare-rounds", type=int, default=5,
                        help="rounds of the bare aiohttp baseline to the same boards (default 5)")
    parser.add_argument("--log-level", default="WARNING", help="displayd's log level (default WARNING)")
    parser.add_argument("--log-lines", type=int, default=80, help="warning/error log lines shown (default 80)")
    parser.add_argument("--keep-log", type=Path, default=None, help="copy displayd's log here at the end")
    parser.add_argument("--receiver", nargs=2, metavar=("PORT", "DUMP"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.receiver is None and (args.boards < 1 or args.slots < 1 or args.dwell < 5 or args.rss_slots < 1
                                  or args.bare_rounds < 1 or args.boards > 99_999 or args.rss_boards > 99_999):
        parser.error("--boards (up to 99999), --slots, --rss-slots and --bare-rounds must be positive "
                     "and --dwell at least 5")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.receiver is not None:
        receiver_main(int(args.receiver[0]), Path(args.receiver[1]))
        return 0
    sigterm_as_interrupt()
    os.environ["DISPLAYD_CONFIG"] = os.devnull  # the in-process board creation reads no config file
    warn_if_busy()
    started = time.monotonic()
    procs = Processes()
    try:
        with tempfile.TemporaryDirectory(prefix="displayd-bench-slots-") as tmp:
            try:
                lines = run(args, Path(tmp), procs)
            except BenchError as exc:
                log = Path(tmp) / "displayd.log"
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-60:]) if log.exists() else ""
                raise BenchError(f"{exc}\n--- displayd log (last lines) ---\n{tail}") from exc
            finally:
                procs.stop_all()
                if args.keep_log is not None and (Path(tmp) / "displayd.log").exists():
                    shutil.copyfile(Path(tmp) / "displayd.log", args.keep_log)
    except BenchError as exc:
        print(f"bench/slots.py failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench/slots.py interrupted; every process it started has been stopped", file=sys.stderr)
        return 130
    for line in lines:
        print(line)
    print(f"load average at the end {os.getloadavg()[0]:.2f} (1 min)", file=sys.stderr)
    print(f"total time {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
