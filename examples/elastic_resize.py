#!/usr/bin/env python
"""Elastic resume: 3 ranks train part of an epoch, checkpoint, and 2 ranks finish it -- exactly.

    python examples/elastic_resize.py

Ranks are simulated in one process (as under DDP they move in lockstep: one batch each per step).
Rank ``r`` of ``W`` takes the global positions ``r, r + W, r + 2W, ...`` of the epoch's order, so after
``k`` steps of batch ``B`` the 3 ranks together consumed the global prefix ``[0, 3kB)``. Any single
rank's state says so; a run of 2 ranks loads it and starts at global position ``3kB``.
"""

from __future__ import annotations

import collections
import tempfile
from pathlib import Path

import numpy as np
from torchdata.nodes import Loader

from episode_sampler import EpisodeAwareSampler, EpisodeIndex, load_state, save_state
from episode_sampler.node import EpisodeSamplerNode

rng = np.random.default_rng(2)
EPISODES = EpisodeIndex.from_lengths(rng.integers(20, 80, size=40))  # ~2000 frames in 40 episodes
BATCH, STEPS_BEFORE = 8, 30
SETTINGS = dict(drop_n_first_frames=2, shuffle=True, seed=1234, permutation="feistel")


def rank_loader(rank: int, world_size: int) -> Loader:
    node = EpisodeSamplerNode(
        EPISODES.starts, EPISODES.ends, rank=rank, world_size=world_size, batch_size=BATCH, **SETTINGS
    )
    return Loader(node)


def main() -> None:
    # The epoch's global order (one rank of one), computed independently of the sharded runs.
    order = EpisodeAwareSampler(EPISODES.starts, EPISODES.ends, **SETTINGS).frame_indices(0).tolist()
    n = len(order)

    # 3 ranks, STEPS_BEFORE lockstep steps.
    old = [rank_loader(r, 3) for r in range(3)]
    iterators = [iter(loader) for loader in old]
    consumed: list[int] = []
    for _ in range(STEPS_BEFORE):
        for it in iterators:
            consumed += next(it)
    prefix = 3 * STEPS_BEFORE * BATCH
    assert sorted(consumed) == sorted(order[:prefix]), "3 ranks consumed the global prefix of the order"

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rank2.json"
        save_state(path, old[2].state_dict())  # what a checkpoint on rank 2 would hold
        state = load_state(path)  # any rank's state restores every rank of the new world
    node_state = state["root"]  # a Loader's state wraps its root node's: here the sampler node
    print(
        f"3 ranks: {STEPS_BEFORE} steps x {BATCH} x 3 = {prefix} of {n} frames consumed; "
        f"saved rank 2's state (epoch {node_state['epoch']}, start_index {node_state['start_index']}, "
        f"world_size {node_state['world_size']})"
    )

    # 2 ranks resume from it and finish the epoch.
    new = [rank_loader(r, 2) for r in range(2)]
    rest_by_rank = []
    for loader in new:
        loader.load_state_dict(state)
        rest_by_rank.append([i for batch in loader for i in batch])
    for r, rest in enumerate(rest_by_rank):  # rank r' of 2 takes global positions prefix + r' + 2k
        expected = [order[(prefix + r + 2 * k) % n] for k in range(-(-(n - prefix) // 2))]
        assert rest == expected, f"new rank {r} does not continue the global order"
    counts = collections.Counter(consumed + [i for rest in rest_by_rank for i in rest])
    repeated = sum(c - 1 for c in counts.values())
    assert set(counts) == set(order) and repeated == (-(n - prefix)) % 2, "every frame once (+ padding)"
    print(
        f"2 ranks: {len(rest_by_rank[0])} + {len(rest_by_rank[1])} samples finish the epoch; "
        f"{repeated} sample(s) repeated as end-of-epoch padding so both ranks take equal steps"
    )
    print(f"elastic_resize OK: exact coverage of all {n} frames, no gaps, no duplicates beyond padding")


if __name__ == "__main__":
    main()
