"""The restore contract as a hypothesis state machine: a node restored from ``get_state()`` into a
freshly built node is indistinguishable from the original for any later sequence of ``next()``,
``reset(None)``, ``reset(state)`` and ``get_state()``.

Every node alive (the original and every restored copy) gets every call; all must agree, and the
original must also agree with a small model of the semantics (epoch, position, pulled) over the
sampler's materialized epochs."""

from __future__ import annotations

import json
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from episode_sampler import EpisodeAwareSampler
from episode_sampler.node import EpisodeSamplerNode
from tests.helpers.layouts import PERMUTATIONS, contiguous

_STOP = "StopIteration"


@st.composite
def configs(draw: Any) -> dict[str, Any]:
    lengths = draw(st.lists(st.integers(1, 6), min_size=1, max_size=4))
    world = draw(st.integers(1, 3))
    order = draw(st.sampled_from(["frames", "episodes", "blocks"]))
    batch = draw(st.sampled_from([None, 1, 2, 3]))
    cfg = dict(
        lengths=lengths,
        permutation=draw(st.sampled_from(PERMUTATIONS)),
        order=order,
        block_size=draw(st.integers(1, 3)) if order == "blocks" else None,
        shuffle=draw(st.booleans()),
        seed=draw(st.integers(0, 2**64 - 1)),
        world_size=world,
        rank=draw(st.integers(0, world - 1)),
        drop_last=sum(lengths) >= world and draw(st.booleans()),
        batch_size=batch,
        drop_last_batch=batch is not None and draw(st.booleans()),
        emit_seed=draw(st.booleans()),
    )
    return cfg


def build(cfg: dict[str, Any]) -> EpisodeSamplerNode:
    starts, ends = contiguous(cfg["lengths"])
    kw = {k: v for k, v in cfg.items() if k != "lengths"}
    return EpisodeSamplerNode(starts, ends, **kw)


def epoch_frames(cfg: dict[str, Any], epoch: int) -> list[int]:
    starts, ends = contiguous(cfg["lengths"])
    kw = {k: cfg[k] for k in ("permutation", "order", "block_size", "shuffle", "seed", "world_size", "rank")}
    s = EpisodeAwareSampler(starts, ends, drop_last=cfg["drop_last"], **kw)
    return s.frame_indices(epoch).tolist()


def outcome(node: EpisodeSamplerNode) -> Any:
    try:
        return json.loads(json.dumps(node.next()))
    except StopIteration:
        return _STOP


class NodeMachine(RuleBasedStateMachine):
    states = Bundle("states")

    @initialize(cfg=configs())
    def setup(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.original = build(cfg)
        self.copies: list[EpisodeSamplerNode] = []
        # the model: epoch, position (samples), pulled since the last reset
        self.epoch, self.pos, self.pulled = 0, 0, False
        self.frames: dict[int, list[int]] = {}

    # ---------------------------------------------------------------- model helpers
    def _epoch(self, e: int) -> list[int]:
        if e not in self.frames:
            self.frames[e] = epoch_frames(self.cfg, e)
        return self.frames[e]

    def _finished(self) -> bool:
        remaining = len(self._epoch(self.epoch)) - self.pos
        bs = self.cfg["batch_size"]
        return remaining <= 0 or (self.cfg["drop_last_batch"] and remaining < bs)

    def _nodes(self) -> list[EpisodeSamplerNode]:
        return [self.original, *self.copies]

    # ---------------------------------------------------------------- rules
    @rule()
    def next(self) -> None:
        got = [outcome(n) for n in self._nodes()]
        assert all(g == got[0] for g in got), f"next() diverged: {got}"
        frames = self._epoch(self.epoch)
        if self._finished():
            want: Any = _STOP
            self.pos = len(frames)
        else:
            k = self.cfg["batch_size"] or 1
            chunk = frames[self.pos : self.pos + k]
            want = chunk if self.cfg["batch_size"] else chunk[0]
            self.pos += len(chunk)
        self.pulled = True
        if want != _STOP and self.cfg["emit_seed"]:
            assert got[0][0] == want
        else:
            assert got[0] == want

    @rule()
    def reset_none(self) -> None:
        for n in self._nodes():
            n.reset(None)
        if self.pulled:
            self.epoch, self.pos, self.pulled = self.epoch + 1, 0, False

    @rule(target=states)
    def save(self) -> tuple[dict[str, Any], tuple[int, int, bool]]:
        return json.loads(json.dumps(self.original.get_state())), (self.epoch, self.pos, self.pulled)

    @rule(saved=states)
    def reset_state(self, saved: tuple[dict[str, Any], tuple[int, int, bool]]) -> None:
        state, model = saved
        for n in self._nodes():
            n.reset(state)
        self.epoch, self.pos, self.pulled = model

    @rule()
    def restore_into_fresh_node(self) -> None:
        fresh = build(self.cfg)
        fresh.reset(json.loads(json.dumps(self.original.get_state())))
        self.copies = [*self.copies[-1:], fresh]  # keep the two newest copies alive

    # ---------------------------------------------------------------- invariants
    @invariant()
    def same_state(self) -> None:
        if not hasattr(self, "original"):
            return
        states = [n.get_state() for n in self._nodes()]
        assert all(s == states[0] for s in states), f"get_state() diverged: {states}"
        s = states[0]
        if self._finished() and self.pulled:
            assert (s["epoch"], s["start_index"], s["exhausted"]) == (self.epoch + 1, 0, True)
        else:
            assert (s["epoch"], s["start_index"], s["exhausted"]) == (self.epoch, self.pos, False)
            assert s["pulled"] == self.pulled


NodeMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestNodeMachine = NodeMachine.TestCase
