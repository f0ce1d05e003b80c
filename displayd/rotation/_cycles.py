"""Weighted cycles: how a playlist expands into the order slogans are shown in.

This module owns the cycle of a campaign and the no-adjacency promise: a slogan is never
shown in two adjacent slots when the playlist allows otherwise (at most half the cycle is
one slogan), including across the boundary between one cycle and the next.

Everything here is a pure function of the playlist, the campaign id and the cycle number.
Randomness comes from ``random.Random`` seeded with a string, which Python turns into a
seed through SHA-512, so it does not depend on ``PYTHONHASHSEED``; the sequence of draws is
that of CPython's Mersenne Twister, stable across 3.x releases.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import lru_cache

from ._model import CampaignSpec, PlaylistEntry

__all__ = [
    "cycle",
    "weighted_cycle",
]


def _swrr(playlist: Sequence[PlaylistEntry]) -> list[int]:
    """nginx smooth weighted round-robin, ties to the earlier playlist entry."""
    total = sum(entry.weight for entry in playlist)
    current = [0] * len(playlist)
    out: list[int] = []
    for _ in range(total):
        best = 0
        for i, entry in enumerate(playlist):
            current[i] += entry.weight
            if current[i] > current[best]:
                best = i
        current[best] -= total
        out.append(playlist[best].slogan_id)
    return out


def _counts(seq: Sequence[int]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for slogan_id in seq:
        counts[slogan_id] = counts.get(slogan_id, 0) + 1
    return counts


def _spreadable(counts: dict[int, int], total: int) -> bool:
    """Whether a cyclic order without adjacent repeats exists."""
    return len(counts) >= 2 and 2 * max(counts.values()) <= total


def _free_gap(seq: Sequence[int], slogan_id: int, near: int) -> int | None:
    """The insertion index in ``1..len(seq)`` nearest ``near`` (earlier on a tie) whose two
    ring neighbours both differ from ``slogan_id``. Index 0 is left out: on a ring it is the
    same gap as ``len(seq)``, and using it would change which slogan opens the cycle."""
    n = len(seq)
    gaps = sorted(range(1, n + 1), key=lambda g: (abs(g - near), g))
    for gap in gaps:
        if seq[gap - 1] != slogan_id and seq[gap % n] != slogan_id:
            return gap
    return None


def _repair(seq: list[int]) -> list[int]:
    """Remove cyclic adjacent repeats from an SWRR sequence, moving as little as possible.

    Rule: take the first repeat ``seq[i] == seq[i+1]`` reading the cycle as a ring from
    position 0 (the wrap-around pair last). Lift its later member (``i+1``; for the
    wrap-around pair, position ``L-1``, so the cycle keeps its first slogan) and put it back
    into the nearest gap whose two neighbours differ from it (nearest to where it was,
    earlier on a tie). Repeat until no repeat is left or none can be moved.

    Each move removes at least one repeat and creates none, so this ends after at most L
    moves. It always reaches zero when no slogan exceeds half the cycle: a slogan with
    count c blocks at most 2(c-1) of the L-1 gaps left after lifting it, so one is free.
    When one slogan does exceed half, only its unavoidable repeats remain, spread as SWRR
    spread them. ``2,1,1`` (SWRR ``a b c a``) becomes ``a b a c``; ``1,2,3``
    (``c b a c b c``) becomes ``c b c a c b``.
    """
    n = len(seq)
    stuck: set[int] = set()
    while True:
        repeat = next(
            (i for i in range(n) if seq[i] == seq[(i + 1) % n] and seq[i] not in stuck),
            None,
        )
        if repeat is None:
            return seq
        lifted = repeat + 1 if repeat + 1 < n else repeat
        slogan_id = seq[lifted]
        rest = seq[:lifted] + seq[lifted + 1 :]
        gap = _free_gap(rest, slogan_id, lifted)
        if gap is None:
            # Only a slogan holding more than half the cycle can have no free gap; its
            # repeats are unavoidable.
            stuck.add(slogan_id)
            continue
        seq = [*rest[:gap], slogan_id, *rest[gap:]]


@lru_cache(maxsize=512)
def _weighted_cycle(playlist: tuple[PlaylistEntry, ...]) -> tuple[int, ...]:
    seq = _swrr(playlist)
    counts = _counts(seq)
    if len(counts) < 2:
        return tuple(seq)
    return tuple(_repair(seq))


def weighted_cycle(playlist: Sequence[PlaylistEntry]) -> tuple[int, ...]:
    """The sequential cycle: ``weighted_cycle([a·2, b·1, c·1])`` -> ``(a, b, a, c)``.

    Smooth weighted round-robin (nginx; ties to the earlier entry), then :func:`_repair`
    (lift a repeated slogan into the nearest gap it fits), so that the cycle, read as a
    ring, has no adjacent repeats whenever no slogan has more than half the weight. When
    one does, it keeps the fewest repeats possible (2·weight - L). Each slogan appears
    ``weight`` times.
    """
    return _weighted_cycle(tuple(playlist))


def _seeded(kind: str, campaign_id: int, cycle_number: int) -> random.Random:
    return random.Random(f"displayd:{kind}:{campaign_id}:{cycle_number}")


def _pick(rng: random.Random, weights: Sequence[tuple[int, int]]) -> int:
    """A slogan id drawn with probability proportional to its weight; ids in fixed order."""
    total = sum(weight for _, weight in weights)
    draw = rng.randrange(total)
    for slogan_id, weight in weights:
        if draw < weight:
            return slogan_id
        draw -= weight
    raise AssertionError("unreachable: draw below total")


def _shuffle_last(counts: dict[int, int], total: int, campaign_id: int, cycle_number: int) -> int:
    """The last slogan of a shuffled cycle, a function of the seed alone.

    Fixing it lets cycle n know how cycle n-1 ends without computing cycle n-1. When one
    slogan holds exactly half the cycle, every valid ring alternates it with the others,
    and consecutive cycles only fit together if all of them end with it.
    """
    for slogan_id in sorted(counts):
        if 2 * counts[slogan_id] == total:
            return slogan_id
    return _pick(_seeded("last", campaign_id, cycle_number), sorted(counts.items()))


def _fits(counts: dict[int, int], room: int, left: int, right: int) -> bool:
    """Whether ``counts`` (summing to ``room``) can fill a run of ``room`` slots placed
    between ``left`` and ``right`` without adjacent repeats.

    A slogan needing k slots fits a run of r when k <= ceil(r/2), one less per end of the
    run it may not take because its neighbour outside is the same slogan.
    """
    if room == 0:
        return left != right
    for slogan_id, count in counts.items():
        if count and count > (room + 1 - (slogan_id == left) - (slogan_id == right)) // 2:
            return False
    return True


def _shuffled(base: tuple[int, ...], campaign_id: int, cycle_number: int) -> tuple[int, ...]:
    counts = _counts(base)
    total = len(base)
    rng = _seeded("order", campaign_id, cycle_number)
    if not _spreadable(counts, total):
        # One slogan holds more than half: keep SWRR's even spread of it and shuffle
        # only which light slogan fills each gap.
        heavy = max(sorted(counts), key=lambda s: counts[s])
        lights = [s for s in base if s != heavy]
        rng.shuffle(lights)
        it = iter(lights)
        return tuple(s if s == heavy else next(it) for s in base)
    last = _shuffle_last(counts, total, campaign_id, cycle_number)
    previous_last = _shuffle_last(counts, total, campaign_id, cycle_number - 1)
    remaining = dict(sorted(counts.items()))
    remaining[last] -= 1
    out: list[int] = []
    before = previous_last
    # Greedy fill of positions 0..L-2 between previous_last and last, drawing each slogan
    # by its remaining count among those that keep the rest fillable: bounded (L draws),
    # never stuck, and every valid cycle can come out.
    for position in range(total - 1):
        room = total - 2 - position
        choices: list[tuple[int, int]] = []
        for slogan_id, count in remaining.items():
            if count == 0 or slogan_id == before:
                continue
            remaining[slogan_id] = count - 1
            if _fits(remaining, room, slogan_id, last):
                choices.append((slogan_id, count))
            remaining[slogan_id] = count
        if not choices:
            raise AssertionError(f"shuffle got stuck at {position} of {base}")
        before = _pick(rng, choices)
        remaining[before] -= 1
        out.append(before)
    out.append(last)
    return tuple(out)


@lru_cache(maxsize=4096)
def _cycle(playlist: tuple[PlaylistEntry, ...], order: str, campaign_id: int, cycle_number: int) -> tuple[int, ...]:
    base = _weighted_cycle(playlist)
    if order == "sequential" or len(set(base)) < 2:
        return base
    return _shuffled(base, campaign_id, cycle_number)


def cycle(campaign: CampaignSpec, cycle_number: int) -> tuple[int, ...]:
    """Cycle ``cycle_number`` of a campaign, as slogan ids.

    ``sequential``: every cycle is :func:`weighted_cycle`. ``shuffle``: a permutation of it
    seeded by ``(campaign.id, cycle_number)``, with no adjacent repeats inside and not
    starting with the slogan the previous cycle ended with (whenever the weights allow).
    Costs O(L·distinct slogans) and never computes another cycle's order.
    """
    return _cycle(campaign.playlist, campaign.order, campaign.id, cycle_number)
