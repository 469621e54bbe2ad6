"""Bad input, long runs and concurrency for the sampler (the node has its own in test_node.py)."""

import json
import math
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from episode_sampler import EpisodeAwareSampler, EpisodeIndex
from tests.helpers.drain import drain_next
from tests.helpers.reference import episodes_lists, reference_epoch, shard

FROM = [0, 10, 25, 40]
TO = [10, 20, 40, 55]

GARBAGE = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**70), 2**70),
    st.text(max_size=5),
    st.binary(max_size=5),
    st.lists(st.integers(-5, 5), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from([np.int64(-3), np.int64(3), np.float64("nan"), np.uint64(2**64 - 1), np.bool_(True)]),
)

ARGS = {
    "episode_indices_to_use": None,
    "drop_n_first_frames": 0,
    "drop_n_last_frames": 0,
    "shuffle": True,
    "seed": 0,
    "permutation": "feistel",
    "order": "frames",
    "block_size": None,
    "rank": 0,
    "world_size": 1,
    "drop_last": False,
}


def _stream(**kw):
    s = EpisodeAwareSampler(FROM, TO, **kw)
    return [list(iter(s)) for _ in range(2)]


def _expected_stream(kw):
    """Reference for a valid configuration, from plain ints."""
    eps = episodes_lists(
        FROM, TO, kw["episode_indices_to_use"], int(kw["drop_n_first_frames"]), int(kw["drop_n_last_frames"])
    )
    out = []
    for epoch in range(2):
        full = reference_epoch(
            eps, kw["order"], kw["block_size"], kw["permutation"], int(kw["seed"]), epoch, bool(kw["shuffle"])
        )
        out.append(shard(full, int(kw["rank"]), int(kw["world_size"]), bool(kw["drop_last"])))
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(ARGS)), value=GARBAGE)
def test_constructor_garbage_is_refused_or_exact(name, value):
    kw = dict(ARGS)
    kw[name] = value
    if name == "block_size" and value is not None:
        kw["order"] = "blocks"
    try:
        got = _stream(**kw)
    except (ValueError, TypeError) as exc:
        assert str(exc)  # a message, and it names the argument
        readable = name.replace("episode_indices_to_use", "episode").split("_")[0]
        assert readable in str(exc) or name in str(exc) or "valid frames" in str(exc), (name, str(exc))
        return
    # Accepted: must be a legitimate value (numpy ints are fine) and give the exact stream.
    assert got == _expected_stream(kw)


@settings(max_examples=300, deadline=None)
@given(
    key=st.sampled_from(
        [
            "epoch",
            "start_index",
            "global_start",
            "world_size",
            "rank",
            "drop_last",
            "version",
            "seed",
            "fingerprint",
            "order",
            "block_size",
            "num_frames",
        ]
    ),
    value=GARBAGE,
)
def test_load_state_garbage_is_refused_or_exact(key, value):
    s = EpisodeAwareSampler(FROM, TO, shuffle=True, seed=3, permutation="feistel", world_size=2)
    state = s.state_dict()
    state[key] = value
    fresh = EpisodeAwareSampler(FROM, TO, shuffle=True, seed=3, permutation="feistel", world_size=2)
    try:
        fresh.load_state_dict(state)
    except (ValueError, TypeError) as exc:
        assert key in str(exc), (key, str(exc))
        return
    # Accepted garbage must describe a real position and resume exactly there.
    st_ = fresh.state_dict()
    full = reference_epoch(episodes_lists(FROM, TO), "frames", None, "feistel", 3, st_["epoch"])
    expected = shard(full, 0, 2, False, st_["global_start"])[st_["start_index"] :]
    assert list(iter(fresh)) == expected


@settings(max_examples=100, deadline=None)
@given(st.one_of(GARBAGE, st.dictionaries(st.sampled_from(["epoch", "start_index", "x"]), GARBAGE)))
def test_load_state_non_dict_or_partial(value):
    s = EpisodeAwareSampler(FROM, TO)
    legit_lerobot = (
        isinstance(value, dict)
        and set(value) == {"epoch", "start_index"}
        and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and 0 <= v
            for v in value.values()
        )
        and value["start_index"] <= len(s)
        and value["epoch"] <= 2**62
    )
    if legit_lerobot:
        s.load_state_dict(value)  # a bare LeRobot state is valid
        return
    with pytest.raises((ValueError, TypeError)):
        s.load_state_dict(value)


@settings(max_examples=100, deadline=None)
@given(st.lists(GARBAGE, min_size=1, max_size=4), st.lists(GARBAGE, min_size=1, max_size=4))
def test_episode_index_garbage(starts, ends):
    try:
        ei = EpisodeIndex.from_bounds(starts, ends)
    except (ValueError, TypeError) as exc:
        assert str(exc)
        return
    # accepted: must be valid sorted, non-overlapping int bounds
    assert (ei.starts <= ei.ends).all()
    assert all(isinstance(v, int) for v in ei.starts.tolist())


@pytest.mark.slow
def test_ten_thousand_epochs_distinct_and_resumable():
    ei = EpisodeIndex.from_lengths([7, 5, 9, 3])
    s = EpisodeAwareSampler.from_index(ei, shuffle=True, seed=1, permutation="feistel")
    seen = set()
    for epoch in range(10_000):
        seen.add(tuple(s.frame_indices(epoch).tolist()))
    # 24! orders: 10^4 epochs must be (overwhelmingly) distinct
    assert len(seen) >= 9_990
    rng = np.random.default_rng(0)
    for epoch in rng.integers(0, 10_000, size=30).tolist():
        k = int(rng.integers(0, len(s)))
        fresh = EpisodeAwareSampler.from_index(ei, shuffle=True, seed=1, permutation="feistel")
        fresh.load_state_dict(json.loads(json.dumps({"epoch": epoch, "start_index": k})))
        assert list(iter(fresh)) == s.frame_indices(epoch)[k:].tolist()


@pytest.mark.parametrize("permutation", ["randperm", "feistel"])
@pytest.mark.parametrize("order", ["frames", "episodes", "blocks"])
def test_ranks_partition_every_epoch(permutation, order):
    ei = EpisodeIndex.from_lengths([13, 1, 8, 21, 5])
    n = ei.num_frames
    bs = 4 if order == "blocks" else None
    for world in range(1, 9):
        for epoch in range(3):
            parts = [
                EpisodeAwareSampler.from_index(
                    ei,
                    shuffle=True,
                    seed=5,
                    permutation=permutation,
                    order=order,
                    block_size=bs,
                    rank=r,
                    world_size=world,
                    drop_last=True,
                )
                .frame_indices(epoch)
                .tolist()
                for r in range(world)
            ]
            flat = [x for p in parts for x in p]
            assert len(flat) == len(set(flat)) == (n // world) * world
            padded = [
                EpisodeAwareSampler.from_index(
                    ei,
                    shuffle=True,
                    seed=5,
                    permutation=permutation,
                    order=order,
                    block_size=bs,
                    rank=r,
                    world_size=world,
                )
                .frame_indices(epoch)
                .tolist()
                for r in range(world)
            ]
            assert all(len(p) == math.ceil(n / world) for p in padded)
            flat = [x for p in padded for x in p]
            assert set(flat) == set(range(n)) and len(flat) - n < world


def test_state_dict_from_another_thread_is_never_torn():
    ei = EpisodeIndex.from_lengths([1000] * 50)
    kw = dict(shuffle=True, seed=9, permutation="feistel")
    s = EpisodeAwareSampler.from_index(ei, **kw)
    stop = threading.Event()
    states = []

    def watch():
        while not stop.is_set():
            states.append(s.state_dict())

    t = threading.Thread(target=watch)
    t.start()
    consumed = []
    try:
        for _ in range(3):
            consumed.extend(iter(s))
    finally:
        stop.set()
        t.join()
    assert len(states) > 10
    n = len(s)
    for st_ in states[:: max(1, len(states) // 200)]:
        reached = st_["epoch"] * n + st_["start_index"]
        assert 0 <= reached <= len(consumed)
        fresh = EpisodeAwareSampler.from_index(ei, **kw)
        fresh.load_state_dict(st_)
        nxt = list(iter(fresh))[:3]
        assert nxt == consumed[reached : reached + 3] or reached == len(consumed)


@settings(max_examples=200, deadline=None)
@given(
    key=st.sampled_from(
        [
            "epoch",
            "start_index",
            "global_start",
            "world_size",
            "rank",
            "drop_last",
            "version",
            "seed",
            "fingerprint",
            "permutation",
            "shuffle",
            "num_frames",
        ]
    ),
    value=GARBAGE,
)
def test_node_reset_garbage_is_refused_and_leaves_the_node_unchanged(key, value):
    from episode_sampler import EpisodeSamplerNode

    kw = dict(shuffle=True, seed=3, permutation="feistel", rank=0, world_size=2)
    node = EpisodeSamplerNode(FROM, TO, **kw)
    node.reset()
    head = [node.next() for _ in range(3)]
    state = node.get_state()
    bad = dict(state)
    bad[key] = value
    try:
        node.reset(bad)
    except (ValueError, TypeError) as exc:
        assert key in str(exc), (key, str(exc))
        assert node.get_state() == state  # unchanged, still usable
        full = reference_epoch(episodes_lists(FROM, TO), "frames", None, "feistel", 3, 0)
        assert head + [node.next() for _ in range(4)] == shard(full, 0, 2, False)[:7]
        return
    st_ = node.get_state()
    full = reference_epoch(episodes_lists(FROM, TO), "frames", None, "feistel", 3, st_["epoch"])
    expected = shard(full, 0, 2, False, st_["global_start"])[st_["start_index"] :]
    assert drain_next(node) == expected


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(sorted(ARGS) + ["batch_size"]), value=GARBAGE)
def test_node_constructor_garbage_is_refused_or_exact(name, value):
    from episode_sampler import EpisodeSamplerNode

    kw = dict(ARGS)
    kw[name] = value
    if name == "block_size" and value is not None:
        kw["order"] = "blocks"
    try:
        node = EpisodeSamplerNode(FROM, TO, **kw)
        node.reset()
        got = drain_next(node)
    except (ValueError, TypeError) as exc:
        assert str(exc)
        return
    if name == "batch_size":
        got = [x for b in got for x in b] if value is not None else got
        kw.pop("batch_size")
    for key, default in (("rank", 0), ("world_size", 1)):  # None: discovered from torch.distributed
        if kw[key] is None:
            kw[key] = default
    assert got == _expected_stream(kw)[0][: len(got)] and len(got) >= len(_expected_stream(kw)[0]) - int(
        kw.get("batch_size") or 0
    )
