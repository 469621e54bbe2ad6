"""The compiled kernel (``_kernel.c``) against independent references, and the numpy fallback against it.

References are written out here on Python ints (the Feistel definition from docs/permutations.md,
a bisection over cumulative lengths, a materialized list of valid frames), never taken from the
code under test. Every sampler-level check runs twice: with the kernel and with it switched off.
"""

from __future__ import annotations

import bisect
import functools
import operator
import os

import episode_sampler.kernel as kernel_mod
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from episode_sampler import EpisodeAwareSampler, EpisodeIndex
from episode_sampler.core.permutation import FeistelPermutation, feistel_keys

K = kernel_mod.K
needs_kernel = pytest.mark.skipif(K is None, reason=f"kernel: {kernel_mod.kernel_info()}")
U64 = (1 << 64) - 1


@functools.lru_cache(maxsize=64)
def _keys(seed: int, epoch: int, rounds: int) -> tuple[int, ...]:
    return tuple(int(k) for k in feistel_keys(seed, epoch, rounds))


def feistel_ref(x: int, n: int, seed: int, epoch: int, decrypt: bool = False, rounds: int = 4) -> int:
    """The documented definition: Feistel on 2**(2h) bits, SplitMix64 round function, cycle walking."""
    bits = max(2, (n - 1).bit_length())
    bits += bits & 1
    h = bits // 2
    keys = _keys(seed, epoch, rounds)

    def f(r: int, k: int) -> int:
        z = ((r ^ k) * 0xBF58476D1CE4E5B9) & U64
        z = ((z ^ (z >> 30)) * 0x94D049BB133111EB) & U64
        return z >> (64 - h)

    while True:
        left, right = x >> h, x & ((1 << h) - 1)
        if decrypt:
            for k in reversed(keys):
                left, right = right ^ f(left, k), left
        else:
            for k in keys:
                left, right = right, left ^ f(right, k)
        x = (left << h) | right
        if x < n:
            return x


def test_kernel_is_built():
    """CI installs with a C compiler: the fast path is under test (opt out: EPISODE_SAMPLER_KERNEL=0)."""
    if os.environ.get("EPISODE_SAMPLER_KERNEL", "1") == "0":
        assert kernel_mod.kernel_info().startswith("numpy (disabled")
        return
    assert kernel_mod.kernel_info() == "compiled", kernel_mod.kernel_info()


@pytest.fixture(params=["kernel", "numpy"])
def path(request, monkeypatch):
    """Run a test with the compiled kernel and with the numpy fallback."""
    if request.param == "kernel" and K is None:
        pytest.skip(f"kernel: {kernel_mod.kernel_info()}")
    if request.param == "numpy":
        monkeypatch.setattr(kernel_mod, "K", None)
    return request.param


# ------------------------------------------------------------------ Feistel


@needs_kernel
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 15, 16, 17, 1000, 4097, 2**20 + 3])
@pytest.mark.parametrize("rounds", [4, 5, 8])
def test_feistel_matches_definition(n, rounds):
    p = FeistelPermutation(n, seed=11, epoch=3, rounds=rounds)
    rng = np.random.default_rng(n)
    pos = rng.integers(0, n, size=min(n, 300)).astype(np.int64)
    out = np.empty_like(pos)
    K.feistel(pos, out, n, p.half_bits, p.keys, False)
    assert out.tolist() == [feistel_ref(int(x), n, 11, 3, rounds=rounds) for x in pos]
    back = np.empty_like(pos)
    K.feistel(out, back, n, p.half_bits, p.keys, True)
    assert back.tolist() == pos.tolist()


@needs_kernel
@pytest.mark.parametrize("n", [2**40 + 7, 2**62, 2**63 + 5, 2**64 - 1])
def test_feistel_wide_domains(n):
    """Half widths up to 32 bits (a 64-bit domain): no overflow in the masks and shifts."""
    p = FeistelPermutation(n, seed=5, epoch=1)
    pos = np.array([0, 1, 12345, 2**40 + 6], dtype=np.uint64).view(np.int64)
    out = np.empty_like(pos)
    K.feistel(pos, out, n, p.half_bits, p.keys, False)
    expect = [feistel_ref(int(x), n, 5, 1) for x in pos.view(np.uint64)]
    assert out.view(np.uint64).tolist() == expect


@needs_kernel
def test_feistel_is_a_bijection_and_in_place():
    n = 3 * 4096 + 17  # several tiles, a partial last one
    p = FeistelPermutation(n, seed=2, epoch=9)
    x = np.arange(n, dtype=np.int64)
    K.feistel(x, x, n, p.half_bits, p.keys, False)  # src is dst
    assert sorted(x.tolist()) == list(range(n))
    assert x[:50].tolist() == [feistel_ref(i, n, 2, 9) for i in range(50)]
    K.feistel(x, x, n, p.half_bits, p.keys, True)
    assert x.tolist() == list(range(n))


@needs_kernel
def test_feistel_refuses_bad_input():
    p = FeistelPermutation(100, seed=0, epoch=0)
    a = np.arange(10, dtype=np.int64)
    with pytest.raises(ValueError, match="domain"):
        K.feistel(np.array([1 << 20], dtype=np.int64), np.empty(1, np.int64), 100, p.half_bits, p.keys, False)
    with pytest.raises(ValueError, match="same length"):
        K.feistel(a, np.empty(9, np.int64), 100, p.half_bits, p.keys, False)
    with pytest.raises(TypeError, match="int64"):
        K.feistel(a.astype(np.int32), np.empty(10, np.int64), 100, p.half_bits, p.keys, False)
    with pytest.raises((TypeError, ValueError), match="contiguous"):
        K.feistel(a[::2], np.empty(5, np.int64), 100, p.half_bits, p.keys, False)
    with pytest.raises(ValueError, match="half_bits"):
        K.feistel(a, np.empty(10, np.int64), 100, 0, p.keys, False)
    ro = np.empty(10, np.int64)
    ro.setflags(write=False)
    with pytest.raises((TypeError, BufferError, ValueError)):
        K.feistel(a, ro, 100, p.half_bits, p.keys, False)
    with pytest.raises(TypeError, match="keys"):
        K.feistel(a, np.empty(10, np.int64), 100, p.half_bits, p.keys.astype(np.int64), False)
    with pytest.raises(ValueError, match="n must be"):
        K.feistel(a, np.empty(10, np.int64), 2**40, p.half_bits, p.keys, False)


@pytest.mark.parametrize("n", [1, 7, 64, 5000, 70_001])
def test_permutation_paths_agree(path, n):
    """FeistelPermutation's arrays equal the definition on either path (arrays longer than a tile too)."""
    p = FeistelPermutation(n, seed=3, epoch=4)
    pos = np.arange(n, dtype=np.int64)
    out = p(pos)
    sample = list(range(0, n, max(1, n // 97)))
    assert out[sample].tolist() == [feistel_ref(i, n, 3, 4) for i in sample]
    assert sorted(out.tolist()) == list(range(n))
    assert p.inverse(out).tolist() == pos.tolist()


# ------------------------------------------------------------------ lookup


def _layout(lengths, gaps):
    lengths = np.asarray(lengths, dtype=np.int64)
    stride = lengths + np.asarray(gaps, dtype=np.int64)
    ends = np.cumsum(stride) - np.asarray(gaps, dtype=np.int64)
    return EpisodeIndex(ends - lengths, ends)


def _valid_frames(index):
    return [f for s, e in zip(index.starts.tolist(), index.ends.tolist()) for f in range(s, e)]


LAYOUTS = {
    "regular": ([50] * 40, [1] * 40),
    "no gaps": ([37] * 20, [0] * 20),  # the shared-offset path
    "tiny episodes in one bucket": ([1000] + [1] * 30 + [0] * 5 + [1000], [3] * 37),  # bisection
    "empty episodes": ([0, 5, 0, 0, 9, 0], [2, 0, 1, 4, 0, 3]),
    "one frame": ([1], [0]),
}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_lookup_matches_materialized(path, name):
    index = _layout(*LAYOUTS[name])
    frames = _valid_frames(index)
    n = len(frames)
    pos = np.random.default_rng(0).integers(0, n, size=3 * n + 5000).astype(np.int64)
    assert index.frame_at(pos).tolist() == [frames[p] for p in pos.tolist()]
    cum = np.cumsum(index.lengths).tolist()
    expect_ep = [bisect.bisect_right(cum, p) for p in pos.tolist()]
    assert index._get_lookup().episode(pos).tolist() == expect_ep


@needs_kernel
def test_lookup_refuses_out_of_range():
    index = _layout([10, 10], [1, 1])
    lk = index._get_lookup()
    lookup, _ = lk.kernel_args()
    cum, table, shift, steps, ends = lookup
    out = np.empty(1, np.int64)
    for bad in (-1, 20):
        with pytest.raises(ValueError, match="outside"):
            K.lookup(np.array([bad], np.int64), out, lookup, False)
    with pytest.raises(ValueError, match="sentinel"):
        K.lookup(np.array([1], np.int64), out, (cum[:-1].copy(), table, shift, steps, ends), False)


# ------------------------------------------------------------------ fused strided frames (the sampler)


def _expected_rank_frames(index, seed, epoch, world, rank, n_per_rank, shuffle=True):
    frames = _valid_frames(index)
    n = len(frames)
    out = []
    for k in range(n_per_rank):
        g = (rank + k * world) % n
        u = feistel_ref(g, n, seed, epoch) if shuffle else g
        out.append(frames[u])
    return out


@pytest.mark.parametrize("name", sorted(LAYOUTS))
@pytest.mark.parametrize("world", [1, 3])
def test_sampler_frames_match_reference(path, name, world):
    index = _layout(*LAYOUTS[name])
    n = index.num_frames
    for rank in range(world):
        s = EpisodeAwareSampler(
            index.starts, index.ends, shuffle=True, seed=9, permutation="feistel", rank=rank, world_size=world
        )
        expect = _expected_rank_frames(index, 9, 2, world, rank, len(s))
        assert s.frame_indices(2).tolist() == expect
        s.set_epoch(2)
        assert list(s) == expect
        assert len(expect) == -(-n // world)


def test_unshuffled_frames_match_reference(path):
    index = _layout(*LAYOUTS["regular"])
    s = EpisodeAwareSampler(
        index.starts, index.ends, shuffle=False, permutation="feistel", world_size=2, rank=1
    )
    assert list(s) == _expected_rank_frames(index, 0, 0, 2, 1, len(s), shuffle=False)


def test_long_run_spans_tiles_and_wraps(path):
    """A strided run longer than a tile, wrapping past the epoch's end (world_size does not divide N)."""
    index = _layout([700] * 30, [2] * 30)
    n = index.num_frames
    s = EpisodeAwareSampler(
        index.starts, index.ends, shuffle=True, seed=1, permutation="feistel", world_size=7
    )
    got = s._sharded.frames(5, global_start=n - 3, start=0, stop=len(s))
    frames = _valid_frames(index)
    expect = [frames[feistel_ref((n - 3 + k * 7) % n, n, 1, 5)] for k in range(len(s))]
    assert got.tolist() == expect


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 40), min_size=1, max_size=25).filter(lambda x: sum(x) > 0),
    gap=st.integers(0, 3),
    world=st.integers(1, 5),
    seed=st.integers(0, 2**64 - 1),
    epoch=st.integers(0, 2**40),
    start=st.integers(0, 10**6),
)
def test_kernel_and_numpy_agree(lengths, gap, world, seed, epoch, start):
    """Any layout, sharding and resume offset: the kernel's run equals the numpy path's run."""
    index = _layout(lengths, [gap] * len(lengths))
    n = index.num_frames
    s = EpisodeAwareSampler(
        index.starts, index.ends, shuffle=True, seed=seed, permutation="feistel", world_size=world
    )
    got = s._sharded.frames(epoch, start % n, 0, 3 * n)
    saved = kernel_mod.K
    kernel_mod.K = None
    try:
        s2 = EpisodeAwareSampler(
            index.starts, index.ends, shuffle=True, seed=seed, permutation="feistel", world_size=world
        )
        ref = s2._sharded.frames(epoch, start % n, 0, 3 * n)
    finally:
        kernel_mod.K = saved
    assert got.tolist() == ref.tolist()


# ------------------------------------------------------------------ IntIter


@needs_kernel
def test_intiter_yields_python_ints_with_exact_length_hint():
    a = np.array([5, -1, 2**62, 0, 7], dtype=np.int64)
    it = K.IntIter(a)
    seen = []
    for i in range(a.size):
        assert operator.length_hint(it) == a.size - i
        v = next(it)
        assert type(v) is int
        seen.append(v)
    assert seen == a.tolist()
    assert operator.length_hint(it) == 0
    with pytest.raises(StopIteration):
        next(it)
    assert list(K.IntIter(np.empty(0, np.int64))) == []
    assert iter(it) is it


@needs_kernel
def test_intiter_refuses_other_dtypes_and_releases_its_buffer():
    with pytest.raises(TypeError, match="int64"):
        K.IntIter(np.arange(3, dtype=np.int32))
    with pytest.raises((TypeError, ValueError), match="contiguous"):
        K.IntIter(np.arange(6, dtype=np.int64)[::2])
    with pytest.raises(TypeError):
        K.IntIter([1, 2, 3])
    a = np.arange(3, dtype=np.int64)
    it = K.IntIter(a)
    with pytest.raises(ValueError):  # a buffer is exported while the iterator holds it
        a.resize(10)
    list(it)
    a.resize(10)  # exhausted: the buffer was released


# ------------------------------------------------------------------ episode and block orders (runs)


def _units(index, order, block_size):
    """The shuffled units of an order as lists of frames, in layout order (a materialized reference)."""
    units = []
    for s, e in zip(index.starts.tolist(), index.ends.tolist()):
        if e == s:
            continue
        if order == "episodes":
            units.append(list(range(s, e)))
        else:
            units += [list(range(b, min(e, b + block_size))) for b in range(s, e, block_size)]
    return units


@pytest.mark.parametrize(("order", "block_size"), [("episodes", None), ("blocks", 4), ("blocks", 7)])
@pytest.mark.parametrize("name", ["regular", "empty episodes", "tiny episodes in one bucket"])
def test_unit_orders_match_reference(path, order, block_size, name):
    index = _layout(*LAYOUTS[name])
    s = EpisodeAwareSampler(
        index.starts,
        index.ends,
        shuffle=True,
        seed=4,
        permutation="feistel",
        order=order,
        block_size=block_size,
    )
    units = _units(index, order, block_size)
    expect = [f for slot in range(len(units)) for f in units[feistel_ref(slot, len(units), 4, 6)]]
    assert s.frame_indices(6).tolist() == expect
    n = len(expect)
    assert s.frame_indices(6, n // 3, n - 5).tolist() == expect[n // 3 : n - 5]  # a range inside units


@needs_kernel
def test_runs_kernel():
    out = np.empty(6, np.int64)
    K.runs(out, np.array([10, -3, 7], np.int64), np.array([2, 0, 4], np.int64))
    assert out.tolist() == [10, 11, 7, 8, 9, 10]
    for lens in ([2, 0, 3], [2, 0, 5], [7, -1, 0]):
        with pytest.raises(ValueError, match="sum to len"):
            K.runs(out, np.array([1, 2, 3], np.int64), np.array(lens, np.int64))
    with pytest.raises(ValueError, match="same length"):
        K.runs(out, np.array([1], np.int64), np.array([6, 0], np.int64))


# ------------------------------------------------------------------ SeedSequence words


@needs_kernel
@settings(max_examples=300, deadline=None)
@given(
    entropy=st.lists(
        st.one_of(st.integers(0, 2**32 + 5), st.integers(2**64 - 5, 2**64 - 1), st.integers(0, 2**64 - 1)),
        min_size=1,
        max_size=9,
    ),
    n_words=st.integers(1, 12),
)
def test_seedseq_matches_numpy(entropy, n_words):
    expect = np.random.SeedSequence(entropy).generate_state(n_words, dtype=np.uint64)
    got = np.frombuffer(K.seedseq(tuple(entropy), n_words), dtype="<u8")
    assert got.tolist() == expect.tolist()


@needs_kernel
def test_seedseq_refuses_bad_entropy():
    for bad in ((-1,), (2**64,)):
        with pytest.raises(OverflowError):
            K.seedseq(bad, 4)
    with pytest.raises(TypeError):
        K.seedseq((1.5,), 4)
    with pytest.raises(ValueError):
        K.seedseq((), 4)
    with pytest.raises(ValueError):
        K.seedseq((1,), 0)


def test_keys_and_randperm_seed_match_numpy(path):
    from episode_sampler.core.permutation import randperm_seed

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


# ------------------------------------------------------------------ threads


@needs_kernel
@pytest.mark.parametrize("threads", [2, 3, 5, 16])
@pytest.mark.parametrize("size", [2**20, 2**20 + 1, 2**20 + 2047, 3 * 2**19 + 5])
def test_threaded_calls_equal_one_thread(threads, size):
    """Every element of a split call is computed, once: the parts cover [0, size) for any thread count."""
    n = size + 13
    p = FeistelPermutation(n, seed=8, epoch=2)
    pos = np.arange(size, dtype=np.int64)
    one = np.full(size, -1, np.int64)
    many = np.full(size, -1, np.int64)
    K.feistel(pos, one, n, p.half_bits, p.keys, False, 1)
    K.feistel(pos, many, n, p.half_bits, p.keys, False, threads)
    assert np.array_equal(one, many) and int(one.min()) >= 0
    index = _layout([997] * (size // 997 + 2), [1] * (size // 997 + 2))
    lookup, base = index._get_lookup().kernel_args()
    m = index.num_frames
    pf = FeistelPermutation(m, seed=8, epoch=2)
    a = np.full(size, -1, np.int64)
    b = np.full(size, -1, np.int64)
    K.frames(a, 5, 3, m, (m, pf.half_bits, pf.keys), lookup, base, 1)
    K.frames(b, 5, 3, m, (m, pf.half_bits, pf.keys), lookup, base, threads)
    assert np.array_equal(a, b) and int(a.min()) >= 0
    frames = _valid_frames(index)
    check = list(range(0, size, size // 50)) + [size - 1]
    assert a[check].tolist() == [frames[feistel_ref((5 + 3 * k) % m, m, 8, 2)] for k in check]


def test_threads_setting(monkeypatch):
    monkeypatch.delenv("EPISODE_SAMPLER_THREADS", raising=False)
    assert kernel_mod.threads_for(10**9) == 1  # one thread unless asked
    monkeypatch.setenv("EPISODE_SAMPLER_THREADS", "3")
    assert kernel_mod.threads_for(kernel_mod.PARALLEL_MIN) == 3
    assert kernel_mod.threads_for(kernel_mod.PARALLEL_MIN - 1) == 1
    monkeypatch.setenv("EPISODE_SAMPLER_THREADS", "99")
    assert kernel_mod.threads_for(kernel_mod.PARALLEL_MIN) == 16
    for bad in ("many", "0", "-2"):
        monkeypatch.setenv("EPISODE_SAMPLER_THREADS", bad)
        with pytest.raises(ValueError, match="EPISODE_SAMPLER_THREADS"):
            kernel_mod.threads_for(kernel_mod.PARALLEL_MIN)


def test_sampler_threaded_full_epoch(path, monkeypatch):
    """A whole epoch above the threading threshold, threaded, equals the reference at sampled points."""
    monkeypatch.setenv("EPISODE_SAMPLER_THREADS", "2")
    index = _layout([1500] * 700, [1] * 700)  # 1,050,000 frames
    s = EpisodeAwareSampler(index.starts, index.ends, shuffle=True, seed=3, permutation="feistel")
    got = s.frame_indices(1)
    frames = _valid_frames(index)
    n = len(frames)
    assert got.size == n and np.array_equal(np.sort(got), np.asarray(frames))
    check = list(range(0, n, 9973)) + [n - 2, n - 1]
    assert got[check].tolist() == [frames[feistel_ref(k, n, 3, 1)] for k in check]


def test_checked_constructor_equals_the_checked_one():
    for n, seed, epoch in ((1, 0, 0), (17, 2**64 - 1, 5), (10**12, 3, 2**62)):
        a = FeistelPermutation(n, seed, epoch)
        b = FeistelPermutation._checked(n, seed, epoch)
        assert (a.n, a.seed, a.epoch, a.half_bits, a.keys.tolist()) == (
            b.n,
            b.seed,
            b.epoch,
            b.half_bits,
            b.keys.tolist(),
        )
        pos = np.array([0, n // 2, n - 1], np.int64)
        assert a(pos).tolist() == b(pos).tolist() and [a.one(int(x)) for x in pos] == a(pos).tolist()


@pytest.mark.parametrize(
    ("starts", "ends", "base"),
    [
        ([5], [9], 5),
        ([0, 4, 4, 10], [4, 4, 10, 12], 0),  # contiguous, an empty episode inside
        ([3, 7], [7, 9], 3),
        ([0, 5], [4, 9], None),  # a gap of one frame
        ([0, 4, 4], [4, 4, 8], 0),
        ([0, 4, 5], [4, 4, 8], None),  # the gap sits after an empty episode
    ],
)
def test_lookup_shared_offset_only_without_gaps(starts, ends, base):
    index = EpisodeIndex(np.array(starts), np.array(ends))
    lk = index._get_lookup()
    assert lk._base == base
    frames = _valid_frames(index)
    assert index.frame_at(np.arange(len(frames))).tolist() == frames


def test_randperm_runs_match_lerobot_order(path):
    """permutation="randperm": the rank's run gathers LeRobot's torch.randperm order (fused in the kernel)."""
    import torch

    from episode_sampler.core.permutation import randperm_seed

    index = _layout(*LAYOUTS["regular"])
    frames = _valid_frames(index)
    n = len(frames)
    for world, rank in ((1, 0), (3, 2)):
        s = EpisodeAwareSampler(
            index.starts,
            index.ends,
            shuffle=True,
            seed=5,
            permutation="randperm",
            world_size=world,
            rank=rank,
        )
        order = torch.randperm(n, generator=torch.Generator().manual_seed(randperm_seed(5, 4))).tolist()
        expect = [frames[order[(rank + k * world) % n]] for k in range(len(s))]
        assert s.frame_indices(4).tolist() == expect


@needs_kernel
def test_frames_refuses_a_bad_permutation_array():
    index = _layout([10, 10], [1, 1])
    lookup, base = index._get_lookup().kernel_args()
    out = np.empty(20, np.int64)
    with pytest.raises(ValueError, match="wrap values"):
        K.frames(out, 0, 1, 20, np.arange(19, dtype=np.int64), lookup, base)
    bad = np.arange(20, dtype=np.int64)
    bad[7] = 20
    with pytest.raises(ValueError, match="outside"):
        K.frames(out, 0, 1, 20, bad, lookup, base)
    K.frames(out, 0, 1, 20, np.arange(20, dtype=np.int64)[::-1].copy(), lookup, base)
    assert out.tolist() == _valid_frames(index)[::-1]
