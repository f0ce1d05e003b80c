"""Faulty boards never delay healthy ones, and no push outlives its slot: one server, real sockets."""

from __future__ import annotations

import asyncio
import base64

from displayd.delivery import Pusher, PushRequest, PushResult, make_client
from tests.delivery.boards import FakeBoards

SECRET = "whsec_" + base64.b64encode(b"fault-secret-0123456789abcdef012").decode()
FAULTS = ("hang", "drip", "reset", "error500")


async def test_faulty_boards_do_not_delay_healthy_ones() -> None:
    loop = asyncio.get_running_loop()
    async with FakeBoards() as boards, make_client(networks=["127.0.0.0/8"]) as client:
        kinds = ["ok"] * 40 + [kind for kind in FAULTS for _ in range(5)]
        deadline = loop.time() + 3.0
        # Faulty boards first, so they take their workers before any healthy board is started.
        order = sorted(range(len(kinds)), key=lambda i: kinds[i] == "ok")
        requests = [PushRequest(board_id=f"{kinds[i]}-{i}", url=boards.url(kinds[i], f"{kinds[i]}-{i}"),
                                body=b'{"type":"show"}', webhook_id=f"{kinds[i]}-{i}:1:1", secret=SECRET,
                                deadline=deadline) for i in order]
        started = loop.time()
        results = await asyncio.wait_for(Pusher(client, attempt_timeout=1.0).push_all(requests), timeout=10)
        elapsed = loop.time() - started

    by_kind: dict[str, list[PushResult]] = {}
    for result in results:
        by_kind.setdefault(result.board_id.split("-")[0], []).append(result)
    assert [r.board_id for r in results] == [r.board_id for r in requests]
    assert all(r.delivered for r in by_kind["ok"]) and len(by_kind["ok"]) == 40
    assert not any(r.delivered for kind in FAULTS for r in by_kind[kind])
    slow_start = min(r.finished_at for r in by_kind["hang"] + by_kind["drip"])
    assert max(r.finished_at for r in by_kind["ok"]) < slow_start
    assert all(r.finished_at <= deadline + 0.25 for r in results)
    assert {r.error for r in by_kind["hang"] + by_kind["drip"]} == {"timeout"}
    assert {r.error for r in by_kind["error500"]} == {"http 500"}
    assert elapsed < 3.0 + 1.0
