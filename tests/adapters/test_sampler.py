"""EpisodeAwareSampler: LeRobot parity, orders and permutations against the references, sharding,
resume at every position, epochs and ``set_epoch`` against LeRobot's, validation."""

import itertools
import json
import logging
import math
import random
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from episode_sampler import EpisodeAwareSampler, EpisodeIndex, compute_sampler_state
from tests.helpers.layouts import GAPPED_LAYOUTS, GAPS_FROM, GAPS_TO, PERMUTATIONS, gapped_index, valid_frames
from tests.helpers.reference import (
    LeRobotSamplerModel,
    episodes_lists,
    feistel_reference,
    lerobot_epoch,
    lerobot_indices,
    reference_epoch,
    shard,
)

FROM = [0, 10, 25, 40, 41, 60]
TO = [10, 20, 40, 41, 55, 61]
ORDERS = [("frames", None), ("episodes", None), ("blocks", 1), ("blocks", 4), ("blocks", 7), ("blocks", 100)]


def take(sampler):
    return list(iter(sampler))


# ------------------------------------------------ LeRobot parity
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("drops", [(0, 0), (1, 0), (0, 2), (2, 3)])
@pytest.mark.parametrize("episodes", [None, [0, 2, 3, 5], [5, 1, 1]])
def test_lerobot_parity(shuffle, drops, episodes):
    seed = 1234
    sampler = EpisodeAwareSampler(FROM, TO, episodes, drops[0], drops[1], shuffle=shuffle, seed=seed)
    indices = lerobot_indices(FROM, TO, episodes, *drops)
    assert sampler.indices == indices
    assert len(sampler) == len(indices)
    for epoch in range(3):
        assert take(sampler) == lerobot_epoch(indices, seed, epoch, shuffle)


def test_lerobot_parity_set_epoch_and_large_layout():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 300, size=200)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    sampler = EpisodeAwareSampler(starts, ends, shuffle=True, seed=99, drop_n_first_frames=3)
    indices = lerobot_indices(starts.tolist(), ends.tolist(), None, 3, 0)
    for epoch in (5, 0, 17):
        sampler.set_epoch(epoch)
        assert take(sampler) == lerobot_epoch(indices, 99, epoch)


def test_lerobot_errors_and_warnings(caplog):
    with pytest.raises(ValueError, match="drop_n_first_frames must be >= 0"):
        EpisodeAwareSampler(FROM, TO, drop_n_first_frames=-1)
    with pytest.raises(ValueError, match="drop_n_last_frames must be >= 0"):
        EpisodeAwareSampler(FROM, TO, drop_n_last_frames=-1)
    with pytest.raises(ValueError, match="No valid frames remain"):
        EpisodeAwareSampler(FROM, TO, drop_n_first_frames=10, drop_n_last_frames=10)
    with pytest.raises(ValueError, match="No valid frames remain"):
        EpisodeAwareSampler(FROM, TO, episode_indices_to_use=[])
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        EpisodeAwareSampler(FROM, TO, drop_n_first_frames=1)
    warned = [r for r in caplog.records if "removes all frames" in r.getMessage()]
    assert [r.levelno for r in warned] == [logging.WARNING] * 2
    assert "Episode 3 has 1 frames" in warned[0].getMessage()
    assert "Episode 5 has 1 frames" in warned[1].getMessage()
    with pytest.raises(ValueError, match="same length"):
        EpisodeAwareSampler([0, 5], [5])


def test_absolute_to_relative_idx():
    frames = lerobot_indices(FROM, TO)
    mapping = {f: 1000 + i for i, f in enumerate(frames)}
    seq = np.full(max(TO), -1)
    seq[frames] = [1000 + i for i in range(len(frames))]
    for table in (mapping, seq, seq.tolist()):
        s = EpisodeAwareSampler(FROM, TO, shuffle=True, seed=5, absolute_to_relative_idx=table)
        expected = [mapping[f] for f in lerobot_epoch(frames, 5, 0)]
        assert take(s) == expected
    with pytest.raises(ValueError, match="no entry"):
        EpisodeAwareSampler(FROM, TO, absolute_to_relative_idx={0: 1})
    with pytest.raises(ValueError, match="entries"):
        EpisodeAwareSampler(FROM, TO, absolute_to_relative_idx=[1, 2, 3])
    with pytest.raises(TypeError):
        EpisodeAwareSampler(FROM, TO, absolute_to_relative_idx=3)


# ------------------------------------------------ orders and permutations
@pytest.mark.parametrize("order, block_size", ORDERS)
@pytest.mark.parametrize("permutation", PERMUTATIONS)
@pytest.mark.parametrize("shuffle", [False, True])
def test_orders_match_reference(order, block_size, permutation, shuffle):
    eps = episodes_lists(FROM, TO, drop_first=1)
    s = EpisodeAwareSampler(
        FROM,
        TO,
        drop_n_first_frames=1,
        shuffle=shuffle,
        seed=77,
        permutation=permutation,
        order=order,
        block_size=block_size,
    )
    for epoch in range(3):
        expected = reference_epoch(eps, order, block_size, permutation, 77, epoch, shuffle)
        got = take(s)
        assert got == expected
        assert s.frame_indices(epoch).tolist() == expected
        assert sorted(got) == sorted(s.indices)


def test_episode_and_block_orders_keep_units_together():
    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 40, size=50)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    for permutation in PERMUTATIONS:
        s = EpisodeAwareSampler(
            starts, ends, shuffle=True, seed=1, permutation=permutation, order="blocks", block_size=5
        )
        out = take(s)
        ep = EpisodeIndex.from_bounds(starts, ends).episode_of(out)
        # cut the stream where frames stop being consecutive in one episode: every piece is one block
        pieces, cur = [], [out[0]]
        for a, b, ea, eb in zip(out, out[1:], ep, ep[1:]):
            if b == a + 1 and ea == eb and (b - starts[eb]) % 5 != 0:
                cur.append(b)
            else:
                pieces.append(cur)
                cur = [b]
        pieces.append(cur)
        expected_blocks = sorted(
            tuple(range(a + i, min(a + i + 5, b))) for a, b in zip(starts, ends) for i in range(0, b - a, 5)
        )
        assert sorted(tuple(p) for p in pieces) == expected_blocks


def test_order_argument_errors():
    with pytest.raises(ValueError, match="block_size is required"):
        EpisodeAwareSampler(FROM, TO, order="blocks")
    with pytest.raises(ValueError, match="block_size is only valid"):
        EpisodeAwareSampler(FROM, TO, order="frames", block_size=3)
    with pytest.raises(ValueError, match="order must be one of"):
        EpisodeAwareSampler(FROM, TO, order="random")
    with pytest.raises(ValueError, match="permutation must be one of"):
        EpisodeAwareSampler(FROM, TO, permutation="numpy")
    with pytest.raises(ValueError, match="block_size must be >= 1"):
        EpisodeAwareSampler(FROM, TO, order="blocks", block_size=0)
    with pytest.raises(ValueError, match="seed"):
        EpisodeAwareSampler(FROM, TO, seed=-1)
    with pytest.raises(TypeError, match="shuffle"):
        EpisodeAwareSampler(FROM, TO, shuffle="yes")


# ------------------------------------------------ sharding
@pytest.mark.parametrize("permutation", PERMUTATIONS)
@pytest.mark.parametrize("order, block_size", ORDERS[:4])
@pytest.mark.parametrize("world", [1, 2, 3, 7, 59, 64])
@pytest.mark.parametrize("drop_last", [False, True])
def test_sharding(permutation, order, block_size, world, drop_last):
    n = len(lerobot_indices(FROM, TO))
    if drop_last and world > n:
        with pytest.raises(ValueError, match="world_size"):
            EpisodeAwareSampler(FROM, TO, world_size=world, drop_last=True)
        return
    full = reference_epoch(episodes_lists(FROM, TO), order, block_size, permutation, 3, 1)
    parts = []
    for rank in range(world):
        s = EpisodeAwareSampler(
            FROM,
            TO,
            shuffle=True,
            seed=3,
            permutation=permutation,
            order=order,
            block_size=block_size,
            rank=rank,
            world_size=world,
            drop_last=drop_last,
        )
        s.set_epoch(1)
        got = take(s)
        assert got == shard(full, rank, world, drop_last)
        assert len(got) == len(s) == (n // world if drop_last else math.ceil(n / world))
        parts.append(got)
    flat = [f for p in parts for f in p]
    if drop_last:
        assert len(set(flat)) == len(flat)
    else:
        assert set(flat) == set(full)
        assert len(flat) - len(full) < world


def test_rank_validation():
    with pytest.raises(ValueError, match="rank must be in"):
        EpisodeAwareSampler(FROM, TO, rank=2, world_size=2)
    with pytest.raises(ValueError, match="world_size must be >= 1"):
        EpisodeAwareSampler(FROM, TO, world_size=0)
    with pytest.raises(TypeError, match="rank"):
        EpisodeAwareSampler(FROM, TO, rank=1.0, world_size=2)


# ------------------------------------------------ epochs and iteration
def test_consecutive_passes_advance_and_set_epoch_is_not_double_counted():
    s = EpisodeAwareSampler(FROM, TO, shuffle=True, seed=8)
    indices = s.indices
    assert take(s) == lerobot_epoch(indices, 8, 0)
    assert take(s) == lerobot_epoch(indices, 8, 1)  # no set_epoch needed
    for e in (4, 5, 6):
        s.set_epoch(e)
        assert take(s) == lerobot_epoch(indices, 8, e)
    assert take(s) == lerobot_epoch(indices, 8, 7)


def test_unused_iterators_do_not_skip_epochs():
    # DataLoader worker iterators create sampler iterators they never pull from.
    s = EpisodeAwareSampler(FROM, TO, shuffle=True, seed=8)
    indices = s.indices
    it = iter(s)
    assert s.state_dict()["epoch"] == 0  # nothing consumed yet: still epoch 0
    del it
    iter(s)
    assert take(s) == lerobot_epoch(indices, 8, 0)
    assert s.state_dict()["epoch"] == 1
    assert take(s) == lerobot_epoch(indices, 8, 1)


def test_state_dict_tracks_yielded_items():
    s = EpisodeAwareSampler(FROM, TO, shuffle=True, seed=2, permutation="feistel")
    n = len(s)
    it = iter(s)
    for k in range(n):
        st_ = s.state_dict()
        assert (st_["epoch"], st_["start_index"]) == (0, k)
        next(it)
    assert (s.state_dict()["epoch"], s.state_dict()["start_index"]) == (1, 0)
    with pytest.raises(StopIteration):
        next(it)
    assert (s.state_dict()["epoch"], s.state_dict()["start_index"]) == (1, 0)


def test_state_is_small_plain_json():
    s = EpisodeAwareSampler.from_index(
        EpisodeIndex.from_lengths([10**6] * 10**3), shuffle=True, permutation="feistel", seed=2**64 - 1
    )
    state = s.state_dict()
    text = json.dumps(state)
    assert len(text) <= 512
    assert json.loads(text) == state
    assert all(type(v) in (int, str, bool, type(None)) for v in state.values())
    assert set(state) >= {"version", "epoch", "start_index", "fingerprint", "seed", "permutation", "order"}


# ------------------------------------------------ resume
@pytest.mark.parametrize("permutation", PERMUTATIONS)
@pytest.mark.parametrize("order, block_size", ORDERS)
def test_resume_every_position_json_roundtrip(permutation, order, block_size):
    kw = dict(shuffle=True, seed=11, permutation=permutation, order=order, block_size=block_size)
    ref = EpisodeAwareSampler(FROM, TO, **kw)
    stream = [take(ref) for _ in range(3)]
    flat = [x for ep in stream for x in ep]
    n = len(stream[0])
    for cut in range(0, 3 * n, 5):
        s = EpisodeAwareSampler(FROM, TO, **kw)
        out, it, count = [], iter(s), 0
        while count < cut:
            try:
                out.append(next(it))
                count += 1
            except StopIteration:
                it = iter(s)
        state = json.loads(json.dumps(s.state_dict()))
        fresh = EpisodeAwareSampler(FROM, TO, **kw)
        fresh.load_state_dict(state)
        rest = []
        while len(out) + len(rest) < 3 * n:
            rest.extend(take(fresh))
        assert out + rest[: 3 * n - len(out)] == flat


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 12), min_size=1, max_size=8),
    seed=st.integers(0, 2**64 - 1),
    permutation=st.sampled_from(PERMUTATIONS),
    order=st.sampled_from(["frames", "episodes", "blocks"]),
    block_size=st.integers(1, 5),
    world=st.integers(1, 4),
    drop_last=st.booleans(),
)
def test_resume_property(lengths, seed, permutation, order, block_size, world, drop_last):
    if sum(lengths) == 0 or (drop_last and sum(lengths) < world):
        return
    ei = EpisodeIndex.from_lengths(lengths)
    kw = dict(
        shuffle=True,
        seed=seed,
        permutation=permutation,
        order=order,
        block_size=block_size if order == "blocks" else None,
        drop_last=drop_last,
        world_size=world,
    )
    eps = [list(range(a, b)) for a, b in zip(ei.starts.tolist(), ei.ends.tolist()) if b > a]
    epochs = [reference_epoch(eps, order, kw["block_size"], permutation, seed, e) for e in range(3)]
    for rank in range(world):
        flat = [x for e in epochs for x in shard(e, rank, world, drop_last)]
        for cut in range(len(flat)):
            s = EpisodeAwareSampler.from_index(ei, rank=rank, **kw)
            e, k = divmod(cut, len(s))
            s.load_state_dict({"epoch": e, "start_index": k})
            fresh = EpisodeAwareSampler.from_index(ei, rank=rank, **kw)
            fresh.load_state_dict(s.state_dict())
            got = []
            while len(got) < len(flat) - cut:
                got.extend(take(fresh))
            assert got == flat[cut:]


def test_bare_lerobot_state_loads():
    s = EpisodeAwareSampler(FROM, TO, shuffle=True, seed=4)
    s.load_state_dict({"epoch": 2, "start_index": 5})
    assert take(s) == lerobot_epoch(s.indices, 4, 2)[5:]
    assert take(s) == lerobot_epoch(s.indices, 4, 3)
    # start_index == epoch length: as LeRobot's, one pass that yields nothing, then epoch 3
    s.load_state_dict({"epoch": 2, "start_index": len(s)})
    assert (s.state_dict()["epoch"], s.state_dict()["start_index"]) == (2, len(s))
    assert take(s) == []
    assert take(s) == lerobot_epoch(s.indices, 4, 3)


def test_state_refused_with_field_named():
    kw = dict(shuffle=True, seed=4, permutation="feistel")
    s = EpisodeAwareSampler(FROM, TO, **kw)
    good = s.state_dict()
    others = {
        "fingerprint": EpisodeAwareSampler(FROM, [9] + TO[1:], **kw),
        "seed": EpisodeAwareSampler(FROM, TO, shuffle=True, seed=5, permutation="feistel"),
        "permutation": EpisodeAwareSampler(FROM, TO, shuffle=True, seed=4),
        "order": EpisodeAwareSampler(FROM, TO, order="episodes", **kw),
        "shuffle": EpisodeAwareSampler(FROM, TO, shuffle=False, seed=4, permutation="feistel"),
    }
    for field, other in others.items():
        with pytest.raises(ValueError, match=f"'{field}'"):
            other.load_state_dict(good)
    blocks3 = EpisodeAwareSampler(FROM, TO, order="blocks", block_size=3, **kw).state_dict()
    with pytest.raises(ValueError, match="'block_size'"):
        EpisodeAwareSampler(FROM, TO, order="blocks", block_size=4, **kw).load_state_dict(blocks3)

    def bad(**changes):
        st_ = dict(good)
        st_.update(changes)
        return st_

    cases = [
        (bad(version=99), ValueError, "'version'"),
        (bad(start_index=-1), ValueError, "start_index"),
        (bad(start_index=len(s) + 1), ValueError, "start_index"),
        (bad(start_index="3"), TypeError, "start_index"),
        (bad(epoch=1.5), TypeError, "epoch"),
        (bad(epoch=True), TypeError, "epoch"),
        (bad(seed=True), ValueError, "'seed'"),
        (bad(world_size=0), ValueError, "world_size"),
        (bad(rank=3, world_size=2), ValueError, "rank"),
        (bad(global_start=10**9), ValueError, "global_start"),
        (bad(extra=1), ValueError, "unknown keys"),
        ({k: v for k, v in good.items() if k != "seed"}, ValueError, "missing keys"),
        ({"epoch": 1}, ValueError, "missing keys"),
        ([1, 2], TypeError, "dict"),
        ({"epoch": -1, "start_index": 0}, ValueError, "epoch"),
    ]
    for state, exc, match in cases:
        with pytest.raises(exc, match=match):
            s.load_state_dict(state)
    s.load_state_dict(good)  # still usable


def test_torch_save_roundtrip(tmp_path):
    s = EpisodeAwareSampler(FROM, TO, shuffle=True, seed=4, permutation="feistel")
    it = iter(s)
    head = [next(it) for _ in range(7)]
    torch.save(s.state_dict(), tmp_path / "s.pt")
    fresh = EpisodeAwareSampler(FROM, TO, shuffle=True, seed=4, permutation="feistel")
    fresh.load_state_dict(torch.load(tmp_path / "s.pt"))
    assert head + take(fresh) == s.frame_indices(0).tolist()


# ------------------------------------------------ compute_sampler_state
@pytest.mark.parametrize(
    "num_frames, batch_size, procs", [(100, 8, 1), (100, 8, 3), (7, 10, 2), (1000, 1, 4)]
)
def test_compute_sampler_state_formula(num_frames, batch_size, procs):
    per_epoch = math.ceil(math.ceil(num_frames / batch_size) / procs)
    for step in range(0, 5 * per_epoch + 3):
        epoch, into = divmod(step, per_epoch)
        expected = {"epoch": epoch, "start_index": min(into * batch_size * procs, num_frames)}
        assert compute_sampler_state(step, num_frames, batch_size, procs) == expected


def test_compute_sampler_state_errors():
    with pytest.raises(ValueError, match="step"):
        compute_sampler_state(-1, 10, 2, 1)
    for args in [(0, 0, 2, 1), (0, 10, 0, 1), (0, 10, 2, 0)]:
        with pytest.raises(ValueError):
            compute_sampler_state(*args)
    with pytest.raises(TypeError):
        compute_sampler_state(1.0, 10, 2, 1)


def test_frame_indices_bounds():
    s = EpisodeAwareSampler(FROM, TO, shuffle=True, permutation="feistel", world_size=2, rank=1)
    full = s.frame_indices(3)
    assert s.frame_indices(3, 4, 9).tolist() == full[4:9].tolist()
    with pytest.raises(ValueError, match="stop"):
        s.frame_indices(3, 2, len(s) + 1)
    with pytest.raises(ValueError, match="epoch"):
        s.frame_indices(-1)


# ------------------------------------------------ scale
def test_scale_feistel_1e12_frames_resume_near_end_small_memory():
    import tracemalloc

    tracemalloc.start()
    try:
        index = EpisodeIndex.from_lengths(np.full(10**6, 10**6, dtype=np.int64))
        s = EpisodeAwareSampler.from_index(index, shuffle=True, seed=7, permutation="feistel")
        n = len(s)
        assert n == 10**12
        s.load_state_dict({"epoch": 3, "start_index": n - 5})
        tail = list(iter(s))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    assert len(tail) == 5

    assert tail == [feistel_reference(n, 7, 3, p) for p in range(n - 5, n)]  # contiguous layout from 0
    assert s.state_dict()["epoch"] == 4 and s.state_dict()["start_index"] == 0


def test_drop_last_changed_at_same_world_size_lands_on_next_epoch():
    # 41 frames, 2 ranks: saved with drop_last=False (21 per rank) after 20 samples, loaded with
    # drop_last=True (20 per rank): that epoch is over for the loading rank.
    ei = EpisodeIndex.from_lengths([41])
    saver = EpisodeAwareSampler.from_index(ei, shuffle=True, permutation="feistel", world_size=2)
    saver.load_state_dict({"epoch": 0, "start_index": 20})
    loader = EpisodeAwareSampler.from_index(
        ei, shuffle=True, permutation="feistel", world_size=2, drop_last=True
    )
    loader.load_state_dict(saver.state_dict())
    assert (loader.state_dict()["epoch"], loader.state_dict()["start_index"]) == (1, 0)
    assert take(loader) == loader.frame_indices(1).tolist()


def test_randperm_refuses_absurd_sizes_up_front():
    with pytest.raises(ValueError, match="use permutation='feistel'"):
        EpisodeAwareSampler.from_index(EpisodeIndex.from_lengths([10**12]), shuffle=True)
    EpisodeAwareSampler.from_index(EpisodeIndex.from_lengths([10**12]), shuffle=False)  # no permutation


def test_zero_dim_tensor_scalars_accepted():
    a = EpisodeAwareSampler(
        torch.tensor(FROM),
        torch.tensor(TO),
        drop_n_first_frames=torch.tensor(1),
        shuffle=True,
        seed=torch.tensor(3),
    )
    b = EpisodeAwareSampler(FROM, TO, drop_n_first_frames=1, shuffle=True, seed=3)
    assert take(a) == take(b)
    a.load_state_dict({"epoch": torch.tensor(2), "start_index": torch.tensor(4)})
    b.load_state_dict({"epoch": 2, "start_index": 4})
    assert take(a) == take(b)
    with pytest.raises(TypeError):
        EpisodeAwareSampler(FROM, TO, seed=torch.tensor(1.5))


def test_two_cursors_one_epoch_apart_share_the_cache():
    s = EpisodeAwareSampler.from_index(EpisodeIndex.from_lengths([50, 50]), shuffle=True)
    order = s.sharded_order.order
    t0 = order.epoch_table(0)
    t1 = order.epoch_table(1)
    assert order.epoch_table(0) is t0 and order.epoch_table(1) is t1
    order.epoch_table(2)
    assert order.epoch_table(1) is t1  # most recently used survives, epoch 0 is dropped
    assert order.epoch_table(0) is not t0


def test_relabel_mapping_with_float_keys_is_refused():
    frames = lerobot_indices(FROM, TO)
    with pytest.raises(TypeError, match="absolute_to_relative_idx keys"):
        EpisodeAwareSampler(FROM, TO, absolute_to_relative_idx={float(f): f for f in frames})


def test_dropped_episode_warning_names_the_episode_id(caplog):
    ei = EpisodeIndex.from_episode_column([7, 7, 7, 3, 9, 9])
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        ei.select(drop_first=1)
    assert "Episode 3 has 1 frames" in caplog.text


def test_iterators_created_together_take_consecutive_epochs_in_pull_order():
    ref = EpisodeAwareSampler(FROM, TO, shuffle=True, seed=1)
    e0, e1 = lerobot_epoch(ref.indices, 1, 0), lerobot_epoch(ref.indices, 1, 1)
    s = EpisodeAwareSampler(FROM, TO, shuffle=True, seed=1)
    it1, it2 = iter(s), iter(s)
    assert list(it1) == e0 and list(it2) == e1
    s = EpisodeAwareSampler(FROM, TO, shuffle=True, seed=1)
    it1, it2 = iter(s), iter(s)
    assert list(it2) == e0 and list(it1) == e1


# ------------------------------------------------ epochs against LeRobot's
# ``set_epoch`` keeps the position, the restore guard, the edges.
EPOCH_FROM, EPOCH_TO = GAPS_FROM[:4], GAPS_TO[:4]  # 9 + 15 + 6 + 9 = 39 frames
SEED = 5
INDICES = lerobot_indices(EPOCH_FROM, EPOCH_TO)
N = len(INDICES)


def make(**kw) -> EpisodeAwareSampler:
    return EpisodeAwareSampler(EPOCH_FROM, EPOCH_TO, shuffle=True, seed=SEED, **kw)


def test_set_epoch_keeps_the_loaded_start_index_as_lerobot() -> None:
    # the synced LeRobot flow: load the checkpoint's state, then set_epoch(state's epoch) every pass
    for policy in ("keep_resumed", "follow"):
        s = make(set_epoch_policy=policy)
        s.load_state_dict({"epoch": 3, "start_index": 7})
        s.set_epoch(3)
        assert list(iter(s)) == lerobot_epoch(INDICES, SEED, 3)[7:]
        s.set_epoch(4)
        assert list(iter(s)) == lerobot_epoch(INDICES, SEED, 4)
    # a forward set_epoch keeps the position too (LeRobot's set_epoch only sets the epoch)
    s = make()
    s.load_state_dict({"epoch": 1, "start_index": 4})
    s.set_epoch(6)
    assert s.state_dict()["epoch"] == 6 and s.state_dict()["start_index"] == 4
    assert list(iter(s)) == lerobot_epoch(INDICES, SEED, 6)[4:]


def test_backward_set_epoch_after_a_restore_is_ignored_with_one_warning(caplog) -> None:
    # accelerate's plain flow: every pass calls set_epoch(pass counter restarting at 0)
    s = make()
    s.load_state_dict({"epoch": 2, "start_index": 9})
    got = []
    with caplog.at_level(logging.WARNING, logger="episode_sampler.sampler"):
        for counter in range(3):
            s.set_epoch(counter)
            got.append(list(iter(s)))
    warned = [r.getMessage() for r in caplog.records if "ignoring set_epoch" in r.getMessage()]
    assert len(warned) == 1  # once per sampler
    assert re.search(r"ignoring set_epoch\(0\) after a restore.*epoch 2", warned[0])
    assert got == [lerobot_epoch(INDICES, SEED, 2)[9:], lerobot_epoch(INDICES, SEED, 3),
                   lerobot_epoch(INDICES, SEED, 4)]  # fmt: skip
    # "follow" obeys, exactly as LeRobot's sampler (and drags the resume back to epoch 0)
    caplog.clear()
    f = make(set_epoch_policy="follow")
    f.load_state_dict({"epoch": 2, "start_index": 9})
    f.set_epoch(0)
    assert not caplog.records
    assert list(iter(f)) == lerobot_epoch(INDICES, SEED, 0)[9:]


def test_without_a_restore_set_epoch_is_lerobots(caplog) -> None:
    s = make()
    first = list(iter(s))
    list(iter(s))
    with caplog.at_level(logging.WARNING):
        s.set_epoch(0)  # backwards, but nothing was restored: obeyed
    assert not caplog.records
    assert list(iter(s)) == first


def test_set_epoch_while_an_iterator_is_alive_matches_lerobot() -> None:
    s, ref = make(), LeRobotSamplerModel(INDICES, SEED)
    it, rit = iter(s), iter(ref)
    assert [next(it) for _ in range(5)] == [next(rit) for _ in range(5)]
    s.set_epoch(7)
    ref.set_epoch(7)
    assert s.state_dict()["epoch"] == ref.state_dict()["epoch"] == 7
    assert list(it) == list(rit)  # the running pass finishes its own epoch
    assert list(iter(s)) == list(iter(ref)) == lerobot_epoch(INDICES, SEED, 7)


def test_lazy_binding_differs_from_lerobot_only_for_unpulled_iterators() -> None:
    # documented difference: LeRobot binds the epoch at iter(), we at the first next()
    s, ref = make(), LeRobotSamplerModel(INDICES, SEED)
    it, rit = iter(s), iter(ref)
    s.set_epoch(4)
    ref.set_epoch(4)
    assert list(it) == lerobot_epoch(INDICES, SEED, 4)  # ours: the pass picks up set_epoch
    assert list(rit) == lerobot_epoch(INDICES, SEED, 0)  # LeRobot's: already bound to epoch 0


@pytest.mark.parametrize("seed", range(30))
def test_random_call_sequences_match_lerobot(seed: int) -> None:
    """Without unpulled iterators, ``set_epoch_policy="follow"`` is LeRobot's sampler call for call."""
    rng = random.Random(seed)
    s, ref = make(set_epoch_policy="follow"), LeRobotSamplerModel(INDICES, SEED)
    for _ in range(12):
        op = rng.choice(["pass", "partial", "set_epoch", "load"])
        if op == "pass":
            assert list(iter(s)) == list(iter(ref))
        elif op == "partial":  # pull some, then state_dict (LeRobot reports the next pass eagerly)
            k = rng.randrange(1, N)
            it, rit = iter(s), iter(ref)
            assert list(itertools.islice(it, k)) == list(itertools.islice(rit, k))
            assert list(it) == list(rit)
        elif op == "set_epoch":
            e = rng.randrange(0, 6)
            s.set_epoch(e)
            ref.set_epoch(e)
        else:
            st = {"epoch": rng.randrange(0, 6), "start_index": rng.choice([0, 1, N // 2, N - 1, N])}
            s.load_state_dict(st)
            ref.load_state_dict(st)
        assert {k: s.state_dict()[k] for k in ("epoch", "start_index")} == ref.state_dict()


def test_bare_state_at_the_epoch_length_gives_an_empty_pass_then_the_next_epoch() -> None:
    for world in (1, 2, 3):
        ranks = [make(rank=r, world_size=world) for r in range(world)]
        for s in ranks:
            s.load_state_dict({"epoch": 4, "start_index": len(s)})
            again = make(rank=s.rank, world_size=world)
            again.load_state_dict(s.state_dict())  # the full state of that empty pass reads the same
            assert list(iter(s)) == [] and list(iter(again)) == []
            assert list(iter(s)) == list(iter(again)) == s.frame_indices(5).tolist()


def test_every_epoch_set_epoch_accepts_writes_a_state_that_loads() -> None:
    last = 2**62 - 1
    s = make(permutation="feistel")
    s.set_epoch(last)
    assert sorted(iter(s)) == sorted(INDICES)
    state = s.state_dict()
    assert state["epoch"] == 2**62
    t = make(permutation="feistel")
    t.load_state_dict(state)  # loads
    assert t.state_dict() == state
    with pytest.raises(ValueError, match=r"beyond the last epoch this sampler runs"):
        next(iter(t))
    with pytest.raises(ValueError, match="epoch must be <="):
        s.set_epoch(2**62)
    with pytest.raises(ValueError, match="set_epoch_policy must be one of"):
        make(set_epoch_policy="ignore")


# ------------------------------------------------ frames against the brute-force reference
# (formerly run against the compiled kernel and the numpy fallback; numpy is the only path now)
def _expected_rank_frames(index, seed, epoch, world, rank, n_per_rank, shuffle=True):
    frames = valid_frames(index)
    n = len(frames)
    out = []
    for k in range(n_per_rank):
        g = (rank + k * world) % n
        u = feistel_reference(n, seed, epoch, g) if shuffle else g
        out.append(frames[u])
    return out


@pytest.mark.parametrize("name", sorted(GAPPED_LAYOUTS))
@pytest.mark.parametrize("world", [1, 3])
def test_sampler_frames_match_reference(name, world):
    index = gapped_index(*GAPPED_LAYOUTS[name])
    n = index.num_frames
    for rank in range(world):
        s = EpisodeAwareSampler(
            index.starts, index.ends, shuffle=True, seed=9, permutation="feistel", rank=rank, world_size=world
        )
        expect = _expected_rank_frames(index, 9, 2, world, rank, len(s))
        assert s.frame_indices(2).tolist() == expect
        s.set_epoch(2)
        assert list(s) == expect
        assert len(expect) == -(-n // world)


def test_unshuffled_frames_match_reference():
    index = gapped_index(*GAPPED_LAYOUTS["regular"])
    s = EpisodeAwareSampler(
        index.starts, index.ends, shuffle=False, permutation="feistel", world_size=2, rank=1
    )
    assert list(s) == _expected_rank_frames(index, 0, 0, 2, 1, len(s), shuffle=False)


def test_randperm_runs_match_lerobot_order():
    """permutation="randperm": the rank's run gathers LeRobot's torch.randperm order."""
    from episode_sampler.core.permutation import randperm_seed

    index = gapped_index(*GAPPED_LAYOUTS["regular"])
    frames = valid_frames(index)
    n = len(frames)
    for world, rank in ((1, 0), (3, 2)):
        s = EpisodeAwareSampler(
            index.starts,
            index.ends,
            shuffle=True,
            seed=5,
            permutation="randperm",
            world_size=world,
            rank=rank,
        )
        order = torch.randperm(n, generator=torch.Generator().manual_seed(randperm_seed(5, 4))).tolist()
        expect = [frames[order[(rank + k * world) % n]] for k in range(len(s))]
        assert s.frame_indices(4).tolist() == expect


def test_large_epoch_matches_reference():
    """A whole epoch of 1,050,000 frames equals the reference at sampled points."""
    index = gapped_index([1500] * 700, [1] * 700)
    s = EpisodeAwareSampler(index.starts, index.ends, shuffle=True, seed=3, permutation="feistel")
    got = s.frame_indices(1)
    frames = valid_frames(index)
    n = len(frames)
    assert got.size == n and np.array_equal(np.sort(got), np.asarray(frames))
    check = list(range(0, n, 9973)) + [n - 2, n - 1]
    assert got[check].tolist() == [frames[feistel_reference(n, 3, 1, k)] for k in check]
