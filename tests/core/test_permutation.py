import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from episode_sampler.core.permutation import (
    FeistelPermutation,
    RandpermPermutation,
    check_seed,
    feistel_keys,
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


# ------------------------------------------------ one position at a time (``Permutation.one``)
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


# ------------------------------------------------ arrays against the definition
# (formerly run against the compiled kernel and the numpy fallback; numpy is the only path now)
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 15, 16, 17, 1000, 4097, 2**20 + 3])
@pytest.mark.parametrize("rounds", [4, 5, 8])
def test_feistel_matches_definition(n, rounds):
    p = FeistelPermutation(n, seed=11, epoch=3, rounds=rounds)
    rng = np.random.default_rng(n)
    pos = rng.integers(0, n, size=min(n, 300)).astype(np.int64)
    out = p(pos)
    assert out.tolist() == [feistel_reference(n, 11, 3, int(x), rounds=rounds) for x in pos]
    assert p.inverse(out).tolist() == pos.tolist()


@pytest.mark.parametrize("n", [2**40 + 7, 2**62, 2**63 + 5, 2**64 - 1])
def test_feistel_wide_domains(n):
    """Half widths up to 32 bits (a 64-bit domain): no overflow in the masks and shifts."""
    p = FeistelPermutation(n, seed=5, epoch=1)
    pos = np.array([0, 1, 12345, 2**40 + 6], dtype=np.uint64).view(np.int64)
    expect = [feistel_reference(n, 5, 1, int(x)) for x in pos.view(np.uint64)]
    assert p(pos).view(np.uint64).tolist() == expect
    assert [p.one(int(x)) for x in pos.view(np.uint64)] == expect


def test_feistel_is_a_bijection_across_chunks():
    n = 3 * 4096 + 17  # several 4096-position chunks, a partial last one
    p = FeistelPermutation(n, seed=2, epoch=9)
    x = p(np.arange(n, dtype=np.int64))
    assert sorted(x.tolist()) == list(range(n))
    assert x[:50].tolist() == [feistel_reference(n, 2, 9, i) for i in range(50)]
    assert p.inverse(x).tolist() == list(range(n))


@pytest.mark.parametrize("n", [1, 7, 64, 5000, 70_001])
def test_feistel_arrays_match_definition(n):
    """FeistelPermutation's arrays equal the definition (arrays longer than a chunk too)."""
    p = FeistelPermutation(n, seed=3, epoch=4)
    pos = np.arange(n, dtype=np.int64)
    out = p(pos)
    sample = list(range(0, n, max(1, n // 97)))
    assert out[sample].tolist() == [feistel_reference(n, 3, 4, i) for i in sample]
    assert sorted(out.tolist()) == list(range(n))
    assert p.inverse(out).tolist() == pos.tolist()


def test_keys_and_randperm_seed_match_numpy():
    for seed, epoch in ((0, 0), (2**64 - 1, 2**62), (12345, 7), (2**32, 2**32 - 1)):
        expect = np.random.SeedSequence([seed, epoch, 0x46656973746C]).generate_state(4, dtype=np.uint64)
        keys = feistel_keys(seed, epoch)
        assert keys.dtype == np.uint64 and keys.flags.writeable and keys.tolist() == expect.tolist()
        assert (
            feistel_keys(seed, epoch, 7).tolist()
            == np.random.SeedSequence([seed, epoch, 0x46656973746C])
            .generate_state(7, dtype=np.uint64)
            .tolist()
        )
        assert randperm_seed(seed, epoch) == int(
            np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0]
        )
    assert feistel_keys(np.uint64(5), np.int64(3)).tolist() == feistel_keys(5, 3).tolist()
