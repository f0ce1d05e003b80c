"""Numbers, ratios, dates and durations written the Vietnamese way, for pages people read.

    figure(1234.5)           # "1.234,5"   (`.` groups thousands, `,` marks decimals)
    percent(0.975)           # "97,5 %"
    day(t, zone)             # "07/05/2024" in that zone
    duration(7530)           # "2 giờ 5 phút 30 giây"
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

# Between a number and its unit: a line never breaks inside "97,5 %".
NBSP = "\u00a0"


def _swap(english: str) -> str:
    return english.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def number(value: float, decimals: int = 0) -> str:
    """`number(1234.5, 1)` → `1.234,5`: a fixed count of decimals."""
    return _swap(f"{value:,.{decimals}f}")


def figure(value: float, decimals: int = 3) -> str:
    """`figure(7200.0)` → `7.200`, `figure(12.25)` → `12,25`: up to `decimals`, no trailing zeros."""
    text = number(round(value, decimals), decimals)
    if "," in text:
        text = text.rstrip("0").rstrip(",")
    return "0" if text == "-0" else text


def percent(ratio: float | None, decimals: int = 2) -> str:
    """`percent(0.8625)` → `86,25 %`; None (nothing to measure) → `—`."""
    return "—" if ratio is None else f"{figure(ratio * 100, decimals)}{NBSP}%"


def day(t: datetime, zone: ZoneInfo) -> str:
    return t.astimezone(zone).strftime("%d/%m/%Y")


def moment(t: datetime, zone: ZoneInfo) -> str:
    """`07/05/2024 07:00`, as the plan page writes an instant."""
    return t.astimezone(zone).strftime("%d/%m/%Y %H:%M")


def duration(seconds: float) -> str:
    """`duration(7530)` → `2 giờ 5 phút 30 giây`; whole seconds, zero parts left out."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{number(n)}{NBSP}{unit}" for n, unit in ((hours, "giờ"), (minutes, "phút"), (secs, "giây")) if n]
    return " ".join(parts) or f"0{NBSP}giây"
