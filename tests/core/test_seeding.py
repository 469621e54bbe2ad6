from __future__ import annotations

import numpy as np
import pytest

from episode_sampler.core.seeding import sample_seed, splitmix64
from tests.helpers.reference import GOLDEN, MASK64, ref_mix, ref_sample_seed


def test_splitmix64_known_values():
    # SplitMix64 seeded with 0 yields 0xE220A8397B1DCDAF first (the reference C implementation)
    assert int(splitmix64(np.array([GOLDEN], dtype=np.uint64))[0]) == 0xE220A8397B1DCDAF
    assert ref_mix(GOLDEN) == 0xE220A8397B1DCDAF


@pytest.mark.parametrize(
    ("seed", "epoch", "frame"),
    [(0, 0, 0), (1, 2, 3), (12345, 7, 10**9), (MASK64, MASK64, MASK64), (2**63, 0, 2**40 + 5)],
)
def test_matches_pure_python_reference(seed, epoch, frame):
    got = sample_seed(seed, epoch, frame)
    assert type(got) is int
    assert got == ref_sample_seed(seed, epoch, frame)
    assert 0 <= got <= MASK64


def test_deterministic_and_numpy_ints_accepted():
    assert sample_seed(3, 4, 5) == sample_seed(3, 4, 5)
    assert sample_seed(np.int64(3), np.uint32(4), np.int16(5)) == sample_seed(3, 4, 5)


def test_vectorized_equals_scalar_and_keeps_shape():
    frames = np.arange(0, 5000, 7, dtype=np.int64).reshape(-1, 1)
    out = sample_seed(42, 3, frames)
    assert out.dtype == np.uint64 and out.shape == frames.shape
    assert [int(v) for v in out.ravel()] == [sample_seed(42, 3, int(f)) for f in frames.ravel()]
    assert [int(v) for v in out.ravel()[:50]] == [ref_sample_seed(42, 3, int(f)) for f in frames.ravel()[:50]]
    for dtype in (np.uint16, np.int32, np.uint64):
        np.testing.assert_array_equal(sample_seed(42, 3, frames.astype(dtype)), out)
    assert sample_seed(1, 1, np.zeros(0, dtype=np.int64)).shape == (0,)


def test_no_collisions():
    n = 100_000
    frames = np.arange(n)
    per_frame = sample_seed(7, 0, frames)
    assert np.unique(per_frame).size == n
    # disjoint (seed, epoch, frame) triples: all 3 * n + 4000 seeds must differ
    per_epoch = [sample_seed(7, e, n + 1) for e in range(2000)]
    per_seed = [sample_seed(s, 0, n + 2) for s in range(2000)]
    everything = np.concatenate(
        [
            per_frame,
            sample_seed(7, 1, frames),
            sample_seed(8, 0, frames),
            np.array(per_epoch + per_seed, np.uint64),
        ]
    )
    assert np.unique(everything).size == everything.size


def test_bits_look_uniform():
    out = sample_seed(0, 0, np.arange(20_000))
    bits = ((out[:, None] >> np.arange(64, dtype=np.uint64)[None, :]) & np.uint64(1)).mean(axis=0)
    assert np.all(np.abs(bits - 0.5) < 0.02)


@pytest.mark.parametrize(
    ("args", "exc", "match"),
    [
        ((1.0, 0, 0), TypeError, "seed"),
        ((True, 0, 0), TypeError, "seed"),
        ((0, "1", 0), TypeError, "epoch"),
        ((0, 0, 1.5), TypeError, "frame_index"),
        ((0, 0, np.array([1.0, 2.0])), TypeError, "frame_index"),
        ((0, 0, np.array([True])), TypeError, "frame_index"),
        ((0, 0, [1, "a"]), TypeError, "frame_index"),
        ((-1, 0, 0), ValueError, "seed"),
        ((2**64, 0, 0), ValueError, "seed"),
        ((0, -1, 0), ValueError, "epoch"),
        ((0, 0, -3), ValueError, "frame_index"),
        ((0, 0, np.array([0, -3])), ValueError, "frame_index"),
    ],
)
def test_validation(args, exc, match):
    with pytest.raises(exc, match=match):
        sample_seed(*args)
