"""Time zones: which names displayd accepts, and the ZoneInfo for one.

    zone("Asia/Ho_Chi_Minh")   ->  ZoneInfo("Asia/Ho_Chi_Minh")
    zone("localtime")          ->  ValueError

This module owns the rule that a time zone is an IANA tz database name: a Zone or a Link
of the database (`Asia/Ho_Chi_Minh`, `UTC`, `Etc/GMT-7`, the backward-compatible
`Asia/Saigon`). Whatever else a zoneinfo directory holds is refused: `localtime` (this
machine's setting, different on every host, so two processes could plan differently),
`posixrules` (a template for POSIX TZ strings), `Factory` (a placeholder that means "zone
not set"), and the `posix/` and `right/` copies of the database (`right/` counts leap
seconds, which no board clock does).
"""

from __future__ import annotations

import zoneinfo
from functools import lru_cache

__all__ = [
    "timezone_names",
    "zone",
]

_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})
_NOT_ZONE_TREES = ("posix/", "right/")


def _is_iana(name: str) -> bool:
    return name not in _NOT_ZONES and not name.startswith(_NOT_ZONE_TREES)


@lru_cache(maxsize=1)
def timezone_names() -> frozenset[str]:
    """Every time zone name displayd accepts (read from the tz database once per process)."""
    return frozenset(name for name in zoneinfo.available_timezones() if _is_iana(name))


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The ZoneInfo for an accepted IANA name; ValueError (never KeyError) for anything else."""
    if not isinstance(name, str) or name not in timezone_names():
        raise ValueError(f"unknown time zone {name!r}: give an IANA name such as 'Asia/Ho_Chi_Minh'")
    return _load(name)


@lru_cache(maxsize=64)
def _load(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)
