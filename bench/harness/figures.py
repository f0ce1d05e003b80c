"""Turning timings into the figures the benchmarks print: percentiles, ratios, medians of rounds, verdicts.

    percentile([0.1, 0.2, 0.3], 0.99)       # 0.3: nearest rank, a value that was measured
    ms([12.3, 40.1], 0.5)                   # "12": a percentile of ms as printed, "-" when there are none
    ratio(ours, bare)                       # nan, not an exception, when the baseline is 0 or missing
    verdict(ratio >= 0.60)                  # "met" | "MISSED"

Every timing is printed as a ratio against a bare baseline measured in the same run where one
exists; a target is a measurement, printed as met or MISSED.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
NAN = math.nan


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..1); nan when there are no values."""
    if not values:
        return NAN
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(len(ordered) * share))) - 1]


def ms(values: Sequence[float], share: float) -> str:
    """The `share` percentile of values in ms, as whole ms (1.0: the largest), or "-" when there are none."""
    return "-" if not values else f"{percentile(values, share):.0f}"


def ratio(numerator: float | None, denominator: float | None) -> float:
    """numerator / denominator, or nan when either is missing or the denominator is 0 or nan."""
    if numerator is None or not denominator or math.isnan(denominator):
        return NAN
    return numerator / denominator


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def median(values: Iterable[float]) -> float:
    listed = list(values)
    return statistics.median(listed) if listed else NAN


@dataclass
class Rounds(Generic[T]):
    """One contender's measured rounds (of any result type), for medians and means of one figure each."""

    name: str
    runs: list[T] = field(default_factory=list)

    def median(self, figure: str) -> float:
        return median(float(getattr(run, figure)) for run in self.runs)

    def mean(self, figure: str) -> float:
        return statistics.fmean(float(getattr(run, figure)) for run in self.runs) if self.runs else NAN
