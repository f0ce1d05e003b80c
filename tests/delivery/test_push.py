"""The pusher against fake boards on real loopback sockets: statuses, retries, deadlines, refused addresses."""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import random
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from displayd.delivery import Pusher, PushRequest, make_client
from displayd.delivery.push import FANOUT_GC_THRESHOLD
from tests.delivery.boards import Drip, FakeBoards, Flaky, Ok, Status
from tests.delivery.test_signing import verify

SECRET = "whsec_" + base64.b64encode(b"board-secret-0123456789abcdef012").decode()
LOOPBACK = ["127.0.0.0/8"]


@pytest.fixture
async def boards() -> AsyncIterator[FakeBoards]:
    async with FakeBoards() as fake:
        yield fake


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(networks=LOOPBACK) as push_client:
        yield push_client


class SteppingClock:
    """A wall clock that moves 7 s per reading, so every attempt's timestamp differs."""

    def __init__(self, start: float = 1_715_040_000) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 7
        return self.now


def fast_pusher(client: httpx.AsyncClient, **options: object) -> Pusher:
    settings: dict[str, object] = {"backoff_base": 0.01, "backoff_cap": 0.02, "rng": random.Random(7),
                                   "attempt_timeout": 2.0}
    settings.update(options)
    return Pusher(client, **settings)  # type: ignore[arg-type]


def request(url: str, board_id: str = "b1", *, seconds: float = 5.0, body: bytes | None = None) -> PushRequest:
    document = body if body is not None else json.dumps(
        {"type": "show", "board_id": board_id, "content": {"text": "An toàn là trên hết"}}).encode()
    return PushRequest(board_id=board_id, url=url, body=document, webhook_id=f"{board_id}:3:1234", secret=SECRET,
                       deadline=asyncio.get_running_loop().time() + seconds)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("status", [200, 204])
async def test_2xx_is_delivered_with_the_body_and_signed_headers(
        boards: FakeBoards, client: httpx.AsyncClient, status: int) -> None:
    clock = SteppingClock()
    push = request(boards.url(Ok(status=status), "b1"))
    result = await fast_pusher(client, wall_clock=clock).push(push)
    assert (result.delivered, result.attempts, result.http_status, result.error) == (True, 1, status, None)
    assert result.latency_ms is not None and result.reported_hash is None
    [received] = boards.received("b1")
    assert received.method == "POST"
    assert received.body == push.body
    assert received.headers["content-type"] == "application/json"
    assert received.headers["webhook-id"] == "b1:3:1234"
    assert received.headers["webhook-timestamp"] == str(int(clock.now))
    assert verify(SECRET, received.headers, received.body, now=clock.now)


async def test_the_boards_content_hash_is_reported(boards: FakeBoards, client: httpx.AsyncClient) -> None:
    result = await fast_pusher(client).push(request(boards.url(Ok(content_hash="sha256:abc"), "b1")))
    assert result.delivered and result.reported_hash == "sha256:abc"


async def test_retries_keep_the_id_and_sign_each_attempt_afresh(boards: FakeBoards, client: httpx.AsyncClient) -> None:
    clock = SteppingClock()
    result = await fast_pusher(client, wall_clock=clock).push(request(boards.url(Flaky(2), "b1")))
    assert (result.delivered, result.attempts, result.http_status) == (True, 3, 200)
    received = boards.received("b1")
    assert len(received) == 3
    assert {r.headers["webhook-id"] for r in received} == {"b1:3:1234"}
    assert len({r.headers["webhook-timestamp"] for r in received}) == 3
    for attempt in received:
        assert verify(SECRET, attempt.headers, attempt.body, now=int(attempt.headers["webhook-timestamp"]))


@pytest.mark.parametrize("code", [500, 408, 429, 503])
async def test_retryable_statuses_are_retried_up_to_max_attempts(
        boards: FakeBoards, client: httpx.AsyncClient, code: int) -> None:
    result = await fast_pusher(client).push(request(boards.url(Status(code), "b1")))
    assert (result.delivered, result.attempts, result.http_status, result.error) == (False, 3, code, f"http {code}")
    assert boards.hits("b1") == 3


async def test_max_attempts_is_respected(boards: FakeBoards, client: httpx.AsyncClient) -> None:
    result = await fast_pusher(client, max_attempts=5).push(request(boards.url("error500", "b1")))
    assert result.attempts == 5 and boards.hits("b1") == 5
    result = await fast_pusher(client, max_attempts=1).push(request(boards.url("error500", "b2")))
    assert result.attempts == 1 and boards.hits("b2") == 1


async def test_connect_refused_is_retried(client: httpx.AsyncClient) -> None:
    result = await fast_pusher(client).push(request(f"http://127.0.0.1:{closed_port()}/b1"))
    assert (result.delivered, result.attempts, result.http_status) == (False, 3, None)
    assert result.error is not None and result.error.startswith("connect error")


@pytest.mark.parametrize("code", [400, 401, 404, 410])
async def test_other_4xx_fail_at_once(boards: FakeBoards, client: httpx.AsyncClient, code: int) -> None:
    result = await fast_pusher(client).push(request(boards.url(Status(code), "b1")))
    assert (result.delivered, result.attempts, result.http_status, result.error) == (False, 1, code, f"http {code}")


async def test_redirects_are_never_followed(boards: FakeBoards, client: httpx.AsyncClient) -> None:
    target = boards.url("ok", "target")
    result = await fast_pusher(client).push(request(boards.url(Status(302, location=target), "b1")))
    assert (result.delivered, result.attempts, result.http_status) == (False, 1, 302)
    assert result.error == "redirect 302 not followed"
    assert boards.hits("b1") == 1 and boards.hits("target") == 0


async def test_a_hanging_board_is_cut_off_at_the_deadline(boards: FakeBoards, client: httpx.AsyncClient) -> None:
    push = request(boards.url("hang", "b1"), seconds=1.5)
    result = await fast_pusher(client, attempt_timeout=5.0).push(push)
    assert not result.delivered and result.error == "timeout"
    assert result.finished_at <= push.deadline + 0.25


async def test_a_dripping_board_is_cut_off_by_the_attempt_timeout(
        boards: FakeBoards, client: httpx.AsyncClient) -> None:
    push = request(boards.url("drip", "b1"), seconds=10)
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await fast_pusher(client, attempt_timeout=0.5, max_attempts=2).push(push)
    assert (result.delivered, result.attempts, result.error) == (False, 2, "timeout")
    assert result.finished_at - started < 2 * 0.5 + 0.25 + 0.5  # two attempts, one backoff, slack


async def test_an_oversized_answer_fails_without_being_read(boards: FakeBoards, client: httpx.AsyncClient) -> None:
    result = await fast_pusher(client).push(request(boards.url(Drip(length=10_000_000), "b1")))
    assert (result.delivered, result.attempts) == (False, 1)
    assert result.error is not None and "over 65536" in result.error


async def test_a_passed_deadline_makes_no_attempt(boards: FakeBoards, client: httpx.AsyncClient) -> None:
    result = await fast_pusher(client).push(request(boards.url("ok", "b1"), seconds=-1))
    assert (result.delivered, result.attempts, result.error) == (False, 0, "deadline passed")
    assert boards.hits("b1") == 0


async def test_a_reset_connection_is_retried(boards: FakeBoards, client: httpx.AsyncClient) -> None:
    result = await fast_pusher(client).push(request(boards.url("reset", "b1")))
    assert (result.delivered, result.attempts) == (False, 3)
    assert result.error is not None and result.error.split(":")[0] in {"read error", "protocol error"}


async def test_an_allowed_loopback_address_other_than_127_0_0_1_works(client: httpx.AsyncClient) -> None:
    async with FakeBoards(host="127.0.0.2") as other:
        result = await fast_pusher(client).push(request(other.url("ok", "b1")))
        assert result.delivered and other.hits("b1") == 1


async def test_an_address_outside_the_networks_is_never_connected(boards: FakeBoards) -> None:
    async with make_client(networks=["10.0.0.0/8"]) as private_only:
        result = await fast_pusher(private_only).push(request(boards.url("ok", "b1")))
    assert (result.delivered, result.attempts, result.http_status) == (False, 1, None)
    assert result.error is not None and result.error.startswith("refused address")
    assert "outside allowed_board_networks" in result.error
    assert boards.connections == 0 and boards.hits("b1") == 0


async def test_a_name_resolving_outside_the_networks_is_never_connected(boards: FakeBoards) -> None:
    url = boards.url("ok", "b1").replace("127.0.0.1", "localhost")
    async with make_client(networks=["10.0.0.0/8"]) as private_only:
        result = await fast_pusher(private_only).push(request(url))
    assert result.error is not None and result.error.startswith("refused address: localhost resolves to")
    assert boards.connections == 0


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "http://[::ffff:169.254.169.254]/",
                                 "http://[fe80::1]/", "http://169.254.10.1/"])
async def test_metadata_and_link_local_are_refused_even_when_allowed(url: str) -> None:
    async with make_client(networks=["0.0.0.0/0", "::/0"]) as everything:
        result = await fast_pusher(everything).push(request(url))
    assert (result.delivered, result.attempts) == (False, 1)
    assert result.error is not None and result.error.startswith("refused address")


async def test_push_all_keeps_input_order_and_survives_a_bad_request(
        boards: FakeBoards, client: httpx.AsyncClient) -> None:
    requests = [request(boards.url("ok", "b0"), "b0"), request("not a url", "bad"),
                request(boards.url(Status(404), "b2"), "b2"), request(boards.url("ok", "b3"), "b3")]
    results = await fast_pusher(client).push_all(requests, concurrency=2)
    assert [r.board_id for r in results] == ["b0", "bad", "b2", "b3"]
    assert [r.delivered for r in results] == [True, False, False, True]
    assert results[1].error is not None


async def test_a_boards_cookies_are_never_kept(client: httpx.AsyncClient) -> None:
    heard: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        await reader.readexactly(length)
        heard.append(head)
        writer.write(b"HTTP/1.1 200 OK\r\nSet-Cookie: session=abc; Path=/\r\nContent-Length: 0\r\n"
                     b"Connection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/b1"
    try:
        pusher = fast_pusher(client)
        assert (await pusher.push(request(url))).delivered
        assert (await pusher.push(request(url))).delivered
    finally:
        server.close()
        await server.wait_closed()
    assert len(heard) == 2 and all(b"cookie" not in head.lower() for head in heard)
    assert not client.cookies  # stock httpx keeps every board's Set-Cookie in the client's jar


async def test_young_collections_are_rarer_while_any_fan_out_runs(
        boards: FakeBoards, client: httpx.AsyncClient) -> None:
    before = gc.get_threshold()
    assert before != FANOUT_GC_THRESHOLD
    pusher = fast_pusher(client)
    short = asyncio.create_task(pusher.push_all([request(boards.url("hang", "b1"), "b1", seconds=0.2)]))
    long = asyncio.create_task(pusher.push_all([request(boards.url("hang", "b2"), "b2", seconds=0.5)]))
    await asyncio.sleep(0.05)
    assert gc.get_threshold() == FANOUT_GC_THRESHOLD
    await short
    assert gc.get_threshold() == FANOUT_GC_THRESHOLD  # the other is still under way
    await long
    assert gc.get_threshold() == before


async def test_a_push_leaves_no_response_for_the_cyclic_collector(
        boards: FakeBoards, client: httpx.AsyncClient) -> None:
    pusher = fast_pusher(client)
    await pusher.push(request(boards.url("ok", "b0"), "b0"))  # connections and caches warm
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        results = await pusher.push_all([request(boards.url("ok", f"b{i}"), f"b{i}") for i in range(20)])
        assert all(result.delivered for result in results)
        gc.collect()
        left = [o for o in gc.garbage if isinstance(o, httpx.Response | httpx.Request)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == []  # freed by reference counting as each push ends


async def test_the_push_client_keeps_httpx_behaviour_off_the_push_path(boards: FakeBoards) -> None:
    url = boards.url(Ok(content_hash="sha256:abc"), "b1")
    seen: list[httpx.Response] = []

    async def hook(response: httpx.Response) -> None:
        seen.append(response)

    async with make_client(networks=LOOPBACK) as client:
        plain = await client.send(httpx.Request("POST", url, content=b"{}"))
        assert plain.status_code == 200 and plain.request.url == url and plain.json() == {"content_hash": "sha256:abc"}
        assert plain.is_closed and not seen
        client.event_hooks = {"response": [hook]}
        hooked = await client.send(httpx.Request("POST", url, content=b"{}"))  # httpx's own path: hooks run
        assert seen == [hooked] and hooked.status_code == 200
        streamed = await client.send(httpx.Request("POST", url, content=b"{}"), stream=True)
        assert await streamed.aread() == plain.content
    assert len(boards.received("b1")) == 3
