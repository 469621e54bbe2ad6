import bisect
import hashlib
import logging

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from episode_sampler import EpisodeIndex
from tests.helpers.layouts import GAPPED_LAYOUTS, gapped_index, valid_frames


def materialize(starts, ends):
    return [f for a, b in zip(starts, ends) for f in range(a, b)]


def test_from_bounds_frame_at_matches_materialized_list():
    starts, ends = [0, 10, 25, 40], [10, 20, 40, 41]
    ei = EpisodeIndex.from_bounds(starts, ends)
    frames = materialize(starts, ends)
    assert ei.num_frames == len(frames) == 36
    assert ei.num_episodes == 4
    assert ei.frame_at(np.arange(ei.num_frames)).tolist() == frames
    assert ei.frame_at(5) == 5 and isinstance(ei.frame_at(5), np.integer)
    grid = np.array([[0, 10], [20, 35]])
    assert ei.frame_at(grid).tolist() == [[0, 10], [25, 40]]
    assert ei.episode_of(np.array([[0], [40]])).tolist() == [[0], [3]]
    assert ei.position_of(25) == 20
    assert ei.episode_of([0, 9, 10, 19, 25, 39, 40]).tolist() == [0, 0, 1, 1, 2, 2, 3]
    assert ei.position_of(frames).tolist() == list(range(len(frames)))


def test_stores_only_boundaries():
    ei = EpisodeIndex.from_lengths([10**9] * 3)
    assert ei.num_frames == 3 * 10**9
    assert ei.starts.nbytes + ei.ends.nbytes == 48
    assert ei.frame_at([0, 10**9, 3 * 10**9 - 1]).tolist() == [0, 10**9, 3 * 10**9 - 1]


def test_immutable():
    ei = EpisodeIndex.from_lengths([3, 4])
    with pytest.raises(ValueError):
        ei.starts[0] = 5
    with pytest.raises(AttributeError):
        ei.foo = 1


def test_from_lengths_and_offset():
    ei = EpisodeIndex.from_lengths([3, 0, 2], offset=7)
    assert ei.starts.tolist() == [7, 10, 10]
    assert ei.ends.tolist() == [10, 10, 12]
    assert ei.frame_at(np.arange(5)).tolist() == [7, 8, 9, 10, 11]


def test_from_episode_column():
    col = [4, 4, 4, 7, 7, 2, 2, 2, 2]
    ei = EpisodeIndex.from_episode_column(col)
    assert ei.starts.tolist() == [0, 3, 5]
    assert ei.ends.tolist() == [3, 5, 9]
    assert ei.episode_ids.tolist() == [4, 7, 2]
    assert ei.episode_of(np.arange(9)).tolist() == [0, 0, 0, 1, 1, 2, 2, 2, 2]
    with pytest.raises(ValueError, match="episode 4 appears in separate runs"):
        EpisodeIndex.from_episode_column([4, 4, 7, 4])


def test_accepts_numpy_and_torch():
    a = EpisodeIndex.from_bounds(np.array([0, 5], dtype=np.int32), torch.tensor([5, 9]))
    b = EpisodeIndex.from_bounds([0, 5], [5, 9])
    assert a == b and a.fingerprint == b.fingerprint


@pytest.mark.parametrize(
    "starts, ends, exc, match",
    [
        ([0, 5], [5], ValueError, "must have the same length"),
        ([0, 6], [5, 4], ValueError, "episode 1 has from_index 6 > to_index 4"),
        ([-1, 5], [5, 9], ValueError, "must be >= 0"),
        ([0, 10, 5], [5, 12, 8], ValueError, "sorted.*episode 2"),
        ([0, 4, 10], [5, 8, 12], ValueError, "overlap.*episode 1"),
        ([0.0, 5.0], [5.0, 9.0], TypeError, "ints"),
        ([True, False], [1, 2], TypeError, "bools"),
        ("abc", [1], TypeError, "sequence of ints"),
        (5, [1], TypeError, "sequence of ints"),
        ([[0, 1]], [[1, 2]], ValueError, "1-d"),
    ],
)
def test_bad_bounds(starts, ends, exc, match):
    with pytest.raises(exc, match=match):
        EpisodeIndex.from_bounds(starts, ends)


def test_bad_lengths():
    with pytest.raises(ValueError, match="episode 1 has length -2"):
        EpisodeIndex.from_lengths([3, -2])
    with pytest.raises(TypeError):
        EpisodeIndex.from_lengths([1.5])


def test_select_matches_lerobot_loop(caplog):
    starts, ends = [0, 10, 12, 30], [10, 12, 30, 40]
    with caplog.at_level(logging.WARNING):
        ei = EpisodeIndex.from_bounds(starts, ends).select([0, 1, 3], drop_first=1, drop_last=2)
    assert ei.starts.tolist() == [1, 31]
    assert ei.ends.tolist() == [8, 38]
    assert ei.episode_ids.tolist() == [0, 3]
    assert "Episode 1 has 2 frames" in caplog.text
    expected = [f for e in (0, 3) for f in range(starts[e] + 1, ends[e] - 2)]
    assert ei.frame_at(np.arange(ei.num_frames)).tolist() == expected


def test_select_errors():
    ei = EpisodeIndex.from_lengths([3, 4])
    with pytest.raises(ValueError, match="drop_n_first_frames must be >= 0"):
        ei.select(drop_first=-1)
    with pytest.raises(ValueError, match="drop_n_last_frames must be >= 0"):
        ei.select(drop_last=-1)
    with pytest.raises(ValueError, match="episode 5"):
        ei.select([0, 5])


def test_frame_at_and_episode_of_errors():
    ei = EpisodeIndex.from_bounds([0, 10], [5, 12])
    with pytest.raises(ValueError, match=r"positions must be in \[0, 7\), got 7"):
        ei.frame_at([7])
    with pytest.raises(ValueError, match="frame 6 belongs to no episode"):
        ei.episode_of([6])
    with pytest.raises(TypeError):
        ei.frame_at([0.5])


def test_fingerprint_is_stable_and_content_based():
    ei = EpisodeIndex.from_bounds([0, 10], [5, 12])
    # Pinned value: the digest must never change across versions and platforms.
    import hashlib

    h = hashlib.blake2b(b"episode-sampler/layout/v1\0", digest_size=16)
    h.update(np.array([0, 10], dtype="<i8").tobytes())
    h.update(np.array([5, 12], dtype="<i8").tobytes())
    assert ei.fingerprint == h.hexdigest()
    # Empty episodes do not change the valid ranges, a shifted frame does.
    assert EpisodeIndex.from_bounds([0, 5, 10], [5, 5, 12]).fingerprint == ei.fingerprint
    assert EpisodeIndex.from_bounds([0, 10], [5, 13]).fingerprint != ei.fingerprint
    assert EpisodeIndex.from_bounds([0, 5], [5, 12]).fingerprint != ei.fingerprint


def test_pickle_roundtrip():
    import pickle

    ei = EpisodeIndex.from_episode_column([3, 3, 1, 1, 1])
    assert pickle.loads(pickle.dumps(ei)) == ei


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 40), min_size=1, max_size=30),
    st.lists(st.integers(0, 5), min_size=30, max_size=30),
)
def test_frame_at_property(lengths, gaps):
    starts, ends, cur = [], [], 0
    for length, gap in zip(lengths, gaps):
        cur += gap
        starts.append(cur)
        cur += length
        ends.append(cur)
    ei = EpisodeIndex.from_bounds(starts, ends)
    frames = materialize(starts, ends)
    assert ei.num_frames == len(frames)
    if frames:
        assert ei.frame_at(np.arange(len(frames))).tolist() == frames
        brute = [next(i for i, (a, b) in enumerate(zip(starts, ends)) if a <= f < b) for f in frames]
        assert ei.episode_of(frames).tolist() == brute


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 5000), min_size=1, max_size=200), st.integers(0, 2**32))
def test_lookup_skewed_lengths(lengths, seed):
    # Very uneven lengths exercise the bucket table's fallback path.
    ei = EpisodeIndex.from_lengths(lengths)
    rng = np.random.default_rng(seed)
    pos = rng.integers(0, ei.num_frames, size=500)
    cum = np.cumsum(lengths)
    expected_ep = np.searchsorted(cum, pos, side="right")
    assert ei.frame_at(pos).tolist() == pos.tolist()  # contiguous from 0
    assert ei.episode_of(pos).tolist() == expected_ep.tolist()


def test_frame_indices_capped_far_from_int64_overflow():
    with pytest.raises(ValueError, match=r"to_indices must be <= 2\*\*62"):
        EpisodeIndex.from_bounds([0], [2**63 - 1])
    assert EpisodeIndex.from_bounds([0], [2**62]).num_frames == 2**62


# ------------------------------------------------ construction fast paths (#12)
def _reference_bounds_error(starts, ends):
    """The first broken rule, in the documented order, as the message fragment it must raise (None: valid)."""
    for i, s in enumerate(starts):
        if s < 0:
            return f"from_indices must be >= 0, episode {i} starts at {s}"
    for i, e in enumerate(ends):
        if e > 2**62:
            return f"to_indices must be <= 2**62, episode {i} ends at {e}"
    for i, (s, e) in enumerate(zip(starts, ends)):
        if s > e:
            return f"episode {i} has from_index {s} > to_index {e}"
    for i in range(1, len(starts)):
        if starts[i] < starts[i - 1]:
            return f"episodes must be sorted by start: episode {i} starts at {starts[i]}"
    for i in range(1, len(starts)):
        if starts[i] < ends[i - 1]:
            return f"episodes must not overlap: episode {i} starts at {starts[i]}"
    return None


_I64 = st.integers(-(2**63), 2**63 - 1)
_EXTREME = st.sampled_from([-(2**63), -(2**62), -1, 0, 2**62, 2**62 + 1, 2**63 - 1])


@st.composite
def _bounds(draw):
    """A valid chain of episodes, then up to three entries replaced by anything an int64 holds."""
    n = draw(st.integers(0, 12))
    starts, ends, cur = [], [], draw(st.sampled_from([0, 5, 2**62 - 100]))
    for _ in range(n):
        cur += draw(st.integers(0, 3))
        starts.append(cur)
        cur += draw(st.integers(0, 4))
        ends.append(cur)
    for _ in range(draw(st.integers(0, 3)) if n else 0):
        which = draw(st.sampled_from([starts, ends]))
        which[draw(st.integers(0, n - 1))] = draw(st.one_of(_I64, _EXTREME))
    return starts, ends


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(_bounds(), st.sampled_from([1, 2, 3, 1 << 16]))
def test_bounds_validation_matches_the_documented_rules(bounds, block):
    # Values whose differences overflow int64 included: the check compares, it never subtracts first.
    # Small blocks: the block-by-block validation of large layouts, on layouts hypothesis can shrink.
    from unittest import mock

    from episode_sampler.core import layout as episodes

    starts, ends = bounds
    want = _reference_bounds_error(starts, ends)
    for make in (list, lambda v: np.array(v, dtype=np.int64)):
        with mock.patch.object(episodes, "_CHECK_BLOCK", block):
            _check_against_reference(make(starts), make(ends), starts, ends, want)


def _check_against_reference(starts_in, ends_in, starts, ends, want):
    if want is not None:
        with pytest.raises(ValueError) as err:
            EpisodeIndex.from_bounds(starts_in, ends_in)
        assert str(err.value).startswith(want)
        return
    ei = EpisodeIndex.from_bounds(starts_in, ends_in)
    assert ei.num_frames == sum(e - s for s, e in zip(starts, ends))
    h = hashlib.blake2b(b"episode-sampler/layout/v1\0", digest_size=16)
    kept = [(s, e) for s, e in zip(starts, ends) if e > s]
    h.update(np.array([s for s, _ in kept], dtype="<i8").tobytes())
    h.update(np.array([e for _, e in kept], dtype="<i8").tobytes())
    assert ei.fingerprint == h.hexdigest()


def test_bounds_whose_differences_overflow_int64_are_refused():
    with pytest.raises(ValueError, match=r"episode 0 has from_index 10 > to_index -9223372036854775803"):
        EpisodeIndex.from_bounds([10], [-(2**63) + 5])  # ends - starts wraps to a positive length
    # as int64, every length and gap is >= 0 (one wraps around) and both ends of the chain are in range
    starts = [0, 2**63 - 1, -(2**63) + 2**61 + 10]
    ends = [2**62, -(2**63) + 2**61, 2**61]
    lengths = np.array(ends, dtype=np.int64) - np.array(starts, dtype=np.int64)
    gaps = np.array(starts[1:], dtype=np.int64) - np.array(ends[:-1], dtype=np.int64)
    assert (lengths >= 0).all() and (gaps >= 0).all()
    with pytest.raises(ValueError, match="from_indices must be >= 0, episode 2 starts at"):
        EpisodeIndex.from_bounds(starts, ends)


def test_int64_arrays_are_copied_and_any_int64_layout_is_read():
    starts, ends = np.array([0, 5, 9], dtype=np.int64), np.array([5, 9, 12], dtype=np.int64)
    ei = EpisodeIndex.from_bounds(starts, ends)
    starts[0] = 3  # the caller's array stays the caller's: writable, and not shared
    assert starts.flags.writeable and ei.starts.tolist() == [0, 5, 9]
    assert not ei.starts.flags.writeable and not ei.ends.flags.writeable
    strided = np.array([0, -1, 5, -1, 9, -1], dtype=np.int64)[::2]
    assert EpisodeIndex.from_bounds(strided, ends) == ei
    big_endian = EpisodeIndex.from_bounds(np.array([0, 5, 9], dtype=">i8"), np.array([5, 9, 12], dtype=">i8"))
    assert big_endian == ei and big_endian.fingerprint == ei.fingerprint
    with pytest.raises(ValueError, match="1-d"):
        EpisodeIndex.from_bounds(np.zeros((2, 2), dtype=np.int64), np.ones((2, 2), dtype=np.int64))


def test_select_of_a_layout_with_an_empty_episode_removes_it():
    full = EpisodeIndex.from_bounds([0, 5, 5], [5, 5, 9])
    kept = full.select()
    assert kept is not full and kept.starts.tolist() == [0, 5] and kept.episode_ids.tolist() == [0, 2]
    assert kept.select() is kept  # nothing left to remove: the same immutable index
    assert kept.fingerprint == full.fingerprint


def test_fingerprints_written_by_0_1_0_are_unchanged():
    # Digests computed by episode-sampler 0.1.0 (commit 781c4ca^): states it saved carry them.
    i = np.arange(70_000)
    with_empty = EpisodeIndex.from_lengths((i * 7919) % 5, offset=3)  # > 2**16 episodes, some empty
    assert with_empty.fingerprint == "7daf77e23d26f2c3d4d2ab6350a2e626"
    assert with_empty.num_frames == 140_000 == int(((i * 7919) % 5).sum())
    no_empty = EpisodeIndex.from_lengths(1 + i % 5, offset=3)
    assert no_empty.fingerprint == "a30febe9724a1d5af098f2445f6cbced" and no_empty.num_frames == 210_000
    gaps = EpisodeIndex.from_bounds([0, 7, 30, 30, 41], [5, 19, 30, 38, 50])
    assert gaps.fingerprint == "aa09b73de8849f98b55396629c33e1ce"


# ------------------------------------------------ the position lookup against a materialized list
# (formerly run against the compiled kernel and the numpy fallback; numpy is the only path now)
@pytest.mark.parametrize("name", sorted(GAPPED_LAYOUTS))
def test_lookup_matches_materialized(name):
    index = gapped_index(*GAPPED_LAYOUTS[name])
    frames = valid_frames(index)
    n = len(frames)
    pos = np.random.default_rng(0).integers(0, n, size=3 * n + 5000).astype(np.int64)
    assert index.frame_at(pos).tolist() == [frames[p] for p in pos.tolist()]
    cum = np.cumsum(index.lengths).tolist()
    expect_ep = [bisect.bisect_right(cum, p) for p in pos.tolist()]
    assert index.lookup.episode(pos).tolist() == expect_ep


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
    assert index.lookup._base == base
    frames = valid_frames(index)
    assert index.frame_at(np.arange(len(frames))).tolist() == frames
