"""ShardedOrder (one rank's strided run through an epoch's order) against the brute-force reference:
rank ``r``'s ``k``-th sample is the epoch's frame at global position ``(global_start + r + k * W) mod N``."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from episode_sampler import EpisodeAwareSampler
from tests.helpers.layouts import gapped_index, valid_frames
from tests.helpers.reference import feistel_reference


def test_long_run_spans_tiles_and_wraps():
    """A strided run longer than a tile (4096 positions), wrapping past the epoch's end (world_size does
    not divide N)."""
    index = gapped_index([700] * 30, [2] * 30)
    n = index.num_frames
    s = EpisodeAwareSampler(
        index.starts, index.ends, shuffle=True, seed=1, permutation="feistel", world_size=7
    )
    got = s.sharded_order.frames(5, global_start=n - 3, start=0, stop=len(s))
    frames = valid_frames(index)
    expect = [frames[feistel_reference(n, 1, 5, (n - 3 + k * 7) % n)] for k in range(len(s))]
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
def test_runs_match_reference(lengths, gap, world, seed, epoch, start):
    """Any layout, sharding and resume offset, runs three epochs long: the reference's frames."""
    index = gapped_index(lengths, [gap] * len(lengths))
    n = index.num_frames
    s = EpisodeAwareSampler(
        index.starts, index.ends, shuffle=True, seed=seed, permutation="feistel", world_size=world
    )
    got = s.sharded_order.frames(epoch, start % n, 0, 3 * n)
    frames = valid_frames(index)
    perm = [feistel_reference(n, seed, epoch, p) for p in range(n)]
    expect = [frames[perm[(start % n + k * world) % n]] for k in range(3 * n)]
    assert got.tolist() == expect
