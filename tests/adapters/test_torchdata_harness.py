"""torchdata's own ``run_test_save_load_state``, unchanged, over the same graphs built on
IterableWrapper and on EpisodeSamplerNode: wherever torchdata's source passes, ours passes.

torchdata's protocol itself fails for IterableWrapper in a few places (a state saved at the epoch's
end under ``restart_on_stop_iteration=True``, where it expects ``[]`` but ``Loader`` restarts;
``Unbatcher(Batcher)`` one item before the end; ``Prefetcher(MultiNodeWeightedSampler)`` restored to
its initial state in the same object). Those are listed in docs/torchdata.md; ours fails exactly
there too, and nowhere else."""

from __future__ import annotations

import unittest

import pytest
from torchdata.nodes import (
    Batcher,
    IterableWrapper,
    Loader,
    Mapper,
    MultiNodeWeightedSampler,
    Prefetcher,
    StopCriteria,
    Unbatcher,
)

from episode_sampler.node import EpisodeSamplerNode
from tests.helpers.torchdata_harness import run_test_save_load_state


def src(native: bool, n: int = 10, offset: int = 0, **kw):
    if native:
        items = list(range(offset, offset + n))
        if kw.get("batch_size"):
            b = kw["batch_size"]
            items = [items[i : i + b] for i in range(0, n, b)]
            if kw.get("drop_last_batch"):
                items = [x for x in items if len(x) == b]
        return IterableWrapper(items)
    return EpisodeSamplerNode([offset], [offset + n], shuffle=True, seed=offset + 1, **kw)


def mix(native: bool, criteria: str):
    return MultiNodeWeightedSampler(
        {"a": src(native, 4), "b": src(native, 3, 100)}, {"a": 0.5, "b": 0.5}, criteria, rank=0, world_size=1
    )


CRITERIA = (
    StopCriteria.FIRST_DATASET_EXHAUSTED,
    StopCriteria.ALL_DATASETS_EXHAUSTED,
    StopCriteria.CYCLE_UNTIL_ALL_DATASETS_EXHAUSTED,
)
GRAPHS = {
    "node": lambda nat: src(nat),
    "node batched": lambda nat: src(nat, batch_size=3),
    "node drop_last_batch": lambda nat: src(nat, batch_size=3, drop_last_batch=True),
    "Batcher": lambda nat: Batcher(src(nat), 3),
    "Batcher drop_last": lambda nat: Batcher(src(nat), 3, drop_last=True),
    "Mapper": lambda nat: Mapper(src(nat), str),
    "Unbatcher(Batcher)": lambda nat: Unbatcher(Batcher(src(nat), 3)),
    "Prefetcher": lambda nat: Prefetcher(src(nat), 2),
    **{f"MNWS {c}": (lambda nat, c=c: mix(nat, c)) for c in CRITERIA},
    **{f"Prefetcher(MNWS {c})": (lambda nat, c=c: Prefetcher(mix(nat, c), 2)) for c in CRITERIA},
}


class _Case(unittest.TestCase):
    def runTest(self) -> None:  # pragma: no cover - a holder for assertEqual
        pass


def passes(graph, midpoint: int) -> bool:
    try:
        run_test_save_load_state(_Case(), graph, midpoint)
    except AssertionError:
        return False
    return True


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_torchdata_harness_unchanged_differential(name: str) -> None:
    n = len(list(Loader(GRAPHS[name](False))))
    assert n == len(list(Loader(GRAPHS[name](True))))
    native_fails, ours_fails = [], []
    for m in sorted({0, 1, 7, n // 2, n - 1, n} & set(range(n + 1))):
        if not passes(GRAPHS[name](True), m):
            native_fails.append(m)
        if not passes(GRAPHS[name](False), m):
            ours_fails.append(m)
    assert set(ours_fails) <= set(native_fails), (
        f"ours fails at {ours_fails}, IterableWrapper at {native_fails}"
    )
    # torchdata's protocol expects [] after restoring an end-of-epoch state with restart=True
    assert n in native_fails
