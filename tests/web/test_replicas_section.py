"""The dashboard's "who pushes" section (`displayd.web.replicas`): the replicas in the `replica`
table with their heartbeat age and shards; one not answering is marked; on SQLite this process,
when it leads; and the page still answers when the table cannot be read."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from displayd.config import Settings
from displayd.db.models import Replica
from displayd.db.session import create_engine, create_sessionmaker
from displayd.delivery.leader import Change, shard_list
from displayd.delivery.scheduler import SlotScheduler
from displayd.delivery.shards import ALL_SHARDS
from displayd.runtime import runtime_of
from displayd.web.replicas import shard_ranges
from tests.conftest import FakeClock, Keys
from tests.web.test_pages import session_cookie, sign_in, with_cookie


def test_shards_read_as_ranges() -> None:
    assert shard_ranges([5, 0, 1, 2, 7, 8]) == "0–2, 5, 7–8"
    assert shard_ranges(range(64)) == "0–63" and shard_ranges([]) == ""


async def dashboard(client: httpx.AsyncClient, keys: Keys) -> str:
    cookie = session_cookie(await sign_in(client, keys.operator))
    response = await client.get("/ui", headers=with_cookie(cookie))
    assert response.status_code == 200
    return response.text


async def test_the_dashboard_shows_each_replica_its_heartbeat_and_shards(
        client: httpx.AsyncClient, keys: Keys, settings: Settings, clock: FakeClock) -> None:
    engine = create_engine(settings)
    async with create_sessionmaker(engine)() as session, session.begin():
        session.add_all([
            Replica(name="may-1:101:aa", started_at=clock.now - timedelta(hours=1),
                    heartbeat_at=clock.now - timedelta(seconds=2), shards=shard_list(set(range(32)))),
            Replica(name="may-2:202:bb", started_at=clock.now - timedelta(hours=1),
                    heartbeat_at=clock.now - timedelta(seconds=30), shards=shard_list({32, 33, 40})),
        ])
    await engine.dispose()
    text = await dashboard(client, keys)
    section = text[text.index('<section class="replicas"'):]
    assert "<td>may-1:101:aa</td><td>2 giây trước</td><td class=\"ok\">đang chạy</td><td>32: 0–31</td>" in section
    assert "<td>may-2:202:bb</td><td>30 giây trước</td><td class=\"down\">không phản hồi</td>" \
           "<td>3: 32–33, 40</td>" in section


class Leading:
    name = "may-nay:1:cc"
    offline = True
    live = 1
    held = ALL_SHARDS

    async def check(self) -> Change:
        return Change()

    async def give_up(self, shards: frozenset[int]) -> None:
        return None

    async def release(self) -> None:
        return None


async def test_this_process_when_it_leads_alone_and_offline(
        app: FastAPI, client: httpx.AsyncClient, keys: Keys, clock: FakeClock) -> None:
    runtime = runtime_of(app)
    text = await dashboard(client, keys)
    assert "Chưa có máy chủ nào dẫn việc đẩy nội dung." in text  # no replica row, no scheduler here
    runtime.scheduler = SlotScheduler(dispatcher=None, leadership=Leading(), clock=clock,  # type: ignore[arg-type]
                                      metrics=runtime.metrics)
    try:
        text = await dashboard(client, keys)
    finally:
        runtime.scheduler = None
    assert "<td>may-nay:1:cc (máy chủ này)</td><td>—</td><td class=\"ok\">đang chạy</td><td>64: 0–63</td>" in text
    assert "Máy chủ này dẫn 64 nhóm bảng khi không có cơ sở dữ liệu" in text


async def test_the_page_answers_when_the_replicas_cannot_be_read(
        app: FastAPI, client: httpx.AsyncClient, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    import displayd.web.replicas as section

    async def broken(session: object) -> list[object]:
        raise OSError("connection refused")

    monkeypatch.setattr(section, "replicas", broken)
    text = await dashboard(client, keys)
    assert "Không đọc được danh sách máy chủ: cơ sở dữ liệu không trả lời." in text
