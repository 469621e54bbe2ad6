"""Whole-pipeline exactness: ``Loader(graph).state_dict()`` taken mid-epoch and exactly at epoch ends,
round-tripped through ``json`` and ``torch.save``, restores into a freshly built graph whose stream equals
the uninterrupted one for (at least) two more epochs.

The uninterrupted stream of every graph is itself checked against the sampler's epochs (which
``tests/adapters/test_node.py`` checks against brute-force references), batched and mapped by hand.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torchdata.nodes import BaseNode, Batcher, Loader, Mapper, ParallelMapper, PinMemory, Prefetcher

from episode_sampler import EpisodeAwareSampler
from episode_sampler.core.seeding import sample_seed
from episode_sampler.node import EpisodeSamplerNode
from tests.helpers.layouts import contiguous

LENGTHS = [23, 4, 31, 17, 2, 40, 12, 29, 8, 35]  # 201 frames
FROM, TO = contiguous(LENGTHS)
BATCH = 8
REF_PASSES = 5  # checkpoints lie in passes 0 and 1; a restore is compared over 3 passes

LAYOUTS = {
    "frames-randperm": dict(shuffle=True, seed=1234, permutation="randperm"),
    "blocks-feistel-rank1of2": dict(
        shuffle=True,
        seed=2**64 - 9,
        permutation="feistel",
        order="blocks",
        block_size=5,
        rank=1,
        world_size=2,
    ),
}


def neg(x: int) -> int:
    return -x


def node(layout: str | dict, **kw: Any) -> EpisodeSamplerNode:
    """A node for a named layout (or a dict of sampler arguments)."""
    return EpisodeSamplerNode(FROM, TO, **(LAYOUTS[layout] if isinstance(layout, str) else layout), **kw)


def batches(items: list, size: int, drop_last: bool) -> list[list]:
    out = [items[i : i + size] for i in range(0, len(items), size)]
    return out[:-1] if drop_last and out and len(out[-1]) < size else out


# Each pipeline: (build(layout) -> root node, expected(layout, epoch_samples, epoch) -> list of loader items).
Pipeline = tuple[Callable[[str], BaseNode], Callable[[list[int], int], list]]


def pmap(method: str, sf: int) -> Pipeline:
    def build(layout: str) -> BaseNode:
        mapped = ParallelMapper(
            node(layout), neg, num_workers=2, in_order=True, method=method, snapshot_frequency=sf
        )
        return Prefetcher(Batcher(mapped, BATCH, drop_last=False), prefetch_factor=2)

    return build, lambda s, e: batches([-x for x in s], BATCH, False)


PIPELINES: dict[str, Pipeline] = {
    "node>Batcher": (
        lambda lay: Batcher(node(lay), BATCH, drop_last=False),
        lambda s, e: batches(s, BATCH, False),
    ),
    "node>Batcher(drop_last)": (
        lambda lay: Batcher(node(lay), BATCH, drop_last=True),
        lambda s, e: batches(s, BATCH, True),
    ),
    "node>Mapper>Batcher": (
        lambda lay: Batcher(Mapper(node(lay), neg), BATCH, drop_last=False),
        lambda s, e: batches([-x for x in s], BATCH, False),
    ),
    "node>ParallelMapper(thread,sf=1)>Batcher>Prefetcher": pmap("thread", 1),
    "node>ParallelMapper(thread,sf=7)>Batcher>Prefetcher": pmap("thread", 7),
    "node>ParallelMapper(process,sf=1)>Batcher>Prefetcher": pmap("process", 1),
    "node>ParallelMapper(process,sf=7)>Batcher>Prefetcher": pmap("process", 7),
    "node(batch_size)>Mapper": (
        lambda lay: Mapper(node(lay, batch_size=BATCH), tuple),
        lambda s, e: [tuple(b) for b in batches(s, BATCH, False)],
    ),
    "node(batch_size,drop_last_batch)>Mapper": (
        lambda lay: Mapper(node(lay, batch_size=BATCH, drop_last_batch=True), tuple),
        lambda s, e: [tuple(b) for b in batches(s, BATCH, True)],
    ),
    "node(emit_seed)>Prefetcher>Batcher": (
        lambda lay: Batcher(Prefetcher(node(lay, emit_seed=True), prefetch_factor=3), BATCH, drop_last=False),
        None,  # filled in below: needs the layout's seed
    ),
}


def _seeded_expected(layout: str) -> Callable[[list[int], int], list]:
    seed = LAYOUTS[layout]["seed"]
    return lambda s, e: batches([(i, sample_seed(seed, e, i)) for i in s], BATCH, False)


def json_round_trip(state: dict) -> dict:
    return json.loads(json.dumps(state))


def torch_round_trip(state: dict) -> dict:
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def run(loader: Loader, passes: int, checkpoints: set[tuple[int, int]] = frozenset()) -> tuple[list, dict]:
    """Run ``passes`` passes; save ``loader.state_dict()`` after item k of pass p, (p, k) in checkpoints."""
    out, states = [], {}
    for p in range(passes):
        items = []
        for item in loader:
            items.append(item)
            if (p, len(items)) in checkpoints:
                states[(p, len(items))] = loader.state_dict()
        out.append(items)
    return out, states


def expected_passes(layout: str, expected: Callable[[list[int], int], list], passes: int) -> list[list]:
    sampler = EpisodeAwareSampler(FROM, TO, **LAYOUTS[layout])
    return [expected(list(iter(sampler)), e) for e in range(passes)]


def check_pipeline(name: str, layout: str, n_random: int, round_trips: tuple[Callable, ...]) -> None:
    build, expected = PIPELINES[name]
    if expected is None:
        expected = _seeded_expected(layout)
    want = expected_passes(layout, expected, REF_PASSES)
    rng = random.Random(f"{name}/{layout}")
    checkpoints = {(0, len(want[0])), (1, len(want[1]))}  # exactly at epoch ends
    while len(checkpoints) < 2 + n_random:
        p = rng.randrange(2)
        checkpoints.add((p, rng.randrange(1, len(want[p]))))
    passes, states = run(Loader(build(layout), restart_on_stop_iteration=True), REF_PASSES, checkpoints)
    assert passes == want, "the uninterrupted stream differs from the sampler's"
    assert set(states) == checkpoints
    for i, ((p, k), state) in enumerate(sorted(states.items())):
        tail = passes[p][k:]
        want_after = [tail, passes[p + 1], passes[p + 2]] if tail else passes[p + 1 : p + 4]
        round_trip = round_trips[i % len(round_trips)]
        restored = Loader(build(layout), restart_on_stop_iteration=True)
        restored.load_state_dict(round_trip(state))
        got, _ = run(restored, 3)
        assert got == want_after, f"restore after item {k} of pass {p} ({round_trip.__name__}) differs"


FAST = [n for n in PIPELINES if "process" not in n]
SLOW = [n for n in PIPELINES if "process" in n]
# the thread ParallelMapper graphs still take ~1 s each: slow too
FAST_PARAMS = [
    pytest.param(n, marks=pytest.mark.slow) if n.startswith("node>ParallelMapper(") else n for n in FAST
]


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("name", FAST_PARAMS)
def test_pipeline_restores_exactly(name, layout):
    check_pipeline(name, layout, n_random=3, round_trips=(json_round_trip, torch_round_trip))


@pytest.mark.slow
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("name", SLOW)
def test_pipeline_restores_exactly_with_worker_processes(name, layout):
    check_pipeline(name, layout, n_random=1, round_trips=(json_round_trip, torch_round_trip))


def test_restore_state_taken_before_iterating():
    build, expected = PIPELINES["node>ParallelMapper(thread,sf=7)>Batcher>Prefetcher"]
    want = expected_passes("frames-randperm", expected, 2)
    loader = Loader(build("frames-randperm"))
    state = loader.state_dict()
    restored = Loader(build("frames-randperm"))
    restored.load_state_dict(json_round_trip(state))
    assert run(restored, 2)[0] == want
    assert run(loader, 2)[0] == want


def test_restored_loader_state_is_itself_restorable():
    """A state taken from a restored loader (before and after its first pass) restores again."""
    build, expected = PIPELINES["node>Mapper>Batcher"]
    want = expected_passes("blocks-feistel-rank1of2", expected, 4)
    first = Loader(build("blocks-feistel-rank1of2"))
    it = iter(first)
    for _ in range(3):
        next(it)
    second = Loader(build("blocks-feistel-rank1of2"))
    second.load_state_dict(torch_round_trip(first.state_dict()))
    it = iter(second)
    for _ in range(2):
        next(it)
    third = Loader(build("blocks-feistel-rank1of2"))
    third.load_state_dict(json_round_trip(second.state_dict()))
    assert run(third, 3)[0] == [want[0][5:], want[1], want[2]]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="PinMemory needs CUDA")
def test_pin_memory_pipeline_restores_exactly():
    def build(layout: str) -> BaseNode:
        return PinMemory(Mapper(Batcher(node(layout), BATCH, drop_last=False), torch.tensor))

    want = expected_passes("frames-randperm", lambda s, e: batches(s, BATCH, False), 4)
    loader = Loader(build("frames-randperm"))
    passes, states = run(loader, 4, {(0, 5), (0, len(want[0]))})
    assert [[t.tolist() for t in p] for p in passes] == want
    for (p, k), state in states.items():
        restored = Loader(build("frames-randperm"))
        restored.load_state_dict(torch_round_trip(state))
        got = [[t.tolist() for t in q] for q in run(restored, 2)[0]]
        tail = want[p][k:]
        assert got == ([tail, want[p + 1]] if tail else want[p + 1 : p + 3])


@pytest.mark.parametrize(
    "name", ["node>Mapper>Batcher", "node>ParallelMapper(thread,sf=1)>Batcher>Prefetcher"]
)
def test_elastic_resume_of_a_loader_state_into_another_world_size(name):
    """Two ranks in lockstep save; three ranks resume: every frame of the epoch is seen, none twice
    (except the < 3 samples that pad the new world's last round)."""
    build = PIPELINES[name][0]
    kw = dict(shuffle=True, seed=77, permutation="feistel")

    def graph(rank: int, world: int) -> BaseNode:
        return build(dict(kw, rank=rank, world_size=world))

    old = [Loader(graph(r, 2)) for r in range(2)]
    its = [iter(loader) for loader in old]
    seen = [-x for it in its for _ in range(5) for x in next(it)]  # 5 batches on each rank
    state = torch_round_trip(old[0].state_dict())
    for r in range(3):
        new = Loader(graph(r, 3))
        new.load_state_dict(state)
        seen += [-x for b in list(new) for x in b]
    full = EpisodeAwareSampler(FROM, TO, **kw).frame_indices(0).tolist()
    assert set(seen) == set(full)
    assert len(seen) - len(full) < 3
