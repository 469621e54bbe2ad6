"""A restored sampler is indistinguishable from the original (hypothesis ``RuleBasedStateMachine``).

The machine drives an original ``EpisodeAwareSampler`` (and its live ``SamplerIterator``) and, after any
``restore`` rule, a copy built afresh from ``sampler.state_dict()`` plus the live iterator's
``state_dict()`` (what ``StatefulDataLoader`` saves). Every later ``iter`` / ``next`` / ``set_epoch`` /
``load_state_dict`` / ``state_dict`` is applied to both, and every observable (items, where
``StopIteration`` comes, both state dicts) must agree. (A pass that started and was then cut off by
``set_epoch``/``load_state_dict`` is not in any state, LeRobot's included: there the restore starts a
new pass on both sides.) Before the first restore the copy is a second
sampler that saw the same calls, so the rules also check determinism.

``set_epoch_policy="keep_resumed"`` makes a restored sampler ignore backwards ``set_epoch`` on purpose
(a framework's pass counter restarting at 0): "was restored" is a fact about the process, not part of
the saved position. So with that policy both samplers start restored (the original loads its own
initial state); with ``"follow"`` (LeRobot's ``set_epoch``) they start fresh.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from episode_sampler import EpisodeAwareSampler
from tests.helpers.drain import pull
from tests.helpers.layouts import PERMUTATIONS

FROM = [0, 6, 9, 20]
TO = [5, 9, 17, 23]  # 5 + 3 + 8 + 3 = 19 frames

CONFIGS = st.fixed_dictionaries(
    {
        "shuffle": st.booleans(),
        "permutation": st.sampled_from(PERMUTATIONS),
        "order": st.sampled_from([("frames", None), ("episodes", None), ("blocks", 2)]),
        "world": st.sampled_from([(0, 1), (0, 2), (1, 2), (2, 3)]),
        "drop_last": st.booleans(),
        "policy": st.sampled_from(["keep_resumed", "follow"]),
    }
)

MISSING = object()


def build(cfg: dict) -> EpisodeAwareSampler:
    (order, block), (rank, world) = cfg["order"], cfg["world"]
    return EpisodeAwareSampler(
        FROM, TO, shuffle=cfg["shuffle"], seed=3, permutation=cfg["permutation"], order=order,
        block_size=block, rank=rank, world_size=world, drop_last=cfg["drop_last"],
        set_epoch_policy=cfg["policy"],
    )  # fmt: skip


class SamplerMachine(RuleBasedStateMachine):
    @initialize(cfg=CONFIGS)
    def setup(self, cfg: dict) -> None:
        self.cfg = cfg
        self.a, self.b = build(cfg), build(cfg)
        if cfg["policy"] == "keep_resumed":
            for s in (self.a, self.b):
                s.load_state_dict(s.state_dict())
        self.ia = self.ib = None
        self.detached = False  # the live pass started, then set_epoch/load_state_dict moved the sampler
        self.saved: list[dict] = []

    @rule()
    def new_iterator(self) -> None:
        self.ia, self.ib = iter(self.a), iter(self.b)
        self.detached = False

    @rule(k=st.integers(1, 25))
    def next_items(self, k: int) -> None:
        if self.ia is None:
            self.new_iterator()
        assert pull(self.ia, k) == pull(self.ib, k)

    def _live(self) -> bool:
        return self.ia is not None and self.ia.state_dict() == {"exhausted": False, "pulled": True}

    @rule(epoch=st.integers(0, 6))
    def set_epoch(self, epoch: int) -> None:
        live, before = self._live(), self.a.state_dict()
        self.a.set_epoch(epoch)
        self.b.set_epoch(epoch)
        if live and self.a.state_dict() != before:  # obeyed (not ignored by the restore guard)
            self.detached = True

    @rule()
    def save(self) -> None:
        self.saved.append(self.a.state_dict())

    @rule(data=st.data())
    def load(self, data) -> None:
        n = len(self.a)
        choices = [{"epoch": e, "start_index": i} for e in (0, 2) for i in (0, 1, n - 1, n)] + self.saved
        state = data.draw(st.sampled_from(choices))
        self.detached = self.detached or self._live()
        self.a.load_state_dict(dict(state))
        self.b.load_state_dict(dict(state))

    @rule()
    def restore(self) -> None:
        """Crash and resume: a fresh copy from the original's states replaces ``b``.

        A pass that started and was then cut off from the sampler by ``set_epoch``/``load_state_dict``
        is not described by the sampler's state (nor by LeRobot's): the resumed run starts a new pass
        on both sides instead.
        """
        copy = build(self.cfg)
        copy.load_state_dict(self.a.state_dict())
        self.b, self.ib = copy, None
        if self.detached:
            self.new_iterator()
        elif self.ia is not None:
            self.ib = iter(copy)
            self.ib.load_state_dict(self.ia.state_dict())

    @invariant()
    def same_states(self) -> None:
        if not hasattr(self, "a"):
            return
        assert self.a.state_dict() == self.b.state_dict()
        assert self.a.epoch == self.b.epoch
        if self.ia is not None:
            assert self.ia.state_dict() == self.ib.state_dict()


SamplerMachine.TestCase.settings = settings(
    max_examples=120, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestSamplerMachine = pytest.mark.slow(SamplerMachine.TestCase)
