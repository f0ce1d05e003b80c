"""The dashboard's "who pushes" section: the replicas of the site and the shards each leads.

    section = await replicas_section(runtime)   # Markup, under the board grid on /ui

Read from the `replica` table (`displayd.delivery.leader.replicas`), which every replica that
may lead writes on PostgreSQL: its name (`host:pid:…`), how long ago its heartbeat was
written, and its shards (`displayd.delivery.shards`, as ranges). A replica whose heartbeat is
older than REPLICA_STALE_SECONDS is shown as not answering: its shards move to the others.
On SQLite, where one process leads every shard and nothing is written, this process is shown
when it leads. While this process leads without the database, the section says so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from displayd.delivery.leader import ReplicaView, replicas
from displayd.delivery.shards import REPLICA_STALE_SECONDS, SHARDS
from displayd.runtime import Runtime
from displayd.web.render import Markup, join, tag

log = logging.getLogger("displayd.web")

READ_SECONDS = 2.0  # the page must not wait on a database that does not answer


def shard_ranges(shards: Iterable[int]) -> str:
    """`[0, 1, 2, 5, 7, 8]` → `0–2, 5, 7–8`."""
    ranges: list[list[int]] = []
    for shard in sorted(shards):
        if ranges and shard == ranges[-1][1] + 1:
            ranges[-1][1] = shard
        else:
            ranges.append([shard, shard])
    return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in ranges)


async def _rows(runtime: Runtime) -> list[ReplicaView] | None:
    try:
        async with runtime.sessionmaker() as session:
            return await asyncio.wait_for(replicas(session), READ_SECONDS)
    except Exception as exc:  # the dashboard still answers while the database does not
        log.warning("could not read the replicas: %s", exc)
        return None


async def replicas_section(runtime: Runtime) -> Markup:
    rows = await _rows(runtime)
    scheduler = runtime.scheduler
    now = runtime.clock()
    lines: list[Markup] = []
    if rows == [] and scheduler is not None and scheduler.leadership.held:  # SQLite: this process
        lines.append(_row(scheduler.name, "—", "đang chạy", scheduler.leadership.held, mine=True))
    for replica in rows or []:
        age = max(0.0, (now - replica.heartbeat_at).total_seconds())
        state = "đang chạy" if age < REPLICA_STALE_SECONDS else "không phản hồi"
        mine = scheduler is not None and replica.name == scheduler.name
        lines.append(_row(replica.name, f"{age:.0f} giây trước", state, replica.shards, mine=mine))
    notes: list[Markup] = []
    if rows is None:
        notes.append(tag("p", "Không đọc được danh sách máy chủ: cơ sở dữ liệu không trả lời.", class_="note"))
    if scheduler is not None and scheduler.offline:
        notes.append(tag("p", f"Máy chủ này dẫn {len(scheduler.leadership.held)} nhóm bảng khi không có cơ sở dữ "
                              "liệu: vẫn đẩy nội dung theo kế hoạch, nhật ký được ghi khi cơ sở dữ liệu trở lại.",
                         class_="note offline"))
    if not lines and rows is not None:
        notes.append(tag("p", "Chưa có máy chủ nào dẫn việc đẩy nội dung.", class_="note"))
    table = Markup("")
    if lines:
        head = join([tag("th", text) for text in ("Máy chủ", "Nhịp tim", "Trạng thái", "Nhóm bảng dẫn")])
        table = Markup(f'<table class="replicas"><thead><tr>{head}</tr></thead><tbody>{join(lines)}</tbody></table>')
    return Markup(f'<section class="replicas" aria-label="Máy chủ đẩy nội dung"><h2>Máy chủ đẩy nội dung</h2>'
                  f'<p class="note">Các bảng chia thành {SHARDS} nhóm; mỗi nhóm do một máy chủ dẫn.</p>'
                  f'{table}{join(notes)}</section>')


def _row(name: str, heartbeat: str, state: str, shards: frozenset[int], *, mine: bool) -> Markup:
    label = f"{name} (máy chủ này)" if mine else name
    led = f"{len(shards)}: {shard_ranges(shards)}" if shards else "0"
    return Markup("<tr>" + join([tag("td", label), tag("td", heartbeat), tag("td", state, class_=(
        "ok" if state == "đang chạy" else "down")), tag("td", led)]) + "</tr>")
