"""Progress of a long command, for a person at a terminal and quiet for a script.

    progress = Progress("rotation", total=200_000)
    for batch in batches:
        ...
        progress.advance(len(batch))
    progress.done()            # the one line a script (or a log) keeps

On a terminal one line is redrawn at most ten times a second: done of total, the share, the
rate and the time left. Elsewhere (a pipe, CI, a container's log) nothing is written until
`done()`, which writes one summary line.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress"]

REDRAW_SECONDS = 0.1


class Progress:
    def __init__(self, label: str, *, total: int, unit: str = "rows", stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.done_count = 0
        self._stream = stream if stream is not None else sys.stderr
        self._clock = clock
        self._started = clock()
        self._drawn_at = -REDRAW_SECONDS
        self._live = self._stream.isatty()

    def advance(self, count: int) -> None:
        self.done_count += count
        now = self._clock()
        if self._live and now - self._drawn_at >= REDRAW_SECONDS:
            self._drawn_at = now
            self._stream.write("\r\033[K" + self.line(now))
            self._stream.flush()

    def line(self, now: float) -> str:
        elapsed = max(now - self._started, 1e-9)
        rate = self.done_count / elapsed
        share = f" ({self.done_count / self.total:.0%})" if self.total else ""
        left = ""
        if 0 < self.done_count < self.total and rate > 0:
            left = f", {_duration((self.total - self.done_count) / rate)} left"
        return (f"{self.label}: {self.done_count:,} of {self.total:,} {self.unit}{share}, "
                f"{rate:,.0f} {self.unit}/s{left}")

    def done(self) -> None:
        now = self._clock()
        summary = (f"{self.label}: {self.done_count:,} {self.unit} in {_duration(now - self._started)}")
        self._stream.write(("\r\033[K" if self._live else "") + summary + "\n")
        self._stream.flush()


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"
