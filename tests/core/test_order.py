"""Contiguous ranges of positions (``order="episodes"``/``"blocks"`` fast paths) give exactly the
reference epoch's frames, for every sub-range, both permutations, with and without shuffling."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from episode_sampler import EpisodeIndex
from episode_sampler.core.order import EpochOrder
from tests.helpers.reference import reference_epoch


def _layout(lengths, gaps):
    starts, ends, at = [], [], 0
    for length, gap in zip(lengths, gaps):
        starts.append(at)
        ends.append(at + length)
        at += length + gap
    return starts, ends


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 40), min_size=1, max_size=25),
    st.integers(0, 3),
    st.sampled_from([("episodes", None), ("blocks", 1), ("blocks", 3), ("blocks", 8)]),
    st.sampled_from(["feistel", "randperm"]),
    st.booleans(),
    st.integers(0, 2**32),
)
def test_ranges_match_the_reference_epoch(lengths, gap, order_block, permutation, shuffle, seed):
    if sum(lengths) == 0:
        lengths = [*lengths, 1]
    order, block = order_block
    starts, ends = _layout(lengths, [gap] * len(lengths))
    o = EpochOrder(
        EpisodeIndex(np.array(starts), np.array(ends)),
        order=order,
        block_size=block,
        permutation=permutation,
        seed=seed,
        shuffle=shuffle,
    )
    eps = [list(range(a, b)) for a, b in zip(starts, ends)]
    want = reference_epoch(eps, order, block, permutation, seed, 2, shuffle)
    n = len(want)
    assert o.frames(2, np.arange(n, dtype=np.int64)).tolist() == want
    cuts = sorted({0, n, *np.random.default_rng(seed % 1000).integers(0, n + 1, 6).tolist()})
    for a in cuts:
        for b in cuts:
            if b > a:
                assert o.frames(2, np.arange(a, b, dtype=np.int64)).tolist() == want[a:b], (a, b)


@pytest.mark.parametrize("order,block", [("episodes", None), ("blocks", 16)])
def test_ranges_at_a_large_layout(order, block):
    lengths = np.random.default_rng(0).integers(1, 300, 2000)
    starts, ends = _layout(lengths.tolist(), [1] * lengths.size)
    o = EpochOrder(
        EpisodeIndex(np.array(starts), np.array(ends)),
        order=order,
        block_size=block,
        permutation="feistel",
        seed=7,
        shuffle=True,
    )
    n = o.num_frames
    whole = o.frames(4, np.arange(n, dtype=np.int64))
    # the same positions in a scrambled order take the per-position path: a different code path
    scramble = np.random.default_rng(1).permutation(n)
    assert (o.frames(4, scramble) == whole[scramble]).all()
    assert sorted(whole.tolist()) == [f for a, b in zip(starts, ends) for f in range(a, b)]
