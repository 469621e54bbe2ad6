"""The one-position fast paths (``Permutation.one``, ``EpochOrder.frame_one``, ``_Lookup.frame_one``)
give exactly what the vectorized paths and the independent references give."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from episode_sampler import EpisodeIndex
from episode_sampler.core.order import EpochOrder
from episode_sampler.core.permutation import FeistelPermutation, make_permutation
from tests.helpers.reference import feistel_reference


@pytest.mark.parametrize("n", [1, 2, 3, 5, 17, 64, 65, 1000, 4**5 + 1, 2**20 + 1, 10**12, 2**62])
@pytest.mark.parametrize("seed", [0, 2**64 - 1, 0xDEADBEEF_CAFEF00D])
def test_feistel_one_matches_reference(n, seed):
    p = FeistelPermutation(n, seed=seed, epoch=5)
    probe = sorted({0, 1 % n, n // 3, n // 2, n - 1})
    assert [p.one(x) for x in probe] == [feistel_reference(n, seed, 5, x) for x in probe]
    assert [p.one(x) for x in probe] == p(np.array(probe, dtype=np.int64)).tolist()


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3000), st.integers(0, 2**64 - 1), st.integers(0, 2**40))
def test_one_matches_arrays(n, seed, epoch):
    for kind in ("feistel", "randperm"):
        p = make_permutation(kind, n, seed, epoch)
        full = p.materialize().tolist()
        probe = sorted({0, n // 2, n - 1})
        assert [p.one(x) for x in probe] == [full[x] for x in probe]


def _gappy(lengths, gap):
    starts, ends, at = [], [], 0
    for length in lengths:
        starts.append(at)
        ends.append(at + length)
        at += length + gap
    return EpisodeIndex(np.array(starts), np.array(ends))


@pytest.mark.parametrize("gap", [0, 1, 7])
@pytest.mark.parametrize("order,block", [("frames", None), ("episodes", None), ("blocks", 3)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_frame_one_matches_materialized_frames(gap, order, block, shuffle):
    index = _gappy([5, 1, 9, 4, 12, 3], gap)
    valid = [f for s, e in zip(index.starts.tolist(), index.ends.tolist()) for f in range(s, e)]
    o = EpochOrder(index, order=order, block_size=block, permutation="feistel", seed=3, shuffle=shuffle)
    for epoch in (0, 4):
        full = o.frames(epoch, np.arange(o.num_frames, dtype=np.int64)).tolist()
        assert sorted(full) == valid
        assert [o.frame_one(epoch, g) for g in range(o.num_frames)] == full
