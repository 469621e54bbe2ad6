import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from episode_sampler.core.permutation import (
    FeistelPermutation,
    RandpermPermutation,
    check_seed,
    make_permutation,
    randperm_seed,
)
from tests.helpers.reference import feistel_reference, lerobot_generator

PRIMES = [2, 3, 5, 7, 11, 13, 101, 1009, 65521, 1_000_003]
SIZES = sorted(
    {1, 2, 3}
    | {2**k - 1 for k in range(2, 21)}
    | {2**k for k in range(1, 21)}
    | {2**k + 1 for k in range(1, 21)}
    | {4**k + 1 for k in range(1, 11)}
    | set(PRIMES)
)


@pytest.mark.parametrize("n", SIZES)
def test_feistel_is_a_bijection(n):
    p = FeistelPermutation(n, seed=12345, epoch=3)
    values = p(np.arange(n, dtype=np.int64))
    assert values.dtype == np.int64
    counts = np.bincount(values, minlength=n)
    assert values.min() >= 0 and values.max() < n and (counts == 1).all()
    assert (p.inverse(values) == np.arange(n)).all()


@pytest.mark.parametrize("n", [1, 2, 3, 5, 17, 64, 65, 1000, 4**5 + 1])
@pytest.mark.parametrize("seed", [0, 1, 2**64 - 1, 0xDEADBEEF_CAFEF00D])
def test_feistel_matches_documented_construction(n, seed):
    p = FeistelPermutation(n, seed=seed, epoch=7)
    pos = np.arange(min(n, 300), dtype=np.int64)
    assert p(pos).tolist() == [feistel_reference(n, seed, 7, int(x)) for x in pos]


def test_feistel_seek_is_pointwise():
    n = 10**12
    p = FeistelPermutation(n, seed=9, epoch=1)
    probe = np.array([0, 1, n // 2, n - 1], dtype=np.int64)
    assert p(probe).tolist() == [feistel_reference(n, 9, 1, int(x)) for x in probe]
    assert (p.inverse(p(probe)) == probe).all()


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 5000), st.integers(0, 2**64 - 1), st.integers(0, 10**6))
def test_feistel_bijection_property(n, seed, epoch):
    values = FeistelPermutation(n, seed, epoch).materialize()
    assert sorted(values.tolist()) == list(range(n))


def test_feistel_no_visible_structure():
    n = 1 << 20
    pos = np.arange(n, dtype=np.int64)
    v = FeistelPermutation(n, seed=42, epoch=0)(pos)
    same_parity = np.mean((v[1:] & 1) == (v[:-1] & 1))
    assert 0.49 < same_parity < 0.51
    strides = np.diff(v)
    _, counts = np.unique(strides, return_counts=True)
    assert counts.max() / n < 0.001  # no dominant stride
    assert abs(np.corrcoef(pos, v)[0, 1]) < 0.01
    # Different seeds and epochs differ almost everywhere.
    for other in (FeistelPermutation(n, 43, 0)(pos), FeistelPermutation(n, 42, 1)(pos)):
        assert np.mean(other == v) < 0.001
    # Within a block of 1024 positions values spread over the whole range.
    assert v[:1024].max() - v[:1024].min() > n * 0.9


def test_feistel_non_power_of_two_structure():
    n = 4**8 + 1  # worst case for cycle walking: domain just above n * 4 / 4
    v = FeistelPermutation(n, 3, 0).materialize()
    assert abs(np.corrcoef(np.arange(n), v)[0, 1]) < 0.02


def test_randperm_is_lerobots_formula():
    for n, seed, epoch in [(1, 0, 0), (10, 0, 0), (1000, 7, 3), (5, 2**64 - 1, 10**9)]:
        expected = torch.randperm(n, generator=lerobot_generator(seed, epoch)).numpy()
        p = RandpermPermutation(n, seed, epoch)
        assert (p(np.arange(n)) == expected).all()
        assert (p.inverse(expected) == np.arange(n)).all()
    assert randperm_seed(7, 3) == int(np.random.SeedSequence([7, 3]).generate_state(1, dtype=np.uint64)[0])


@pytest.mark.parametrize("bad", [-1, 2**64, 1.0, "1", None, True, np.float64(3)])
def test_seed_validation(bad):
    with pytest.raises(ValueError):
        check_seed(bad)
    with pytest.raises(ValueError):
        FeistelPermutation(10, bad, 0)


def test_seed_full_64_bits_no_truncation():
    a = FeistelPermutation(1000, 2**64 - 1, 0).materialize()
    b = FeistelPermutation(1000, 2**63 - 1, 0).materialize()
    c = FeistelPermutation(1000, (2**64 - 1) & 0xFFFFFFFF, 0).materialize()
    assert not (a == b).all() and not (a == c).all()
    assert check_seed(np.uint64(2**64 - 1)) == 2**64 - 1


def test_make_permutation_errors():
    with pytest.raises(ValueError, match="permutation must be one of"):
        make_permutation("shuffle", 10, 0, 0)
    with pytest.raises(ValueError, match="n must be >= 1"):
        make_permutation("feistel", 0, 0, 0)
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        make_permutation("feistel", 10, 0, -1)
