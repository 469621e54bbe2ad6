"""EpisodeSamplerNode's own ``__next__`` (the per-item fast path) keeps BaseNode's contract.

``next(node)`` skips ``BaseNode.__next__``; these tests fail if that changes what a caller sees:
lazy initialization before the first ``reset`` (a subclass's ``reset`` included), a subclass's
``next()``, BaseNode's errors, ``StopIteration``, and a state exact after every single item.
"""

from __future__ import annotations

import copy
import itertools
import pickle
import sys
import threading
import time

import numpy as np
import pytest
from torchdata.nodes import BaseNode, Loader, Prefetcher

from episode_sampler import EpisodeAwareSampler
from episode_sampler.node import EpisodeSamplerNode
from tests.helpers.drain import epochs
from tests.helpers.layouts import NODE_LENGTHS, contiguous
from tests.helpers.reference import ref_sample_seed

FROM, TO = contiguous([*NODE_LENGTHS, 70])  # 275 frames: more than one chunk of the pass
KW = dict(shuffle=True, seed=31, permutation="feistel")


def sampler_epochs(n: int, **kw) -> list[list[int]]:
    return epochs(EpisodeAwareSampler(FROM, TO, **{**KW, **kw}), n)


class CountingResets(EpisodeSamplerNode):
    """A subclass that overrides ``reset`` (and calls super): counts how often it runs."""

    def __init__(self, *args, **kwargs):
        self.resets: list = []
        super().__init__(*args, **kwargs)

    def reset(self, initial_state=None):
        self.resets.append(initial_state)
        super().reset(initial_state)


class Plus1000(EpisodeSamplerNode):
    """A subclass that overrides ``next``: every way of pulling must go through it."""

    def next(self):
        return super().next() + 1000


class ForgetsSuperReset(EpisodeSamplerNode):
    def reset(self, initial_state=None):  # does not call super().reset: BaseNode refuses to iterate
        pass


class PlainBaseNode(BaseNode):
    """torchdata's own behaviour, as a reference: a BaseNode whose reset forgets super()."""

    def reset(self, initial_state=None):
        pass

    def next(self):
        return 0

    def get_state(self):
        return {}


# ---------------------------------------------------------------------------- lazy initialization
@pytest.mark.parametrize("pull", ["next", "for", "dunder", "method"])
def test_first_pull_before_reset_runs_reset_once(pull):
    ref = sampler_epochs(2)
    node = CountingResets(FROM, TO, **KW)
    assert node.resets == []
    if pull == "next":
        head = [next(node) for _ in range(5)]
    elif pull == "for":
        head = list(itertools.islice(node, 5))
    elif pull == "dunder":
        head = [node.__next__() for _ in range(5)]
    else:  # next() directly (BaseNode's subclass hook): also initializes, harmlessly
        head = [node.next() for _ in range(5)]
        twice = Plus1000(FROM, TO, **KW)
        assert twice.next() == ref[0][0] + 1000  # the lazy reset does not run the subclass's next twice
    assert head == ref[0][:5]
    assert node.resets == [None]  # exactly one lazy reset(None), as BaseNode.__next__ does
    assert list(node) == ref[0][5:]
    assert node.resets == [None]
    node.reset(None)
    assert list(node) == ref[1]


def test_first_pull_through_loader_and_prefetcher():
    ref = sampler_epochs(2)
    node = CountingResets(FROM, TO, **KW)
    assert list(Loader(node)) == ref[0]
    assert node.resets == [None]  # Loader's iter() resets; no second, lazy reset
    node = CountingResets(FROM, TO, **KW)
    loader = Loader(Prefetcher(node, prefetch_factor=3))
    assert list(loader) + list(loader) == ref[0] + ref[1]


def test_reset_that_forgets_super_fails_as_basenode_does():
    with pytest.raises(NotImplementedError, match="Failed to initialize"):
        next(PlainBaseNode())  # the reference behaviour
    node = ForgetsSuperReset(FROM, TO, **KW)
    with pytest.raises(NotImplementedError, match="Failed to initialize"):
        next(node)
    with pytest.raises(NotImplementedError, match="Failed to initialize"):
        next(node)  # still refused: the first pull did not silently initialize it


def test_set_epoch_and_copies_before_reset_still_initialize_lazily():
    ref = sampler_epochs(4)
    node = CountingResets(FROM, TO, **KW)
    node.set_epoch(2)
    assert next(node) == ref[2][0] and node.resets == [None]
    fresh = CountingResets(FROM, TO, **KW)
    for clone in (copy.deepcopy(fresh), pickle.loads(pickle.dumps(fresh))):
        clone.resets.clear()
        assert list(clone) == ref[0]
        assert clone.resets == [None]
    assert fresh.resets == []  # copying neither reset nor moved the original
    assert list(fresh) == ref[0]


# ---------------------------------------------------------------------------- subclasses
def test_a_subclass_next_is_what_every_pull_returns():
    ref = sampler_epochs(1)
    node = Plus1000(FROM, TO, **KW)
    assert next(node) == ref[0][0] + 1000
    assert [node.__next__() for _ in range(2)] == [x + 1000 for x in ref[0][1:3]]
    assert list(node) == [x + 1000 for x in ref[0][3:]]
    assert list(Loader(Plus1000(FROM, TO, **KW))) == [x + 1000 for x in ref[0]]

    class SumsBatches(EpisodeSamplerNode):
        def next(self):
            return sum(super().next())

    batches = [ref[0][i : i + 7] for i in range(0, len(ref[0]), 7)]
    assert list(SumsBatches(FROM, TO, **KW, batch_size=7)) == [sum(b) for b in batches]


def test_the_node_uses_torchdata_protocol_only():
    # reset/next/get_state: BaseNode's own __next__ and no subclass hook
    assert EpisodeSamplerNode.__next__ is BaseNode.__next__
    assert "__init_subclass__" not in EpisodeSamplerNode.__dict__
    assert Plus1000.__next__ is BaseNode.__next__


# ---------------------------------------------------------------------------- StopIteration and state
def test_stop_iteration_repeats_until_reset():
    ref = sampler_epochs(2)
    node = EpisodeSamplerNode(FROM, TO, **KW)
    assert list(node) == ref[0]
    for _ in range(3):
        with pytest.raises(StopIteration):
            next(node)
    assert next(node, "end") == "end"
    node.reset(None)
    assert list(node) == ref[1]


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"world_size": 3, "rank": 1},
        {"emit_seed": True},
        {"batch_size": 8},
        {"batch_size": 8, "drop_last_batch": True, "emit_seed": True},
    ],
    ids=["items", "sharded", "seeded", "batches", "batches-drop-seeded"],
)
@pytest.mark.parametrize("start", [None, 0, 57])
def test_state_after_every_item_equals_a_count(kw, start):
    """get_state() after each pull reads the position counted here, pulled/exhausted as documented."""
    shard = {k: kw[k] for k in ("world_size", "rank") if k in kw}
    ref = sampler_epochs(2, **shard)
    total = len(ref[0])
    node = EpisodeSamplerNode(FROM, TO, **KW, **kw)
    if start is not None:  # None: pulled before any reset (the lazy initialization path)
        node.reset({"epoch": 0, "start_index": start})
    position = start or 0
    state = node.get_state()
    assert (state["epoch"], state["start_index"], state["pulled"], state["exhausted"]) == (
        0,
        position,
        False,
        False,
    )
    batch, drop = kw.get("batch_size"), kw.get("drop_last_batch", False)
    last = total - (total - position) % batch if batch and drop else total
    while True:
        item = next(node, None)
        if item is None:
            break
        if kw.get("emit_seed"):
            item = item[0]
        got = item if batch else [item]
        assert got == ref[0][position : position + len(got)]
        position += len(got)
        state = node.get_state()
        if position >= last:
            assert (state["epoch"], state["start_index"], state["exhausted"]) == (1, 0, True)
        else:
            assert (state["epoch"], state["start_index"], state["exhausted"]) == (0, position, False)
        assert state["pulled"] is True
    assert position == last
    node.reset(None)
    assert node.get_state()["epoch"] == 1
    first = next(node)
    first = first[0] if kw.get("emit_seed") else first
    assert (first[0] if batch else first) == ref[1][0]


def test_state_through_a_loader_after_every_item():
    ref = sampler_epochs(1)
    node = EpisodeSamplerNode(FROM, TO, **KW)
    loader = Loader(node)
    for k, x in enumerate(loader, start=1):
        assert x == ref[0][k - 1]
        root = loader.state_dict()["root"]
        want = (1, 0, True) if k == len(ref[0]) else (0, k, False)
        assert (root["epoch"], root["start_index"], root["exhausted"]) == want


# ---------------------------------------------------------------------------- per-sample seeds
@pytest.mark.parametrize("batch_size", [None, 1, 64, 300])
@pytest.mark.parametrize("start", [0, 63, 130])
def test_every_seed_matches_the_reference_from_any_restore_point(batch_size, start):
    """Seeds of every item (of every batch), from any position, for relabelled indices too."""
    relabel = list(range(10_000, 10_000 + TO[-1]))  # seeds are of the yielded (relabelled) index
    kw = dict(KW, seed=2**64 - 3, world_size=2, rank=1, absolute_to_relative_idx=relabel)
    sampler = EpisodeAwareSampler(FROM, TO, **kw)
    ref = [list(iter(sampler)) for _ in range(2)]
    node = EpisodeSamplerNode(FROM, TO, **kw, emit_seed=True, batch_size=batch_size)
    node.reset({"epoch": 0, "start_index": start})
    for epoch, want in ((0, ref[0][start:]), (1, ref[1])):
        got = list(node)
        if batch_size:
            assert all(len(b) == len(s) for b, s in got)
            assert [len(b) for b, _ in got][:-1] == [batch_size] * (len(got) - 1)
            got = [(i, s) for b, ss in got for i, s in zip(b, ss)]
        assert [i for i, _ in got] == want
        assert [s for _, s in got] == [ref_sample_seed(2**64 - 3, epoch, i) for i in want]
        node.reset(None)


def test_seeded_state_is_exact_while_another_thread_reads_it():
    """A watcher thread's states, restored, continue with the very items and seeds that followed."""
    lengths = [900, 1300, 700]
    frm = np.concatenate([[0], np.cumsum(lengths)[:-1]]).tolist()
    to = np.cumsum(lengths).tolist()
    kw = dict(KW, world_size=1, rank=0)
    node = EpisodeSamplerNode(frm, to, **kw, emit_seed=True)
    node.reset(None)
    seen: list[dict] = []
    items: list = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            seen.append(node.get_state())

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for k, x in enumerate(node):
            items.append(x)
            if k % 97 == 0:  # let the watcher take two states here, even if the machine starves it
                seen_before, deadline = len(seen), time.monotonic() + 2.0
                while len(seen) < seen_before + 2 and time.monotonic() < deadline:
                    time.sleep(0.0005)
    finally:
        stop.set()
        watcher.join()
        sys.setswitchinterval(old)
    assert len(items) == sum(lengths)
    starts = [s["start_index"] for s in seen if not s["exhausted"]]
    assert starts == sorted(starts) and len(set(starts)) >= 5
    for state in seen[:: max(1, len(seen) // 40)]:
        if state["exhausted"]:
            continue
        fresh = EpisodeSamplerNode(frm, to, **kw, emit_seed=True)
        fresh.reset(state)
        p = state["start_index"]
        assert list(itertools.islice(fresh, 3)) == items[p : p + 3]
