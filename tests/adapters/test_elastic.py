"""Elastic resume: a state saved on any one rank restores every rank of a run with another world size.

W old ranks move in lockstep (each yields k samples), one of them saves its state, W' new ranks load
it and run the epoch to its end (possibly saving again and resizing again). The expectations come
from the materialized reference order of ``tests/helpers/reference.py`` and brute-force loops over global
positions, never from the code under test:

* the old ranks, interleaved rank by rank, yielded the global prefix ``full[0 : k*W]``;
* the new ranks, interleaved, yield ``full[c' : ...]`` with ``c' = min(k*W, N)`` (the design's
  prefix property), all the same number of samples (DDP needs equal step counts);
* together they cover each valid frame of the epoch exactly once, except the wrap-around padding at
  the epoch's end (``drop_last=False``: fewer than W' frames from the epoch's start are repeated,
  W' the world that reached the end; ``drop_last=True``: fewer than W' frames at the epoch's end are
  never yielded, W' the world that finished the epoch: a world that finished it reports
  ``(epoch + 1, 0)``, so a bigger or smaller world after it starts the next epoch);
* after the resumed epoch the new ranks run the next epoch as a fresh W'-rank run would.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from episode_sampler import EpisodeAwareSampler
from tests.helpers.layouts import PERMUTATIONS, contiguous
from tests.helpers.reference import episodes_lists, reference_epoch, shard

LENGTHS = [7, 1, 12, 5, 9, 3, 14, 2, 6, 11]
FROM, TO = contiguous(LENGTHS)
SEED = 5
ORDERS = [("frames", None), ("episodes", None), ("blocks", 3), ("blocks", 1)]


# ---------------------------------------------------------------- two cursors over the same stream
class SamplerCursor:
    """One rank's EpisodeAwareSampler, driven like a training loop."""

    def __init__(self, frm, to, rank, world, epoch, state=None, **kw: Any) -> None:
        self.s = EpisodeAwareSampler(frm, to, shuffle=True, seed=SEED, rank=rank, world_size=world, **kw)
        if state is not None:
            self.s.load_state_dict(state)
        else:
            self.s.set_epoch(epoch)
        self.it = iter(self.s)

    def epoch(self) -> int:
        return self.s.state_dict()["epoch"]

    def take(self, k: int) -> list[int]:
        out = list(itertools.islice(self.it, k))
        assert len(out) == k
        return out

    def rest_of_epoch(self) -> list[int]:
        return list(self.it)

    def next_epoch(self) -> list[int]:
        return list(iter(self.s))

    def state(self) -> dict[str, Any]:
        return self.s.state_dict()


class NodeCursor(SamplerCursor):
    """One rank's EpisodeSamplerNode (reset(state) / next() / get_state())."""

    def __init__(self, frm, to, rank, world, epoch, state=None, **kw: Any) -> None:
        from episode_sampler.node import EpisodeSamplerNode

        self.n = EpisodeSamplerNode(frm, to, shuffle=True, seed=SEED, rank=rank, world_size=world, **kw)
        self.peeked: list[int] = []
        if state is not None:
            # as Loader(restart_on_stop_iteration=True) does: restore, peek, and start the next
            # epoch when the restored pass is over (a state saved after an epoch's last sample)
            self.n.reset(state)
            self.peeked_state = self.n.get_state()
            try:
                self.peeked.append(next(self.n))
            except StopIteration:
                self.n.reset(None)
        else:
            self.n.set_epoch(epoch)
            self.n.reset()

    def epoch(self) -> int:
        return self.state()["epoch"]

    def take(self, k: int) -> list[int]:
        out, self.peeked = self.peeked[:k], self.peeked[k:]
        return out + [next(self.n) for _ in range(k - len(out))]

    def rest_of_epoch(self) -> list[int]:
        out, self.peeked = self.peeked, []
        return out + list(self.n)

    def next_epoch(self) -> list[int]:
        self.n.reset()
        return list(self.n)

    def state(self) -> dict[str, Any]:
        return self.peeked_state if self.peeked else self.n.get_state()


CURSORS = {"sampler": SamplerCursor, "node": NodeCursor}


# ---------------------------------------------------------------- the scenario and its checks
def per_rank(n: int, start: int, world: int, drop_last: bool) -> int:
    """Samples each rank yields from global position ``start`` (brute force over positions)."""
    positions = list(range(start, n))
    if drop_last:
        return len(positions) // world
    return len(positions[::world]) if positions else 0


def interleave(streams: list[list[int]]) -> list[int]:
    """Rank streams in global-position order: step 0 of ranks 0..W-1, then step 1, ..."""
    assert len({len(s) for s in streams}) <= 1, "ranks out of lockstep"
    return [x for step in zip(*streams) for x in step]


def run_resizes(
    cursor: type[SamplerCursor],
    frm: list[int],
    to: list[int],
    phases: list[tuple[int, float]],
    *,
    order: str,
    block_size: int | None,
    permutation: str,
    drop_last: bool,
    epoch: int = 0,
    saver: int = -1,
) -> None:
    """Phases ``(world_size, fraction)``: each phase's ranks take ``fraction`` of what they have left
    (the last phase runs to the epoch's end), then rank ``saver % W`` saves and the next phase loads."""
    eps = episodes_lists(frm, to)
    full = reference_epoch(eps, order, block_size, permutation, SEED, epoch)
    following = reference_epoch(eps, order, block_size, permutation, SEED, epoch + 1)
    n = len(full)
    kw = dict(order=order, block_size=block_size, permutation=permutation, drop_last=drop_last)
    consumed: list[int] = []  # every sample of this epoch, all phases, all ranks
    start = 0  # global position the current world starts at (the brute-force c)
    state = None
    ender = 0  # world size of the phase that ended the epoch
    for i, (world, fraction) in enumerate(phases):
        last = i == len(phases) - 1
        ranks = [cursor(frm, to, r, world, epoch, state, **kw) for r in range(world)]
        remaining = 0 if ender else per_rank(n, start, world, drop_last)
        if remaining == 0:  # the epoch is over (for this world): it starts the next one
            ender = ender or world
            assert all(c.epoch() == epoch + 1 for c in ranks)
            streams: list[list[int]] = [[] for _ in ranks]
        else:
            assert all(c.epoch() == epoch for c in ranks)
            k = remaining if last else int(fraction * remaining)
            if k == remaining:  # a finished epoch is reported as (epoch + 1, 0): it stays finished
                ender = world
            streams = [c.rest_of_epoch() if last else c.take(k) for c in ranks]
            assert {len(s) for s in streams} == {k}
        got = interleave(streams)
        assert got == [full[g % n] for g in range(start, start + len(got))], f"phase {i}: not the prefix"
        consumed += got
        start = min(start + len(got), n)
        if not last:
            states = [json.loads(json.dumps(c.state())) for c in ranks]
            # any rank's state restores the same position: the states differ in 'rank' only
            assert all({**s, "rank": 0} == {**states[0], "rank": 0} for s in states)
            state = states[saver % world]
    final_world = phases[-1][0]
    counts = Counter(consumed)
    want = Counter(full)
    if drop_last:
        assert max(counts.values()) == 1, "a frame repeated with drop_last=True"
        missing = want - counts
        assert missing == Counter(full[n - missing.total() :]), "dropped frames are not the epoch's tail"
        assert missing.total() < ender
    else:
        assert not want - counts, "a frame of the epoch was never yielded"
        extra = counts - want
        wrapped = Counter(full[g % n] for g in range(n, n + extra.total()))  # positions past the end
        assert extra == wrapped, "repeats are not the wrap-around to the epoch's start"
        assert extra.total() < ender
    # the next epoch: what a fresh W'-rank run yields
    for r, c in enumerate(ranks):
        nxt = c.rest_of_epoch() if remaining == 0 else c.next_epoch()
        assert nxt == shard(following, r, final_world, drop_last), f"next epoch, rank {r}"


# ---------------------------------------------------------------- the grid
WORLD_PAIRS = [(1, 2), (2, 1), (3, 2), (2, 3), (4, 7), (7, 4), (3, 3), (5, 1), (1, 6)]
FRACTIONS = [0.0, 0.1, 0.5, 0.9, 1.0]


@pytest.mark.slow
@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("permutation", PERMUTATIONS)
@pytest.mark.parametrize(("order", "block_size"), ORDERS)
@pytest.mark.parametrize("cursor", ["sampler", "node"])
def test_one_resize_grid(cursor, order, block_size, permutation, drop_last) -> None:
    for (w_old, w_new), fraction in itertools.product(WORLD_PAIRS, FRACTIONS):
        run_resizes(
            CURSORS[cursor],
            FROM,
            TO,
            [(w_old, fraction), (w_new, 1.0)],
            order=order,
            block_size=block_size,
            permutation=permutation,
            drop_last=drop_last,
            saver=int(fraction * 10),
        )


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("permutation", PERMUTATIONS)
@pytest.mark.parametrize(("order", "block_size"), ORDERS[:3])
@pytest.mark.parametrize("cursor", ["sampler", "node"])
def test_chained_resizes_3_2_5(cursor, order, block_size, permutation, drop_last) -> None:
    for f1, f2 in [(0.3, 0.4), (0.0, 0.5), (0.5, 0.0), (0.9, 0.9), (1.0, 0.0), (0.2, 1.0)]:
        run_resizes(
            CURSORS[cursor],
            FROM,
            TO,
            [(3, f1), (2, f2), (5, 1.0)],
            order=order,
            block_size=block_size,
            permutation=permutation,
            drop_last=drop_last,
            epoch=2,
        )


def test_a_state_from_every_old_rank_resumes_the_same_stream() -> None:
    kw = dict(order="blocks", block_size=2, permutation="feistel", drop_last=False)
    old = [SamplerCursor(FROM, TO, r, 3, 1, **kw) for r in range(3)]
    for c in old:
        c.take(7)
    streams = []
    for c in old:
        state = c.state()
        new = [SamplerCursor(FROM, TO, r, 4, 0, state, **kw) for r in range(4)]
        streams.append([x.rest_of_epoch() for x in new])
    assert streams[0] == streams[1] == streams[2]


def test_bare_lerobot_state_is_same_world() -> None:
    """A bare {epoch, start_index} carries no world size: it resumes the same world at start_index."""
    full = reference_epoch(episodes_lists(FROM, TO), "frames", None, "randperm", SEED, 3)
    for world in (1, 3):
        for r in range(world):
            c = SamplerCursor(FROM, TO, r, world, 0, {"epoch": 3, "start_index": 4}, order="frames")
            assert c.rest_of_epoch() == shard(full, r, world, False)[4:]


# ---------------------------------------------------------------- hypothesis
@settings(max_examples=120, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 9), min_size=1, max_size=9),
    order=st.sampled_from(["frames", "episodes", "blocks"]),
    block_size=st.integers(1, 4),
    permutation=st.sampled_from(PERMUTATIONS),
    drop_last=st.booleans(),
    phases=st.lists(st.tuples(st.integers(1, 6), st.floats(0, 1)), min_size=2, max_size=4),
    epoch=st.integers(0, 3),
    saver=st.integers(0, 5),
    cursor=st.sampled_from(["sampler", "node"]),
)
@example(  # more new ranks than frames: the padding wraps around the epoch more than once
    lengths=[1], order="frames", block_size=1, permutation="randperm", drop_last=False,
    phases=[(1, 0.0), (3, 0.0)], epoch=0, saver=0, cursor="sampler",
)  # fmt: skip
def test_resizes_hypothesis(lengths, order, block_size, permutation, drop_last, phases, epoch, saver, cursor):
    n = sum(lengths)
    assume(n >= 1)
    if drop_last:
        assume(n >= max(w for w, _ in phases))
    frm, to = contiguous(lengths)
    run_resizes(
        CURSORS[cursor],
        frm,
        to,
        phases,
        order=order,
        block_size=block_size if order == "blocks" else None,
        permutation=permutation,
        drop_last=drop_last,
        epoch=epoch,
        saver=saver,
    )
