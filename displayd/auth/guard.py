"""Failed sign-ins: seen, counted, and a brake on guessing.

    guard = AuthGuard(clock, metrics)              # one per process, on its Runtime
    guard.check(address)                           # raises TooManyFailures while the address is held
    guard.failed(Kind.API_KEY, address)            # after a key, board token or sign-in was refused

Every refused API key, board token and dashboard sign-in is counted in `/metrics`
(`displayd_auth_failures_total{kind}`) and logged as an `auth_failure` event with the
client address and never the presented secret. A flood writes a bounded number of lines:
each minute at most `LOG_PER_ADDRESS` lines per address and `LOG_PER_MINUTE` in all, then
one `auth_failure_summary` line with the counts of what was left out.

After `LIMIT` failed staff keys or sign-ins within `WINDOW` from one address, that address
is held for `HOLD`: sign-in and staff keys (good ones too, so guessing learns nothing)
answer 429 `too_many_failures` with `Retry-After`, counted as `displayd_auth_refused_total`.
Board tokens are counted and logged but never held and never count towards the limit: a
board behind the same NAT as a careless script must keep working, and a board token
(`bt_…`) can never open a staff key, so guessing one gains nothing there.

The state is per process and bounded (`MAX_ADDRESSES`); time comes from the app's clock.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from displayd.errors import TooManyFailures

if TYPE_CHECKING:
    from displayd.metrics import Metrics

log = logging.getLogger("displayd.auth")

LIMIT = 20            # failed staff keys or sign-ins from one address …
WINDOW = 60.0         # … within this many seconds …
HOLD = 60.0           # … hold the address this long
LOG_PER_ADDRESS = 5   # `auth_failure` lines per address per minute
LOG_PER_MINUTE = 50   # and in all, per minute
MAX_ADDRESSES = 10_000
SUMMARY_TOP = 10      # addresses named in a summary line


class Kind(StrEnum):
    API_KEY = "api_key"
    BOARD_TOKEN = "board_token"
    SIGN_IN = "sign_in"


@dataclass(slots=True)
class _Address:
    strikes: deque[float]  # times of the latest staff failures (at most `limit`)
    held_until: float = 0.0
    logged: int = 0      # lines written this minute
    left_out: int = 0    # failures not logged this minute
    last: float = 0.0


class AuthGuard:
    def __init__(self, clock: Callable[[], datetime], metrics: Metrics, *, limit: int = LIMIT) -> None:
        self.clock = clock
        self.metrics = metrics
        self.limit = limit
        self.holding = True  # False: count and log, never hold (tests that fail on purpose)
        self._addresses: dict[str, _Address] = {}
        self._minute_started: float | None = None
        self._lines = 0               # lines written this minute
        self._untracked = 0           # failures from addresses past MAX_ADDRESSES this minute

    def _now(self) -> float:
        return self.clock().timestamp()

    def check(self, address: str) -> None:
        """Raise `TooManyFailures` while `address` is held (before its key is even looked up)."""
        entry = self._addresses.get(address)
        if entry is None or not entry.held_until:
            return
        now = self._now()
        if now >= entry.held_until:
            entry.held_until = 0.0
            return
        self.metrics.auth_refused += 1
        retry_after = max(1, math.ceil(entry.held_until - now))
        raise TooManyFailures(f"too many failed sign-ins from this address; try again in {retry_after} s",
                              retry_after=retry_after)

    def retry_after(self, address: str) -> int | None:
        """Seconds `address` is still held (counted as a refusal), or None; for pages that answer
        with HTML rather than the JSON error."""
        try:
            self.check(address)
        except TooManyFailures as exc:
            return exc.retry_after
        return None

    def failed(self, kind: Kind, address: str) -> None:
        """Count, log (within the budget) and, for staff credentials, hold after `limit`."""
        self.metrics.auth_failures[kind.value] += 1
        now = self._now()
        self._roll(now)
        entry = self._addresses.get(address)
        if entry is None:
            if len(self._addresses) >= MAX_ADDRESSES:
                # A spray from more addresses than we track: still counted and summarised, not
                # held; idle addresses are forgotten at the next minute (never per failure, so
                # a spray costs O(1) each).
                self._untracked += 1
                return
            entry = self._addresses[address] = _Address(deque(maxlen=self.limit))
        entry.last = now
        held_now = False
        if kind is not Kind.BOARD_TOKEN and self.holding:
            entry.strikes.append(now)
            if (len(entry.strikes) >= self.limit and now - entry.strikes[-self.limit] < WINDOW
                    and now >= entry.held_until):
                entry.held_until = now + HOLD
                entry.strikes.clear()
                held_now = True
        if held_now and self._lines < LOG_PER_MINUTE:
            self._lines += 1
            entry.logged += 1
            log.warning("%d failed sign-ins within %d s from %s: held for %d s", self.limit, WINDOW, address,
                        HOLD, extra={"event": "auth_held", "client": address, "failures": self.limit,
                                     "seconds": int(HOLD)})
        elif entry.logged < LOG_PER_ADDRESS and self._lines < LOG_PER_MINUTE:
            self._lines += 1
            entry.logged += 1
            log.warning("refused %s from %s", kind.value, address,
                        extra={"event": "auth_failure", "kind": kind.value, "client": address})
        else:
            entry.left_out += 1

    def _roll(self, now: float) -> None:
        """At most once a minute: summarise what was left out, start a new minute's budget,
        forget addresses with nothing pending."""
        if self._minute_started is not None and now - self._minute_started < WINDOW:
            return
        self.summarise()
        self._minute_started = now

    def summarise(self) -> None:
        """Log one `auth_failure_summary` line if any failures were left out; start afresh."""
        left_out = {address: e.left_out for address, e in self._addresses.items() if e.left_out}
        total = sum(left_out.values()) + self._untracked
        if total:
            top = sorted(left_out.items(), key=lambda item: -item[1])[:SUMMARY_TOP]
            log.warning("%d more failed sign-ins were not logged one by one (from %d addresses)", total,
                        len(left_out) + (1 if self._untracked else 0),
                        extra={"event": "auth_failure_summary", "failures": total,
                               "addresses": len(left_out), "untracked": self._untracked,
                               "top": dict(top)})
        for entry in self._addresses.values():
            entry.logged = entry.left_out = 0
        self._lines = self._untracked = 0
        self._forget_idle(self._now())

    def _forget_idle(self, now: float) -> None:
        idle = [address for address, e in self._addresses.items()
                if now >= e.held_until and now - e.last >= WINDOW and not e.left_out]
        for address in idle:
            del self._addresses[address]

    async def run(self, every: float = WINDOW) -> None:
        """Summarise once a minute even when no more failures come (a flood that stopped)."""
        while True:
            await asyncio.sleep(every)
            try:
                self._roll(self._now())
            except Exception as exc:  # the guard must never take the process down
                log.warning("could not summarise failed sign-ins: %s", exc)

    def lift(self) -> None:
        """Release every held address and forget the failures that led there."""
        for entry in self._addresses.values():
            entry.held_until = 0.0
            entry.strikes.clear()
