from __future__ import annotations

import itertools
from collections import Counter

import pytest

from displayd.rotation import PlaylistEntry, cycle, slogan_for_slot, weighted_cycle
from displayd.rotation._cycles import _swrr

from .builders import campaign, playlist


def letters(seq: tuple[int, ...] | list[int]) -> str:
    return "".join("abcdefghij"[s - 1] for s in seq)


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ((1,), "a"),
        ((3,), "aaa"),
        ((1, 1, 1), "abc"),
        ((2, 2), "abab"),
        ((1, 2), "bab"),  # ties go to the earlier entry only when equal
        ((5, 1, 1), "aabacaa"),  # nginx's documented example
        ((2, 1, 1), "abca"),
        ((3, 2, 1), "abacba"),
        ((3, 1, 1, 1), "abacda"),
        ((1, 1, 2), "cabc"),
    ],
)
def test_plain_swrr(weights: tuple[int, ...], expected: str) -> None:
    assert letters(_swrr(playlist(*weights))) == expected


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ((1,), "a"),
        ((3,), "aaa"),
        ((1, 1, 1), "abc"),
        ((2, 2), "abab"),
        ((2, 1, 1), "abac"),  # SWRR abca has a|a across the cycle boundary
        ((3, 2, 1), "abacab"),  # SWRR abacba: the last a swaps with the b before it
        ((3, 1, 1, 1), "abacad"),
        ((1, 1, 2), "cacb"),
        ((5, 1, 1), "aabacaa"),  # no spread possible: SWRR's even spread is kept
        ((1, 2), "bab"),
        ((2, 2, 2), "abcabc"),
        ((1, 2, 3), "cbcacb"),  # SWRR cbacbc: the last c is lifted into the b|a gap
        ((3, 3, 2), "abcabcab"),
    ],
)
def test_weighted_cycle(weights: tuple[int, ...], expected: str) -> None:
    assert letters(weighted_cycle(playlist(*weights))) == expected


def test_weighted_cycle_empty_and_duplicates() -> None:
    assert weighted_cycle(()) == ()
    # The same slogan twice in a playlist counts as one slogan for adjacency.
    seq = weighted_cycle((PlaylistEntry(1, 1), PlaylistEntry(1, 1), PlaylistEntry(2, 2)))
    assert Counter(seq) == {1: 2, 2: 2}
    assert all(seq[i] != seq[(i + 1) % 4] for i in range(4))


def _spreadable(weights: tuple[int, ...]) -> bool:
    return len(weights) > 1 and 2 * max(weights) <= sum(weights)


def test_every_small_playlist_is_spread_in_both_orders() -> None:
    # Exhaustive over small playlists: the repair and the shuffle's greedy fill must never
    # leave a repeat (or get stuck) when a spread exists.
    for size in range(1, 5):
        for weights in itertools.product(range(1, 5), repeat=size):
            entries = playlist(*weights)
            base = weighted_cycle(entries)
            assert Counter(base) == {e.slogan_id: e.weight for e in entries}
            for order in ("sequential", "shuffle"):
                spec = campaign(7, order=order, entries=entries)
                stream = [s for n in range(-2, 4) for s in cycle(spec, n)]
                assert sorted(stream) == sorted(base * 6)
                if _spreadable(weights):
                    assert all(a != b for a, b in itertools.pairwise(stream)), (weights, order)


def test_shuffle_differs_between_cycles_and_campaigns() -> None:
    entries = playlist(1, 1, 1, 1, 1, 1)
    a, b = campaign(1, order="shuffle", entries=entries), campaign(2, order="shuffle", entries=entries)
    assert len({cycle(a, n) for n in range(10)}) > 1
    assert [cycle(a, n) for n in range(10)] != [cycle(b, n) for n in range(10)]
    assert cycle(a, 3) == cycle(a, 3)


def test_shuffle_half_weight_slogan_closes_every_cycle() -> None:
    spec = campaign(3, order="shuffle", entries=playlist(3, 1, 1, 1))
    for n in range(20):
        seq = cycle(spec, n)
        assert seq[-1] == 1 and seq[0] != 1


def test_shuffle_cycle_n_does_not_depend_on_cache_history() -> None:
    from displayd.rotation._cycles import _cycle

    spec = campaign(4, order="shuffle", weights=(3, 2, 2, 1))
    forward = cycle(spec, 10_000)
    _cycle.cache_clear()
    assert cycle(spec, 10_000) == forward


@pytest.mark.parametrize(
    ("k", "offset", "expected"),
    [
        (0, 0, 10),
        (1, 0, 11),
        (2, 0, 10),
        (3, 0, 12),
        (5, 0, 11),
        (1, 2, 12),
        (0, -1, 12),  # negative offsets read the previous cycle
        (1001, 3, 10),
    ],
)
def test_slogan_for_slot_sequential(k: int, offset: int, expected: int) -> None:
    spec = campaign(1, weights=(2, 1, 1))  # ids 10, 11, 12 -> cycle 10 11 10 12
    assert slogan_for_slot(spec, k, offset) == expected


def test_slogan_for_slot_empty_playlist() -> None:
    with pytest.raises(ValueError):
        slogan_for_slot(campaign(1, entries=()), 0, 0)
