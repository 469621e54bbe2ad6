"""Epoch handling against LeRobot's: ``set_epoch`` keeps the position, the restore guard, the edges."""

from __future__ import annotations

import itertools
import logging
import random
import re

import pytest

from episode_sampler import EpisodeAwareSampler
from tests.helpers.reference import LeRobotSamplerModel, lerobot_epoch, lerobot_indices

FROM = [0, 10, 25, 31]
TO = [9, 25, 31, 40]
SEED = 5
INDICES = lerobot_indices(FROM, TO)
N = len(INDICES)


def make(**kw) -> EpisodeAwareSampler:
    return EpisodeAwareSampler(FROM, TO, shuffle=True, seed=SEED, **kw)


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
