"""EpisodeSamplerNode: stream equality with the sampler, independent references, reset/epoch semantics,
thread-safe state, batch mode, per-sample seeds and refused states."""

from __future__ import annotations

import copy
import itertools
import json
import sys
import threading
import time

import numpy as np
import pytest
from torchdata.nodes import Batcher, Loader, Prefetcher

from episode_sampler import EpisodeAwareSampler, EpisodeIndex
from episode_sampler.node import EpisodeSamplerNode
from tests.helpers.drain import drain, node_epochs
from tests.helpers.drain import epochs as sampler_epochs
from tests.helpers.layouts import NODE_LENGTHS, PERMUTATIONS, contiguous
from tests.helpers.reference import episodes_lists, lerobot_epoch, lerobot_indices, ref_sample_seed, shard
from tests.helpers.reference import reference_epoch as units_reference_epoch

# ---------------------------------------------------------------------------- layout and references
FROM, TO = contiguous(NODE_LENGTHS)  # 205 frames, short episodes get dropped by the drops


def reference_epoch(frm, to, seed, epoch, episodes=None, drop_first=0, drop_last=0) -> list[int]:
    """LeRobot's shuffled epoch: the materialized valid-frame list indexed by a seeded randperm."""
    return lerobot_epoch(lerobot_indices(frm, to, episodes, drop_first, drop_last), seed, epoch)


def reference_units_epoch(frm, to, seed, epoch, order, block_size=None, drop_first=0, drop_last=0):
    """Episodes or blocks shuffled as units by the same seeded randperm."""
    eps = episodes_lists(frm, to, None, drop_first, drop_last)
    return units_reference_epoch(eps, order, block_size, "randperm", seed, epoch)


SHARDINGS = [(0, 1, False), (1, 3, False), (2, 3, True), (0, 4, False)]


# ---------------------------------------------------------------------------- independent references
@pytest.mark.parametrize(("rank", "world", "drop_last"), SHARDINGS)
def test_randperm_frames_match_lerobot_reference(rank, world, drop_last):
    node = EpisodeSamplerNode(
        FROM, TO, shuffle=True, seed=1234, drop_n_first_frames=1, drop_n_last_frames=2,
        rank=rank, world_size=world, drop_last=drop_last,
    )  # fmt: skip
    for epoch, got in enumerate(node_epochs(node, 3)):
        full = reference_epoch(FROM, TO, 1234, epoch, drop_first=1, drop_last=2)
        assert got == shard(full, rank, world, drop_last)


def test_episode_subset_and_no_shuffle_match_reference():
    eps = [0, 2, 5, 9]
    node = EpisodeSamplerNode(FROM, TO, eps, shuffle=True, seed=7)
    assert node_epochs(node, 2) == [reference_epoch(FROM, TO, 7, e, episodes=eps) for e in range(2)]
    plain = EpisodeSamplerNode(FROM, TO, eps, drop_n_first_frames=2)
    want = [f for ep in episodes_lists(FROM, TO, eps, 2) for f in ep]
    assert node_epochs(plain, 2) == [want, want]


@pytest.mark.parametrize(("order", "block_size"), [("episodes", None), ("blocks", 4)])
def test_randperm_units_match_reference(order, block_size):
    node = EpisodeSamplerNode(
        FROM, TO, shuffle=True, seed=99, order=order, block_size=block_size, drop_n_last_frames=1
    )
    for epoch, got in enumerate(node_epochs(node, 2)):
        assert got == reference_units_epoch(FROM, TO, 99, epoch, order, block_size, drop_last=1)


@pytest.mark.parametrize(("order", "block_size"), [("frames", None), ("episodes", None), ("blocks", 6)])
def test_feistel_matches_frame_indices_and_covers_every_frame(order, block_size):
    kw = dict(shuffle=True, seed=5, permutation="feistel", order=order, block_size=block_size)
    node = EpisodeSamplerNode(FROM, TO, **kw, rank=0, world_size=1)
    sampler = EpisodeAwareSampler(FROM, TO, **kw)
    valid = [f for ep in episodes_lists(FROM, TO) for f in ep]
    epochs = node_epochs(node, 3)
    for epoch, got in enumerate(epochs):
        assert got == sampler.frame_indices(epoch).tolist()
        assert sorted(got) == valid  # a permutation of the valid frames
        assert got != valid  # and actually shuffled
    assert epochs[0] != epochs[1]
    if order != "frames":  # units keep their frames in order
        runs = np.split(np.asarray(epochs[0]), np.flatnonzero(np.diff(epochs[0]) != 1) + 1)
        limit = max(NODE_LENGTHS) if order == "episodes" else block_size
        assert all(len(r) <= limit for r in runs)


# ---------------------------------------------------------------------------- equality with the sampler
@pytest.mark.parametrize("permutation", PERMUTATIONS)
@pytest.mark.parametrize(("order", "block_size"), [("frames", None), ("episodes", None), ("blocks", 5)])
@pytest.mark.parametrize(("rank", "world", "drop_last"), SHARDINGS)
def test_stream_equals_sampler(permutation, order, block_size, rank, world, drop_last):
    kw = dict(
        shuffle=True, seed=2**63 + 11, permutation=permutation, order=order, block_size=block_size,
        rank=rank, world_size=world, drop_last=drop_last, drop_n_first_frames=1,
    )  # fmt: skip
    sampler = EpisodeAwareSampler(FROM, TO, **kw)
    want = sampler_epochs(sampler, 3)
    assert node_epochs(EpisodeSamplerNode(FROM, TO, **kw), 3) == want
    assert node_epochs(EpisodeSamplerNode.from_sampler(EpisodeAwareSampler(FROM, TO, **kw)), 3) == want
    batched = EpisodeSamplerNode(FROM, TO, **kw, batch_size=7)
    assert [[x for b in ep for x in b] for ep in node_epochs(batched, 3)] == want


def test_absolute_to_relative_idx_is_applied():
    table = {f: 1000 + f for f in range(sum(NODE_LENGTHS))}
    node = EpisodeSamplerNode(FROM, TO, shuffle=True, seed=3, absolute_to_relative_idx=table)
    assert node_epochs(node, 1)[0] == [1000 + f for f in reference_epoch(FROM, TO, 3, 0)]


def test_from_sampler_starts_where_the_sampler_stands():
    sampler = EpisodeAwareSampler(FROM, TO, shuffle=True, seed=1, permutation="feistel")
    ref = sampler_epochs(EpisodeAwareSampler(FROM, TO, shuffle=True, seed=1, permutation="feistel"), 3)
    sampler.set_epoch(1)
    assert node_epochs(EpisodeSamplerNode.from_sampler(sampler), 2) == ref[1:3]
    it = iter(sampler)
    for _ in range(10):
        next(it)
    node = EpisodeSamplerNode.from_sampler(sampler)
    assert node_epochs(node, 2) == [ref[1][10:], ref[2]]
    assert list(it) == ref[1][10:]  # the sampler's own position was not moved by the node


def test_from_lerobot(tmp_path):
    from episode_sampler.lerobot import write_lerobot_dataset

    index = write_lerobot_dataset(tmp_path / "ds", num_episodes=6, min_length=5, max_length=15, seed=2)
    frm, to = index.starts.tolist(), index.ends.tolist()
    node = EpisodeSamplerNode.from_lerobot(tmp_path / "ds", shuffle=True, seed=4, drop_n_first_frames=1)
    assert node_epochs(node, 2) == [reference_epoch(frm, to, 4, e, drop_first=1) for e in range(2)]
    batched = EpisodeSamplerNode.from_lerobot(
        tmp_path / "ds", episode_indices_to_use=[1, 3], batch_size=4, rank=1, world_size=2
    )
    want = shard([f for ep in episodes_lists(frm, to, [1, 3]) for f in ep], 1, 2, False)
    got = node_epochs(batched, 1)[0]
    assert [x for b in got for x in b] == want and all(len(b) == 4 for b in got[:-1])


# ---------------------------------------------------------------------------- reset / epoch semantics
def test_reset_none_advances_only_after_a_pull():
    kw = dict(shuffle=True, seed=8, permutation="feistel")
    ref = sampler_epochs(EpisodeAwareSampler(FROM, TO, **kw), 4)
    node = EpisodeSamplerNode(FROM, TO, **kw)
    node.reset(None)
    node.reset(None)
    node.reset()
    assert node.epoch == 0
    assert next(node) == ref[0][0]
    node.reset(None)  # pulled from epoch 0: epoch 1 starts
    node.reset(None)
    assert node.get_state()["epoch"] == 1
    assert drain(node) == ref[1]
    assert drain(node) == []  # a next() raising StopIteration ...
    node.reset(None)  # ... counts as a pull, and so does a drained epoch
    assert drain(node) == ref[2]
    node.reset(None)
    with pytest.raises(StopIteration):  # a fresh epoch is not drained by a reset
        for _ in range(len(ref[3]) + 1):
            next(node)
    node.reset(None)
    assert node.epoch == 4


def test_first_next_without_reset_and_set_epoch():
    kw = dict(shuffle=True, seed=8)
    ref = sampler_epochs(EpisodeAwareSampler(FROM, TO, **kw), 6)
    node = EpisodeSamplerNode(FROM, TO, **kw)
    assert [next(node) for _ in range(3)] == ref[0][:3]  # BaseNode resets lazily on the first next()
    node.set_epoch(4)
    assert node.get_state()["epoch"] == 4 and node.get_state()["start_index"] == 0
    node.reset(None)  # set_epoch's epoch is not pulled yet: kept
    assert drain(node) == ref[4]
    node.reset(None)
    assert drain(node) == ref[5]
    fresh = EpisodeSamplerNode(FROM, TO, **kw)
    fresh.set_epoch(2)
    assert node_epochs(fresh, 2) == ref[2:4]
    with pytest.raises(ValueError, match="epoch"):
        fresh.set_epoch(-1)
    with pytest.raises(TypeError, match="epoch"):
        fresh.set_epoch(1.0)


def test_reset_state_then_reset_none_acts_as_the_saved_node():
    kw = dict(shuffle=True, seed=8, order="blocks", block_size=3, permutation="feistel")
    ref = sampler_epochs(EpisodeAwareSampler(FROM, TO, **kw), 3)
    node = EpisodeSamplerNode(FROM, TO, **kw)
    node.reset(None)
    for _ in range(20):
        next(node)
    state = node.get_state()
    assert (state["epoch"], state["start_index"], state["pulled"]) == (0, 20, True)
    fresh = EpisodeSamplerNode(FROM, TO, **kw)
    fresh.reset(state)
    fresh.reset(None)  # the saved node was pulled since its reset: both move on to epoch 1
    node.reset(None)
    assert drain(fresh) == drain(node) == ref[1]
    # a position that was not pulled from (a bare LeRobot state) stays put on reset(None)
    fresh.reset({"epoch": 0, "start_index": 20})
    fresh.reset(None)
    assert drain(fresh) == ref[0][20:]
    fresh.reset(None)
    assert drain(fresh) == ref[1]


def test_state_at_epoch_end_points_to_next_epoch():
    kw = dict(shuffle=True, seed=21, world_size=3, rank=2)
    ref = sampler_epochs(EpisodeAwareSampler(FROM, TO, **kw), 3)
    node = EpisodeSamplerNode(FROM, TO, **kw)
    node.reset(None)
    for _ in range(len(ref[0])):
        next(node)
    state = node.get_state()
    assert (state["epoch"], state["start_index"], state["global_start"]) == (1, 0, 0)
    assert state["exhausted"] is True
    fresh = EpisodeSamplerNode(FROM, TO, **kw)
    fresh.reset(state)
    assert drain(fresh) == []  # the saved node's next() raises StopIteration: so does the restored one
    fresh.reset(None)
    assert drain(fresh) == ref[1]
    # the sampler reads the node's state and vice versa (one format)
    sampler = EpisodeAwareSampler(FROM, TO, **kw)
    sampler.load_state_dict(json.loads(json.dumps(state)))
    assert list(iter(sampler)) == ref[1]
    assert set(state) == set(sampler.state_dict())


def test_state_is_fresh_json_and_sampler_compatible():
    kw = dict(shuffle=True, seed=5, permutation="feistel", world_size=2, rank=0)
    node = EpisodeSamplerNode(FROM, TO, **kw)
    node.reset(None)
    for _ in range(13):
        next(node)
    a, b = node.get_state(), node.get_state()
    assert a == b and a is not b
    a["epoch"] = 99
    assert node.get_state()["epoch"] == 0
    assert json.loads(json.dumps(b)) == b
    sampler = EpisodeAwareSampler(FROM, TO, **kw)
    it = iter(sampler)
    for _ in range(13):
        next(it)
    pass_bits = ("pulled", "exhausted")  # the node's state machine; the sampler has its own
    assert {k: v for k, v in sampler.state_dict().items() if k not in pass_bits} == {
        k: v for k, v in b.items() if k not in pass_bits
    }


def test_elastic_restore_into_other_world_size_loses_and_repeats_nothing():
    kw = dict(shuffle=True, seed=31, permutation="feistel", drop_last=True)
    full = EpisodeAwareSampler(FROM, TO, **kw).frame_indices(0).tolist()
    olds = [EpisodeSamplerNode(FROM, TO, **kw, rank=r, world_size=2) for r in range(2)]
    consumed = []
    for n in olds:
        n.reset(None)
        consumed += [next(n) for _ in range(30)]
    state = olds[1].get_state()
    rest = []
    for r in range(3):
        n = EpisodeSamplerNode(FROM, TO, **kw, rank=r, world_size=3)
        n.reset(copy.deepcopy(state))
        rest += drain(n)
    assert len(consumed) + len(rest) <= len(full)
    assert sorted(consumed + rest) == sorted(full[: len(consumed) + len(rest)])
    assert len(full) - len(consumed) - len(rest) < 3


# ---------------------------------------------------------------------------- batch mode
@pytest.mark.parametrize("drop_last_batch", [False, True])
def test_batches_never_mix_epochs(drop_last_batch):
    kw = dict(shuffle=True, seed=17, permutation="randperm", world_size=2, rank=1)
    ref = sampler_epochs(EpisodeAwareSampler(FROM, TO, **kw), 3)  # 103 samples per epoch
    node = EpisodeSamplerNode(FROM, TO, **kw, batch_size=10, drop_last_batch=drop_last_batch)
    for epoch in range(3):
        node.reset(None)
        batches = drain(node)
        want = [ref[epoch][i : i + 10] for i in range(0, len(ref[epoch]), 10)]
        if drop_last_batch:
            want = want[:-1]
        assert batches == want
        assert node.get_state()["epoch"] == epoch + 1


def test_drop_last_batch_reports_next_epoch_after_last_full_batch():
    kw = dict(shuffle=True, seed=17)
    ref = sampler_epochs(EpisodeAwareSampler(FROM, TO, **kw), 2)
    node = EpisodeSamplerNode(FROM, TO, **kw, batch_size=50, drop_last_batch=True)  # 205 = 4 * 50 + 5
    node.reset(None)
    for _ in range(3):
        next(node)
    assert node.get_state()["start_index"] == 150
    next(node)
    state = node.get_state()
    assert (state["epoch"], state["start_index"]) == (1, 0)
    with pytest.raises(StopIteration):
        next(node)
    assert state["exhausted"] is True
    fresh = EpisodeSamplerNode(FROM, TO, **kw, batch_size=50, drop_last_batch=True)
    fresh.reset(state)
    with pytest.raises(StopIteration):
        next(fresh)
    fresh.reset(None)
    assert next(fresh) == ref[1][:50]


def test_batch_mode_restores_mid_epoch_at_any_sample_position():
    kw = dict(shuffle=True, seed=17, permutation="feistel")
    ref = sampler_epochs(EpisodeAwareSampler(FROM, TO, **kw), 1)[0]
    items = EpisodeSamplerNode(FROM, TO, **kw)
    items.reset(None)
    for _ in range(23):
        next(items)
    node = EpisodeSamplerNode(FROM, TO, **kw, batch_size=8)
    node.reset(items.get_state())
    assert [x for b in drain(node) for x in b] == ref[23:]


# ---------------------------------------------------------------------------- per-sample seeds
def test_emit_seed_items_and_batches():
    kw = dict(shuffle=True, seed=2**64 - 5, permutation="feistel", world_size=2, rank=1)
    big_from, big_to = [0, 700, 1500], [700, 1500, 2200]  # several internal chunks per epoch
    ref = sampler_epochs(EpisodeAwareSampler(big_from, big_to, **kw), 2)
    node = EpisodeSamplerNode(big_from, big_to, **kw, emit_seed=True)
    for epoch, got in enumerate(node_epochs(node, 2)):
        assert [i for i, _ in got] == ref[epoch]
        assert [s for _, s in got] == [ref_sample_seed(2**64 - 5, epoch, i) for i in ref[epoch]]
    batched = EpisodeSamplerNode(big_from, big_to, **kw, emit_seed=True, batch_size=64)
    for epoch, got in enumerate(node_epochs(batched, 2)):
        assert [i for b, _ in got for i in b] == ref[epoch]
        assert all(len(b) == len(s) for b, s in got)
        assert [s for _, ss in got for s in ss][:5] == [
            ref_sample_seed(2**64 - 5, epoch, i) for i in ref[epoch][:5]
        ]
    # restored mid-epoch, the seeds continue unchanged
    node.reset(None)
    for _ in range(300):
        next(node)
    fresh = EpisodeSamplerNode(big_from, big_to, **kw, emit_seed=True)
    fresh.reset(node.get_state())
    assert drain(fresh) == drain(node)


# ---------------------------------------------------------------------------- thread safety
@pytest.mark.parametrize(
    ("permutation", "batch_size"), [("randperm", None), ("feistel", None), ("feistel", 37)]
)
def test_concurrent_get_state_is_never_torn(permutation, batch_size):
    lengths = [900, 1300, 700, 2100]
    frm = np.concatenate([[0], np.cumsum(lengths)[:-1]]).tolist()
    to = np.cumsum(lengths).tolist()
    kw = dict(shuffle=True, seed=3, permutation=permutation, world_size=2, rank=1)
    ref = sampler_epochs(EpisodeAwareSampler(frm, to, **kw), 3)  # 2500 per epoch: several chunks
    node = EpisodeSamplerNode(frm, to, **kw, batch_size=batch_size)
    node.reset(None)
    observed: list[dict] = []
    stop = threading.Event()

    taken = [0]  # get_state calls so far (observed keeps only the distinct states)

    def watch():
        last = None
        while not stop.is_set():
            state = node.get_state()
            taken[0] += 1
            if state != last:  # a starved main thread must not fill memory with copies of one state
                observed.append(state)
                last = state

    every = 1 if batch_size else 8
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    watcher = threading.Thread(target=watch)
    watcher.start()
    handshake = 10 if batch_size else 200

    def let_watcher_see() -> None:
        # On a loaded machine the watcher can be starved; wait (bounded) until it has taken two more
        # states, so the states it sees are spread over the whole run, not bunched at one point.
        seen, deadline = taken[0], time.monotonic() + 2.0
        while taken[0] < seen + 2 and time.monotonic() < deadline:
            time.sleep(0.0005)

    try:
        for _ in range(3):
            for i, _ in enumerate(node):
                if i % every == 0:
                    time.sleep(0)  # a consumer that releases the GIL now and then
                if i % handshake == 0:
                    let_watcher_see()
            node.reset(None)
    finally:
        stop.set()
        watcher.join()
        sys.setswitchinterval(old)
    keys = [(s["epoch"], s["start_index"]) for s in observed]
    assert keys == sorted(keys)  # states only move forward
    distinct = {k: s for k, s in zip(keys, observed)}
    assert len(distinct) >= 10, f"the watcher observed only {len(distinct)} states"
    step = batch_size or 1
    for (epoch, start), state in itertools.islice(distinct.items(), 0, None, max(1, len(distinct) // 60)):
        assert epoch <= 3 and start < len(ref[0])
        fresh = EpisodeSamplerNode(frm, to, **kw, batch_size=batch_size)
        fresh.reset(state)
        if state["exhausted"]:  # observed after an epoch's last item: that pass is over
            assert list(fresh) == []
            fresh.reset(None)
        got = list(itertools.islice(fresh, 3))
        if batch_size:
            assert start % step == 0  # only batch boundaries are ever observed
            got = [x for b in got for x in b]
        if epoch < 3:
            assert got[:3] == ref[epoch][start : start + 3]


def test_prefetcher_reads_state_from_another_thread():
    kw = dict(shuffle=True, seed=12, permutation="feistel")
    ref = sampler_epochs(EpisodeAwareSampler(FROM, TO, **kw), 3)
    loader = Loader(Prefetcher(EpisodeSamplerNode(FROM, TO, **kw), prefetch_factor=4))
    it = iter(loader)
    head = [next(it) for _ in range(77)]
    state = loader.state_dict()
    tail = list(it) + list(loader)
    assert head + tail == ref[0] + ref[1]
    fresh = Loader(Prefetcher(EpisodeSamplerNode(FROM, TO, **kw), prefetch_factor=4))
    fresh.load_state_dict(json.loads(json.dumps(state)))
    assert list(fresh) + list(fresh) == tail


def test_loader_state_before_iterating_and_epochs():
    kw = dict(shuffle=True, seed=12)
    ref = sampler_epochs(EpisodeAwareSampler(FROM, TO, **kw), 3)
    loader = Loader(Batcher(EpisodeSamplerNode(FROM, TO, **kw), 16, drop_last=False))
    state = loader.state_dict()  # creates the iterator (one reset) without consuming
    assert state["root"]["source"]["epoch"] == 0
    for epoch in range(3):
        assert [x for b in loader for x in b] == ref[epoch]


# ---------------------------------------------------------------------------- refused arguments and states
def test_bad_states_are_refused_and_leave_the_node_unchanged():
    kw = dict(shuffle=True, seed=5)
    node = EpisodeSamplerNode(FROM, TO, **kw)
    node.reset(None)
    first = [next(node) for _ in range(5)]
    good = node.get_state()
    bad_cases = [
        ({**good, "seed": 6}, ValueError, "seed"),
        ({**good, "fingerprint": "0" * 32}, ValueError, "fingerprint"),
        ({**good, "permutation": "feistel"}, ValueError, "permutation"),
        ({**good, "order": "episodes"}, ValueError, "order"),
        ({**good, "start_index": 10**6}, ValueError, "start_index"),
        ({**good, "epoch": -1}, ValueError, "epoch"),
        ({**good, "epoch": "1"}, TypeError, "epoch"),
        ({**good, "version": 99}, ValueError, "version"),
        ({**good, "extra": 1}, ValueError, "unknown"),
        ({k: v for k, v in good.items() if k != "rank"}, ValueError, "missing"),
        ([("epoch", 0)], TypeError, "dict"),
    ]
    for state, exc, match in bad_cases:
        with pytest.raises(exc, match=match):
            node.reset(state)
    assert node.get_state() == good
    rest = drain(node)
    assert first + rest == sampler_epochs(EpisodeAwareSampler(FROM, TO, **kw), 1)[0]
    node.reset({"epoch": 2, "start_index": 3})  # a bare LeRobot state is accepted
    assert next(node) == reference_epoch(FROM, TO, 5, 2)[3]


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="batch_size"):
        EpisodeSamplerNode(FROM, TO, batch_size=0)
    with pytest.raises(TypeError, match="batch_size"):
        EpisodeSamplerNode(FROM, TO, batch_size="4")
    with pytest.raises(ValueError, match="drop_last_batch"):
        EpisodeSamplerNode(FROM, TO, drop_last_batch=True)
    with pytest.raises(TypeError, match="drop_last_batch"):
        EpisodeSamplerNode(FROM, TO, batch_size=2, drop_last_batch=1)
    with pytest.raises(TypeError, match="emit_seed"):
        EpisodeSamplerNode(FROM, TO, emit_seed="yes")
    with pytest.raises(ValueError, match="rank"):
        EpisodeSamplerNode(FROM, TO, rank=2, world_size=2)
    with pytest.raises(ValueError, match="world_size"):
        EpisodeSamplerNode(FROM, TO, rank=0, world_size=0)
    with pytest.raises(ValueError, match="order"):
        EpisodeSamplerNode(FROM, TO, order="shards")
    with pytest.raises(ValueError, match="drop_n_first_frames"):
        EpisodeSamplerNode(FROM, TO, drop_n_first_frames=-1)
    with pytest.raises(TypeError, match="sampler"):
        EpisodeSamplerNode.from_sampler([1, 2, 3])
    with pytest.raises(ValueError, match="batch_size"):
        EpisodeSamplerNode.from_sampler(EpisodeAwareSampler(FROM, TO), batch_size=-3)


def test_rank_and_world_size_default_to_torch_distributed(monkeypatch):
    node = EpisodeSamplerNode(FROM, TO)
    assert (node.rank, node.world_size) == (0, 1)
    import torch.distributed as dist

    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_rank", lambda *a, **k: 2)
    monkeypatch.setattr(dist, "get_world_size", lambda *a, **k: 3)
    node = EpisodeSamplerNode(FROM, TO, shuffle=True, seed=1)
    assert (node.rank, node.world_size) == (2, 3)
    assert node_epochs(node, 1)[0] == shard(reference_epoch(FROM, TO, 1, 0), 2, 3, False)
    explicit = EpisodeSamplerNode(FROM, TO, rank=0, world_size=1)
    assert (explicit.rank, explicit.world_size) == (0, 1)


def test_repr_and_properties():
    node = EpisodeSamplerNode(FROM, TO, shuffle=True, seed=9, batch_size=4, world_size=2, rank=1)
    assert node.num_frames == sum(NODE_LENGTHS)
    assert node.samples_per_epoch == -(-sum(NODE_LENGTHS) // 2)
    assert (node.batch_size, node.drop_last_batch, node.emit_seed, node.seed) == (4, False, False, 9)
    assert "EpisodeSamplerNode(" in repr(node) and "batch_size=4" in repr(node)


@pytest.mark.parametrize("kw", [{}, {"batch_size": 6}, {"emit_seed": True}])
def test_copy_and_pickle_keep_position_and_pull_status(kw):
    import pickle

    base = dict(shuffle=True, seed=4, permutation="feistel", world_size=2, rank=1)
    node = EpisodeSamplerNode(FROM, TO, **base, **kw)
    node.reset(None)
    for _ in range(5):
        next(node)
    for clone in (copy.deepcopy(node), pickle.loads(pickle.dumps(node))):
        assert clone.get_state() == node.get_state()
        assert drain(clone) == drain(copy.deepcopy(node))
        clone.reset(None)  # the copied pass was pulled from: the next epoch starts
        assert clone.get_state()["epoch"] == 1
    fresh = EpisodeSamplerNode(FROM, TO, **base, **kw)
    clone = copy.deepcopy(fresh)
    clone.reset(None)  # never pulled: epoch 0
    assert clone.epoch == 0 and drain(clone) == drain(fresh)


def test_leaving_a_loader_loop_early_starts_the_next_epoch():
    kw = dict(shuffle=True, seed=12, permutation="feistel")
    ref = sampler_epochs(EpisodeAwareSampler(FROM, TO, **kw), 3)
    loader = Loader(Prefetcher(EpisodeSamplerNode(FROM, TO, **kw), prefetch_factor=2))
    head = []
    for x in loader:
        head.append(x)
        if len(head) == 10:
            break
    assert head == ref[0][:10]
    assert list(loader) == ref[1]
    assert list(loader) == ref[2]


def test_node_and_sampler_report_the_same_order_properties():
    # one set of read-only properties (core.cursor.OrderView) for both cursors
    kw = {"shuffle": True, "seed": 3, "permutation": "feistel", "order": "blocks", "block_size": 4}
    kw.update(rank=1, world_size=3, drop_last=True)
    node = EpisodeSamplerNode([0, 10, 25], [10, 25, 31], **kw)
    sampler = EpisodeAwareSampler([0, 10, 25], [10, 25, 31], **kw)
    for name in ("num_frames", "rank", "world_size", "drop_last", "permutation", "order", "block_size"):
        assert getattr(node, name) == getattr(sampler, name) == (kw | {"num_frames": 31}).get(name)
    assert (
        node.fingerprint
        == sampler.fingerprint
        == EpisodeIndex.from_bounds([0, 10, 25], [10, 25, 31]).fingerprint
    )
