"""EpochOrder against the brute-force reference epoch: contiguous ranges of positions
(``order="episodes"``/``"blocks"`` fast paths) for every sub-range, both permutations, with and without
shuffling; one position at a time (``frame_one``); the unit orders through the sampler."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from episode_sampler import EpisodeAwareSampler, EpisodeIndex
from episode_sampler.core.order import EpochOrder
from tests.helpers.layouts import GAPPED_LAYOUTS, gapped, gapped_index, valid_frames
from tests.helpers.reference import reference_epoch


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
    starts, ends = gapped(lengths, [gap] * len(lengths))
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
    starts, ends = gapped(lengths.tolist(), [1] * lengths.size)
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


# ------------------------------------------------ one position at a time (``EpochOrder.frame_one``)
@pytest.mark.parametrize("gap", [0, 1, 7])
@pytest.mark.parametrize("order,block", [("frames", None), ("episodes", None), ("blocks", 3)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_frame_one_matches_materialized_frames(gap, order, block, shuffle):
    lengths = [5, 1, 9, 4, 12, 3]
    index = gapped_index(lengths, [gap] * len(lengths))
    valid = valid_frames(index)
    o = EpochOrder(index, order=order, block_size=block, permutation="feistel", seed=3, shuffle=shuffle)
    for epoch in (0, 4):
        full = o.frames(epoch, np.arange(o.num_frames, dtype=np.int64)).tolist()
        assert sorted(full) == valid
        assert [o.frame_one(epoch, g) for g in range(o.num_frames)] == full


# ------------------------------------------------ episode and block orders through the sampler
# (formerly run against the compiled kernel and the numpy fallback; numpy is the only path now)
@pytest.mark.parametrize(("order", "block_size"), [("episodes", None), ("blocks", 4), ("blocks", 7)])
@pytest.mark.parametrize("name", ["regular", "empty episodes", "tiny episodes in one bucket"])
def test_unit_orders_match_reference(order, block_size, name):
    index = gapped_index(*GAPPED_LAYOUTS[name])
    s = EpisodeAwareSampler(
        index.starts,
        index.ends,
        shuffle=True,
        seed=4,
        permutation="feistel",
        order=order,
        block_size=block_size,
    )
    eps = [list(range(a, b)) for a, b in zip(index.starts.tolist(), index.ends.tolist())]
    expect = reference_epoch(eps, order, block_size, "feistel", 4, 6)
    assert s.frame_indices(6).tolist() == expect
    n = len(expect)
    assert s.frame_indices(6, n // 3, n - 5).tolist() == expect[n // 3 : n - 5]  # a range inside units
