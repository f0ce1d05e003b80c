"""Pushing one slot's documents to boards: attempts, retries, deadlines, and the result of each.

    pusher = Pusher(make_client(networks=settings.board_networks))
    results = await pusher.push_all([PushRequest(board_id="so-sanh-chinh", url=..., body=document,
                                                 webhook_id="so-sanh-chinh:3:1234", secret=secret,
                                                 deadline=loop.time() + seconds_left_in_slot)])

The rules (DESIGN "Push"): any 2xx is delivered. Connect errors, timeouts, read and protocol errors,
408, 429 and 5xx are retried, up to `max_attempts` within the slot, with full-jitter exponential
backoff; other 4xx, any 3xx (redirects are never followed) and refused addresses fail at once.
Every attempt is bounded by `asyncio.timeout` covering connect, send and the whole answer, and no
attempt starts or sleeps past the request's deadline. `webhook-id` stays the same across attempts,
so a board can drop duplicates; each attempt is signed afresh with its own timestamp.

This module owns no state about boards: health, circuits and the rotation log are the caller's.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import httpx

from displayd.delivery import signing
from displayd.delivery.transport import RefusedAddressError, ResponseTooLarge

__all__ = ["PushRequest", "PushResult", "Pusher"]

RETRYABLE_STATUSES = frozenset({408, 429})
_READ = httpx.ByteStream(b"")  # stands in for a response stream that has been read and closed
# While pushes fan out, the youngest generation is collected every 50,000 allocations, not
# 700: a push's objects live ~0.3 s among hundreds in flight, and the default threshold
# traversed (and promoted) them over and over. Measured at 10,000 boards (bench/fanout.py's
# conditions): ~1,300 collections and ~1.2 s of GC in a 3-4 s fan-out by default, one of
# ~13 ms with this. Pushes leave no cyclic garbage (see `_attempt`), so it does not pile up.
FANOUT_GC_THRESHOLD = (50_000, 10, 10)


@dataclass(frozen=True, slots=True)
class PushRequest:
    """One document for one board in one slot."""

    board_id: str
    url: str
    body: bytes  # the JSON document, already serialised
    webhook_id: str  # "<board>:<campaign>:<slot>:<revision>", stable across retries
    secret: str  # "whsec_…"
    deadline: float  # loop.time() by which every attempt must have finished (the slot's end)


@dataclass(slots=True)
class PushResult:
    """What happened to one PushRequest; `error` is a short reason when not delivered."""

    board_id: str
    webhook_id: str
    delivered: bool
    attempts: int
    http_status: int | None  # of the last attempt that got a response
    latency_ms: int | None  # of the last attempt
    error: str | None  # "timeout", "connect error: …", "http 500", "redirect 302 not followed", "refused address: …"
    finished_at: float  # loop.time() when the last attempt ended
    reported_hash: str | None  # {"content_hash": "…"} from the board's answer, if it sent one


@dataclass(slots=True)
class _Attempt:
    delivered: bool
    retry: bool
    error: str | None
    status: int | None = None
    reported_hash: str | None = None


class Pusher:
    """Pushes through one shared httpx client (see `make_client`).

        pusher = Pusher(client, attempt_timeout=5.0, max_attempts=3)
        result = await pusher.push(request)           # PushResult, never raises for the board's faults
        results = await pusher.push_all(requests)     # in input order; one board never fails the batch
    """

    def __init__(self, client: httpx.AsyncClient, *, attempt_timeout: float = 5.0, max_attempts: int = 3,
                 backoff_base: float = 0.25, backoff_cap: float = 2.0, rng: random.Random | None = None,
                 wall_clock: Callable[[], float] = time.time, user_agent: str | None = None) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.client = client
        self.attempt_timeout = attempt_timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._rng = rng or random.Random()
        self._wall_clock = wall_clock
        # `send` skips the client's default headers (and their cost), so ours are added here.
        self._extra_headers = {"user-agent": user_agent} if user_agent else {}

    async def push(self, request: PushRequest) -> PushResult:
        loop = asyncio.get_running_loop()
        attempts = 0
        status: int | None = None
        latency_ms: int | None = None
        reported_hash: str | None = None
        error: str | None = "deadline passed"
        while True:
            started = loop.time()
            remaining = request.deadline - started
            if remaining <= 0:
                break  # keep the last attempt's error: "http 500" says more than "deadline passed"
            attempts += 1
            outcome = await self._attempt(request, min(self.attempt_timeout, remaining))
            ended = loop.time()
            latency_ms = round((ended - started) * 1000)
            if outcome.status is not None:
                status = outcome.status
            reported_hash = outcome.reported_hash
            error = outcome.error
            if outcome.delivered:
                return PushResult(request.board_id, request.webhook_id, True, attempts, status, latency_ms,
                                  None, ended, reported_hash)
            if not outcome.retry or attempts >= self.max_attempts:
                break
            delay = self._rng.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** (attempts - 1)))
            if ended + delay >= request.deadline:
                break  # the next attempt could not start before the slot ends
            await asyncio.sleep(delay)
        return PushResult(request.board_id, request.webhook_id, False, attempts, status, latency_ms,
                          error, loop.time(), reported_hash)

    async def _attempt(self, request: PushRequest, seconds: float) -> _Attempt:
        headers = signing.headers(request.secret, request.webhook_id, int(self._wall_clock()), request.body)
        headers.update(self._extra_headers)
        try:
            # Covers connect, send and the whole answer: a board dripping a byte a second is cut off here.
            async with asyncio.timeout(seconds):
                response = await self.client.send(
                    httpx.Request("POST", _url(request.url), content=request.body, headers=headers))
        except TimeoutError:
            return _Attempt(delivered=False, retry=True, error="timeout")
        except RefusedAddressError as exc:
            return _Attempt(delivered=False, retry=False, error=str(exc) or "refused address")
        except ResponseTooLarge as exc:  # the board's answer, not the network: another attempt reads the same
            return _Attempt(delivered=False, retry=False, error=f"protocol error: {exc}")
        except httpx.TimeoutException:
            return _Attempt(delivered=False, retry=True, error="timeout")
        except httpx.ConnectError as exc:
            return _Attempt(delivered=False, retry=True, error=f"connect error: {exc}")
        except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError) as exc:
            kind = "protocol error" if isinstance(exc, httpx.RemoteProtocolError) else "read error"
            return _Attempt(delivered=False, retry=True, error=f"{kind}: {exc}")
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            return _Attempt(delivered=False, retry=False, error=f"invalid url: {exc}")
        except httpx.TransportError as exc:
            return _Attempt(delivered=False, retry=True, error=f"transport error: {exc}")
        status = response.status_code
        reported_hash = _reported_hash(response.content)
        # httpx binds a response's stream to the response (a reference cycle, holding the request
        # too) even once it is read and closed: ~20 objects a push that only the cyclic GC frees.
        # Unbound here, they go by reference counting and collections stay rare (bench/fanout.py).
        response.stream = _READ
        if 200 <= status < 300:
            return _Attempt(delivered=True, retry=False, error=None, status=status, reported_hash=reported_hash)
        if 300 <= status < 400:
            return _Attempt(delivered=False, retry=False, error=f"redirect {status} not followed", status=status,
                            reported_hash=reported_hash)
        retry = status in RETRYABLE_STATUSES or status >= 500
        return _Attempt(delivered=False, retry=retry, error=f"http {status}", status=status,
                        reported_hash=reported_hash)

    async def push_all(self, requests: Sequence[PushRequest], *, concurrency: int = 4096, burst: int = 64,
                       gate: asyncio.Semaphore | None = None, spread: float = 0.0) -> list[PushResult]:
        """Every request pushed, at most `concurrency` at once; results in input order.

            results = await pusher.push_all(requests, concurrency=4096)
            gate = asyncio.Semaphore(4096)               # or: one limit shared by several calls
            first, rest = pusher.push_all(a, gate=gate), pusher.push_all(b, gate=gate)

        One task per board, started `burst` at a time with a yield in between, so the first
        pushes are on the wire before the rest are even built (a slot's fan-out is bound by
        CPU). A slow board holds only its own task: with a pool of workers instead, as many
        hanging boards as workers stalled every healthy board behind them (bench/faults.py).
        With `spread`, push i starts no earlier than `spread · i / len(requests)` seconds after
        the first (content sent ahead of its slot can leave paced rather than in one burst);
        a fan-out slower than that is not slowed further.
        """
        with _fewer_collections():
            return await self._push_all(requests, burst, gate or asyncio.Semaphore(concurrency), spread)

    async def _push_all(self, requests: Sequence[PushRequest], burst: int,
                        gate: asyncio.Semaphore, spread: float) -> list[PushResult]:
        results: list[PushResult | None] = [None] * len(requests)
        loop = asyncio.get_running_loop()
        begun, step = loop.time(), spread / len(requests) if requests else 0.0

        async def one(index: int) -> None:
            try:
                results[index] = await self._push_guarded(requests[index])
            finally:
                gate.release()

        async with asyncio.TaskGroup() as group:
            for index in range(len(requests)):
                if step and (wait := begun + step * index - loop.time()) > 0:
                    await asyncio.sleep(wait)
                await gate.acquire()  # a task only when it can start: never 10,000 waiting ones
                group.create_task(one(index))
                if index % burst == burst - 1:
                    await asyncio.sleep(0)
        done = [result for result in results if result is not None]
        assert len(done) == len(requests), "every push has a result"
        return done

    async def _push_guarded(self, request: PushRequest) -> PushResult:
        try:
            return await self.push(request)
        except Exception as exc:  # a bug or a surprise for one board must not fail the slot; CancelledError passes
            return PushResult(request.board_id, request.webhook_id, False, 0, None, None,
                              f"internal error: {type(exc).__name__}: {exc}", asyncio.get_running_loop().time(), None)


_fanouts = 0  # push_all calls under way in this process
_threshold = gc.get_threshold()


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """FANOUT_GC_THRESHOLD while any push_all runs; the process's own thresholds after the last."""
    global _fanouts, _threshold
    if _fanouts == 0:
        _threshold = gc.get_threshold()
        gc.set_threshold(*FANOUT_GC_THRESHOLD)
    _fanouts += 1
    try:
        yield
    finally:
        _fanouts -= 1
        if _fanouts == 0:
            gc.set_threshold(*_threshold)


@functools.lru_cache(maxsize=16_384)
def _url(url: str) -> httpx.URL:
    """A board's URL parsed once, not on every push (httpx.URL is immutable, so shareable)."""
    return httpx.URL(url)


def _reported_hash(content: bytes) -> str | None:
    if not content or not content.lstrip().startswith(b"{"):
        return None
    try:
        answer = json.loads(content)
    except ValueError:
        return None
    value = answer.get("content_hash") if isinstance(answer, dict) else None
    return value if isinstance(value, str) else None
