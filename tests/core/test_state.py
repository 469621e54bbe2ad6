"""State format version 2: the pass bits, the relabel fingerprint, the v1 and bare LeRobot readings,
and the exact failing snippets of issue #9 as regressions."""

from __future__ import annotations

import json

import pytest
from torchdata.nodes import IterableWrapper, Loader, MultiNodeWeightedSampler, StopCriteria

from episode_sampler import EpisodeAwareSampler
from episode_sampler.core.state import STATE_KEYS, STATE_VERSION, V1_STATE_KEYS
from episode_sampler.node import EpisodeSamplerNode
from tests.helpers.drain import drain_next

FROM, TO = [0, 5, 12], [5, 12, 20]  # 20 frames
KW = dict(shuffle=True, seed=3)


def reference(epoch: int) -> list[int]:
    """The sampler's stream for ``epoch`` (its own order function, pinned against LeRobot elsewhere)."""
    return EpisodeAwareSampler(FROM, TO, **KW).frame_indices(epoch).tolist()


def test_state_after_last_item_is_exhausted_and_restores_as_exhausted():
    node = EpisodeSamplerNode(FROM, TO, **KW)
    node.reset(None)
    items = [node.next() for _ in range(20)]
    assert items == reference(0)
    state = json.loads(json.dumps(node.get_state()))
    assert state["version"] == STATE_VERSION == 2
    assert (state["epoch"], state["start_index"], state["exhausted"], state["pulled"]) == (1, 0, True, True)
    fresh = EpisodeSamplerNode(FROM, TO, **KW)
    fresh.reset(state)
    with pytest.raises(StopIteration):  # as torchdata's IterableWrapper restored at its end
        fresh.next()
    assert fresh.get_state() == node.get_state()
    fresh.reset(None)
    node.reset(None)
    assert drain_next(fresh) == drain_next(node) == reference(1)


def test_two_resets_in_a_row_never_skip_an_epoch():
    node = EpisodeSamplerNode(FROM, TO, **KW)
    node.reset(None)
    node.reset(None)
    assert drain_next(node) == reference(0)
    node.reset(None)
    node.reset(None)
    assert drain_next(node) == reference(1)
    # after a restore too
    state = node.get_state()
    fresh = EpisodeSamplerNode(FROM, TO, **KW)
    fresh.reset(state)
    fresh.reset(None)
    fresh.reset(None)
    assert drain_next(fresh) == reference(2)


def test_pulled_survives_a_restore():
    node = EpisodeSamplerNode(FROM, TO, **KW)
    node.reset(None)
    node.next()
    state = node.get_state()
    assert state["pulled"] is True and state["exhausted"] is False
    fresh = EpisodeSamplerNode(FROM, TO, **KW)
    fresh.reset(state)
    assert fresh.get_state() == state
    fresh.reset(None)
    assert drain_next(fresh) == reference(1)
    # not pulled: reset(None) keeps the position
    unpulled = EpisodeSamplerNode(FROM, TO, **KW)
    unpulled.reset(None)
    s0 = unpulled.get_state()
    assert s0["pulled"] is False
    again = EpisodeSamplerNode(FROM, TO, **KW)
    again.reset(s0)
    again.reset(None)
    assert drain_next(again) == reference(0)


def test_sampler_state_keeps_lerobot_meaning():
    s = EpisodeAwareSampler(FROM, TO, **KW)
    it = iter(s)
    for _ in range(20):
        next(it)
    state = s.state_dict()
    assert (state["epoch"], state["start_index"]) == (1, 0)
    node = EpisodeSamplerNode(FROM, TO, **KW)
    node.reset(None)
    for _ in range(20):
        node.next()
    assert (node.get_state()["epoch"], node.get_state()["start_index"]) == (1, 0)


def test_bare_lerobot_states():
    node = EpisodeSamplerNode(FROM, TO, **KW)
    node.reset({"epoch": 2, "start_index": 5})
    assert drain_next(node) == reference(2)[5:]
    node.reset(None)
    assert drain_next(node) == reference(3)
    # start_index == len: one pass that yields nothing, then the next epoch
    node.reset({"epoch": 2, "start_index": 20})
    assert drain_next(node) == []
    node.reset(None)
    assert drain_next(node) == reference(3)
    with pytest.raises(ValueError, match="start_index"):
        node.reset({"epoch": 2, "start_index": 21})


def v1_state(epoch: int, start: int) -> dict:
    """A state exactly as episode-sampler 0.1.0 wrote it."""
    s = EpisodeAwareSampler(FROM, TO, **KW).state_dict()
    v1 = {k: s[k] for k in V1_STATE_KEYS}
    v1.update(version=1, epoch=epoch, start_index=start)
    return v1


def test_version_1_states_load_as_documented():
    assert set(v1_state(0, 0)) == set(V1_STATE_KEYS) and "relabel" in STATE_KEYS
    node = EpisodeSamplerNode(FROM, TO, **KW)
    node.reset(v1_state(1, 7))  # a fresh, not pulled pass at (1, 7)
    st = node.get_state()
    assert (st["epoch"], st["start_index"], st["exhausted"], st["pulled"]) == (1, 7, False, False)
    assert drain_next(node) == reference(1)[7:]
    node.reset(v1_state(1, 7))
    node.reset(None)  # not pulled: stays
    assert drain_next(node) == reference(1)[7:]
    s = EpisodeAwareSampler(FROM, TO, **KW)
    s.load_state_dict(v1_state(2, 3))
    assert list(iter(s)) == reference(2)[3:]
    bad = v1_state(0, 0)
    bad["seed"] = 4
    with pytest.raises(ValueError, match="'seed' differs"):
        node.reset(bad)
    with pytest.raises(ValueError, match="missing keys"):
        node.reset({k: v for k, v in v1_state(0, 0).items() if k != "order"})
    with pytest.raises(ValueError, match="unknown keys"):
        node.reset({**v1_state(0, 0), "exhausted": False})


def test_bad_pass_bits_are_refused():
    node = EpisodeSamplerNode(FROM, TO, **KW)
    node.reset(None)
    good = node.get_state()
    for bad, field in [
        ({**good, "exhausted": 1}, "exhausted"),
        ({**good, "pulled": "no"}, "pulled"),
        ({**good, "exhausted": True, "pulled": True, "start_index": 3}, "exhausted"),
        ({**good, "exhausted": True, "pulled": True, "epoch": 0}, "exhausted"),
        ({**good, "version": 3}, "version"),
        ({k: v for k, v in good.items() if k != "pulled"}, "missing keys"),
    ]:
        with pytest.raises(ValueError, match=field):
            node.reset(bad)
    assert node.get_state() == good


@pytest.mark.parametrize("make", ["sampler", "node"])
def test_relabel_table_is_part_of_the_identity(make):
    table = list(range(1000, 1020))
    same_as_mapping = {i: 1000 + i for i in range(20)}
    other = list(range(2000, 2020))

    def build(rel):
        if make == "sampler":
            return EpisodeAwareSampler(FROM, TO, absolute_to_relative_idx=rel, **KW)
        return EpisodeSamplerNode(FROM, TO, absolute_to_relative_idx=rel, **KW)

    def state_of(obj):
        return obj.state_dict() if make == "sampler" else obj.get_state()

    def load(obj, st):
        return obj.load_state_dict(st) if make == "sampler" else obj.reset(st)

    plain, relabelled = build(None), build(table)
    assert state_of(plain)["relabel"] is None
    assert isinstance(state_of(relabelled)["relabel"], str)
    with pytest.raises(ValueError, match="'relabel' differs.*absolute_to_relative_idx"):
        load(relabelled, state_of(plain))
    with pytest.raises(ValueError, match="'relabel' differs"):
        load(plain, state_of(relabelled))
    with pytest.raises(ValueError, match="'relabel' differs"):
        load(build(other), state_of(relabelled))
    load(build(same_as_mapping), state_of(relabelled))  # same effect on the layout: same identity
    assert state_of(build(same_as_mapping))["relabel"] == state_of(relabelled)["relabel"]


def test_every_written_state_loads_at_the_last_epoch():
    node = EpisodeSamplerNode([0], [3])
    node.set_epoch(2**62)
    node.reset(None)
    assert len(drain_next(node)) == 3
    state = node.get_state()
    assert (state["epoch"], state["exhausted"]) == (2**62 + 1, True)
    fresh = EpisodeSamplerNode([0], [3])
    fresh.reset(state)
    assert drain_next(fresh) == []


# ------------------------------------------------------------------ issue #9's snippets, as regressions
def _graph(native: bool):
    a = IterableWrapper(range(4)) if native else EpisodeSamplerNode([0], [4])
    b = IterableWrapper(range(100, 103)) if native else EpisodeSamplerNode([100], [103])
    return MultiNodeWeightedSampler(
        {"a": a, "b": b},
        {"a": 0.5, "b": 0.5},
        StopCriteria.ALL_DATASETS_EXHAUSTED,
        rank=0,
        world_size=1,
        seed=0,
    )


@pytest.mark.parametrize("native", [True, False])
def test_issue_snippet_mixture_restore(native):
    full = list(Loader(_graph(native)))
    loader = Loader(_graph(native))
    it = iter(loader)
    [next(it) for _ in range(5)]
    restored = Loader(_graph(native))
    restored.load_state_dict(loader.state_dict())
    assert full[5:] == [101, 102]
    assert list(restored) == full[5:]


@pytest.mark.parametrize("native", [True, False])
def test_issue_snippet_loader_without_restart(native):
    """A state saved right after the epoch's last item restores as [] inside the interrupted loop."""

    def make():
        return IterableWrapper(range(5)) if native else EpisodeSamplerNode([0], [5])

    loader = Loader(make(), restart_on_stop_iteration=False)
    it = iter(loader)
    [next(it) for _ in range(5)]
    state = loader.state_dict()
    rest = list(it)
    following = list(loader)
    restored = Loader(make(), restart_on_stop_iteration=False)
    restored.load_state_dict(state)
    assert list(restored) == rest == []
    assert list(restored) == following == list(range(5))


def test_load_state_dict_carries_only_the_position_into_a_new_loader():
    node = EpisodeSamplerNode(FROM, TO, **KW)
    node.reset(None)
    [node.next() for _ in range(6)]
    state = node.get_state()
    assert state["pulled"] is True
    fresh = EpisodeSamplerNode(FROM, TO, **KW, batch_size=4)  # another graph: batched
    fresh.load_state_dict(state)
    loader = Loader(fresh)
    assert [x for b in loader for x in b] == reference(0)[6:]
    assert [x for b in loader for x in b] == reference(1)
    # an exhausted state: one empty pass, then the next epoch (LeRobot's reading)
    [node.next() for _ in range(14)]
    end = node.get_state()
    other = EpisodeSamplerNode(FROM, TO, **KW)
    other.load_state_dict(end)
    assert drain_next(other) == []
    assert list(Loader(other)) == reference(1)


def test_cli_inspect_describes_the_pass_bits_and_relabel(tmp_path, capsys):
    from episode_sampler.cli import main

    node = EpisodeSamplerNode(FROM, TO, absolute_to_relative_idx=list(range(20)), **KW)
    node.reset(None)
    for _ in range(20):
        node.next()
    path = tmp_path / "state.json"
    path.write_text(json.dumps(node.get_state()))
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "version 2" in out and "epoch 0 was finished" in out
    assert f"fingerprint {node.get_state()['relabel']}" in out
    path.write_text(json.dumps({**node.get_state(), "pulled": "yes"}))
    assert main(["inspect", str(path)]) != 0
    assert "'pulled'" in capsys.readouterr().err


def test_relabel_fingerprint_is_the_digest_of_the_relabelled_valid_frames():
    import hashlib

    from episode_sampler.core.cursor import _Relabel
    from episode_sampler.core.layout import EpisodeIndex

    index = EpisodeIndex.from_bounds([0, 10, 30, 31], [7, 25, 30, 40])  # one empty episode
    table = [(7 * i + 3) % 101 for i in range(40)]
    valid = [f for a, b in [(0, 7), (10, 25), (31, 40)] for f in range(a, b)]  # brute force
    brute = hashlib.blake2b(b"episode-sampler relabel v1", digest_size=16)
    for f in valid:
        brute.update(table[f].to_bytes(8, "little", signed=True))
    mapping = {f: table[f] for f in valid}
    assert _Relabel.make(table, index).fingerprint(index) == brute.hexdigest()
    assert _Relabel.make(mapping, index).fingerprint(index) == brute.hexdigest()


def test_an_epoch_shorter_than_a_dropped_batch_is_over_only_after_its_stop_iteration():
    node = EpisodeSamplerNode([0], [2], batch_size=3, drop_last_batch=True)  # every pass yields nothing
    node.reset(None)
    node.reset(None)  # not pulled: no epoch skipped
    state = node.get_state()
    assert (state["epoch"], state["exhausted"], state["pulled"]) == (0, False, False)
    with pytest.raises(StopIteration):
        node.next()
    state = node.get_state()
    assert (state["epoch"], state["exhausted"]) == (1, True)
    node.reset(None)
    assert node.get_state()["epoch"] == 1


# A state exactly as episode-sampler 0.1.0 (commit 781c4ca^) wrote it, and what 0.1.0 yielded after it.
V010_KW = dict(shuffle=True, seed=12345, permutation="feistel", drop_n_first_frames=1)
V010_BOUNDS = ([0, 7, 30, 30, 41], [5, 19, 30, 38, 50])
V010_STATE = (
    '{"version": 1, "epoch": 0, "start_index": 6, "global_start": 0, "world_size": 1, "rank": 0, '
    '"drop_last": false, "fingerprint": "8b84cb0a2970f18ce9ea3e711f528381", "num_frames": 30, '
    '"seed": 12345, "shuffle": true, "permutation": "feistel", "order": "frames", "block_size": null}'
)
V010_REST = [33, 35, 9, 34, 8, 4, 2, 47, 11, 17, 37, 45, 14, 3, 46, 1, 15, 10, 13, 31, 18, 16, 49, 48]
V010_EPOCH3_FROM_4 = [47, 14, 11, 46, 12, 18, 13, 35, 15, 34, 48, 33, 2, 43, 9, 8, 3, 4, 32, 49, 31, 45, 17]


def test_a_state_written_by_0_1_0_resumes_where_0_1_0_did():
    s = EpisodeAwareSampler(*V010_BOUNDS, **V010_KW)
    s.load_state_dict(json.loads(V010_STATE))
    assert list(iter(s)) == V010_REST
    s.load_state_dict({**json.loads(V010_STATE), "epoch": 3, "start_index": 4})
    assert list(iter(s))[: len(V010_EPOCH3_FROM_4)] == V010_EPOCH3_FROM_4
    other_layout = EpisodeAwareSampler(V010_BOUNDS[0], [5, 19, 30, 38, 51], **V010_KW)
    with pytest.raises(ValueError, match="'fingerprint' differs.*another dataset layout"):
        other_layout.load_state_dict(json.loads(V010_STATE))


def test_identity_fields_compare_by_value_and_kind():
    import types

    import numpy as np

    s = EpisodeAwareSampler(FROM, TO, **KW)
    good = s.state_dict()
    numpy_typed = {
        **good,
        "version": np.int64(2),
        "seed": np.uint64(3),
        "num_frames": np.int32(20),
        "shuffle": np.bool_(True),
    }
    s.load_state_dict(numpy_typed)  # a state that went through numpy (e.g. torch.save of arrays)
    s.load_state_dict(types.MappingProxyType(dict(good, start_index=4)))  # any mapping
    assert list(iter(s)) == reference(0)[4:]
    for field, value in [
        ("shuffle", 1),  # an int is not a bool
        ("seed", True),  # a bool is not an int
        ("seed", 3.0),
        ("num_frames", "20"),
        ("fingerprint", good["fingerprint"].upper()),
        ("block_size", 0),
        ("relabel", ""),
    ]:
        with pytest.raises(ValueError, match=f"state field '{field}' differs"):
            s.load_state_dict({**good, field: value})
