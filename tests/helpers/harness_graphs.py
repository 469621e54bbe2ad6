"""Graphs for the save/load harness: each built over torchdata's IterableWrapper (``native``) or over
EpisodeSamplerNode (``ours``), same shape and same sizes."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from torchdata.nodes import (
    BaseNode,
    Batcher,
    IterableWrapper,
    Mapper,
    MultiNodeWeightedSampler,
    ParallelMapper,
    Prefetcher,
    StopCriteria,
    Unbatcher,
)

from episode_sampler.node import EpisodeSamplerNode

N = 10
LAYOUT = ([0, 3, 4], [3, 4, 10])  # 10 frames in 3 episodes


def plus_1000(x: Any) -> Any:
    """A top-level (picklable) map function for process workers."""
    return [v + 1000 for v in x] if isinstance(x, list) else x + 1000


def source(native: bool, n: int = N, offset: int = 0, seed: int = 7, **kw: Any) -> BaseNode:
    """``n`` items: ``range(offset, offset + n)`` natively, a shuffled node over n frames otherwise."""
    if native:
        items = list(range(offset, offset + n))
        if kw.get("batch_size"):
            b = kw["batch_size"]
            items = [items[i : i + b] for i in range(0, n, b)]
            if kw.get("drop_last_batch"):
                items = [x for x in items if len(x) == b]
        if kw.get("emit_seed"):
            items = [(x, [v * 7 for v in x]) if isinstance(x, list) else (x, x * 7) for x in items]
        return IterableWrapper(items)
    frm, to = (
        ([offset], [offset + n])
        if n != N
        else ([a + offset for a in LAYOUT[0]], [b + offset for b in LAYOUT[1]])
    )
    return EpisodeSamplerNode(frm, to, shuffle=True, seed=seed, **kw)


def mixture(native: bool, criteria: str, sizes: tuple[int, ...] = (4, 3)) -> BaseNode:
    names = "abc"[: len(sizes)]
    nodes = {k: source(native, n, offset=100 * i, seed=i) for i, (k, n) in enumerate(zip(names, sizes))}
    weights = {k: 1.0 / len(sizes) for k in names}
    return MultiNodeWeightedSampler(nodes, weights, criteria, rank=0, world_size=1, seed=0)


def _pm(native: bool, method: str) -> BaseNode:
    return ParallelMapper(source(native), plus_1000, num_workers=2, method=method, in_order=True)


GRAPHS: dict[str, Callable[[bool], BaseNode]] = {
    "node": lambda nat: source(nat),
    "node batched": lambda nat: source(nat, batch_size=3),
    "node batched drop_last_batch": lambda nat: source(nat, batch_size=3, drop_last_batch=True),
    "node emit_seed": lambda nat: source(nat, emit_seed=True),
    "Batcher": lambda nat: Batcher(source(nat), 3, drop_last=False),
    "Batcher drop_last": lambda nat: Batcher(source(nat), 3, drop_last=True),
    "Mapper": lambda nat: Mapper(source(nat), plus_1000),
    "Unbatcher(Batcher)": lambda nat: Unbatcher(Batcher(source(nat), 3, drop_last=False)),
    "Prefetcher": lambda nat: Prefetcher(source(nat), 2),
    "ParallelMapper thread": lambda nat: _pm(nat, "thread"),
    "ParallelMapper process": lambda nat: _pm(nat, "process"),
    "MNWS first": lambda nat: mixture(nat, StopCriteria.FIRST_DATASET_EXHAUSTED),
    "MNWS all": lambda nat: mixture(nat, StopCriteria.ALL_DATASETS_EXHAUSTED),
    "MNWS cycle": lambda nat: mixture(nat, StopCriteria.CYCLE_UNTIL_ALL_DATASETS_EXHAUSTED),
    "MNWS3 first": lambda nat: mixture(nat, StopCriteria.FIRST_DATASET_EXHAUSTED, (4, 3, 5)),
    "MNWS3 all": lambda nat: mixture(nat, StopCriteria.ALL_DATASETS_EXHAUSTED, (4, 3, 5)),
    "MNWS3 cycle": lambda nat: mixture(nat, StopCriteria.CYCLE_UNTIL_ALL_DATASETS_EXHAUSTED, (4, 3, 5)),
    "Prefetcher(MNWS all)": lambda nat: Prefetcher(mixture(nat, StopCriteria.ALL_DATASETS_EXHAUSTED), 2),
    "Prefetcher(MNWS cycle)": lambda nat: Prefetcher(
        mixture(nat, StopCriteria.CYCLE_UNTIL_ALL_DATASETS_EXHAUSTED), 2
    ),
}


def builder(name: str, native: bool) -> Callable[[], BaseNode]:
    return partial(GRAPHS[name], native)
