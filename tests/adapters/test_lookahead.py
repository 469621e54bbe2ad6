"""``episode_sampler.lookahead.LookAhead``: the next samples' bytes fetched ahead of need, from the
sampler's or node's position only, bounded, never in any state, errors contained.

The reference for "what comes next" is the materialized stream of a fresh, unprefetched cursor."""

from __future__ import annotations

import json
import logging
import threading
import time

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from torchdata.nodes import Loader, Mapper, ParallelMapper
from torchdata.stateful_dataloader import StatefulDataLoader

from episode_sampler import EpisodeAwareSampler, EpisodeSamplerNode
from episode_sampler.lookahead import LookAhead
from tests.helpers.fake_remote import FakeRemote, SlowStore

pytestmark = pytest.mark.filterwarnings("ignore:.*set_vital")

STARTS = np.arange(0, 960, 48)
ENDS = STARTS + 48
N = 960
B = 16


def sampler(**kw) -> EpisodeAwareSampler:
    return EpisodeAwareSampler(STARTS, ENDS, shuffle=True, seed=7, **kw)


def node(**kw) -> EpisodeSamplerNode:
    return EpisodeSamplerNode(STARTS, ENDS, shuffle=True, seed=7, batch_size=B, **kw)


def wait_until(cond, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.005)


def test_foreground_reads_hit_the_cache_with_look_ahead():
    """Without look-ahead every block is a foreground miss; with it, (almost) none is."""
    results = {}
    for ahead in (False, True):
        store = SlowStore(delay_s=0.004)
        data = FakeRemote(N, store)
        s = sampler(order="frames")
        loader = DataLoader(data, batch_size=B, sampler=s, collate_fn=torch.stack)
        la = LookAhead(s, data, window=6 * B, batch_size=B, threads=8)
        got = []
        if ahead:
            la.start()
            assert la.wait(10)
            assert store.prefetch_requests == len({data._key(i) for i in data.planned})
        try:
            for batch in loader:
                got.extend(batch.tolist())
                time.sleep(0.01)  # "training": the look-ahead's time to fetch
        finally:
            la.close()
        assert got == list(iter(sampler(order="frames")))
        results[ahead] = (store.foreground_requests, store.prefetch_requests, la.stats())
    blocks = N // 4
    assert results[False][0] == blocks and results[False][1] == 0
    fg, pre, stats = results[True]
    assert fg <= 2 * B, results  # a few at most (a fetch still running when the read came)
    # (two prefetches of one block may race in this fake: its cache does not join them)
    assert blocks <= fg + pre <= blocks + 8 and stats["errors"] == 0 and stats["bytes_fetched"] == pre * 100


def test_plans_exactly_the_next_window_across_the_epoch_end():
    """Planned indices = the cursor's next ``window`` samples (into the next epoch), nothing more."""
    store = SlowStore(delay_s=0)
    data = FakeRemote(N, store)
    s = sampler(order="blocks", block_size=8)
    it = iter(s)
    consumed = [next(it) for _ in range(N - 40)]  # 40 samples left in epoch 0
    la = LookAhead(s, data, window=100, batch_size=B)
    planned = la.step() + la.step()  # the second round finds nothing new
    ref0 = list(iter(sampler(order="blocks", block_size=8)))
    ref_s = sampler(order="blocks", block_size=8)
    ref_s.set_epoch(1)
    ref1 = list(iter(ref_s))
    assert consumed == ref0[: N - 40]
    assert planned == 100 and data.planned == ref0[N - 40 :] + ref1[:60]
    # the cursor moves 20 samples on: exactly 20 more are planned, where the window now ends
    for _ in range(20):
        next(it)
    assert la.step() == 20 and data.planned[100:] == ref1[60:80]


def test_restarts_where_the_cursor_jumps():
    store = SlowStore(delay_s=0)
    data = FakeRemote(N, store)
    s = sampler()
    la = LookAhead(s, data, window=32, batch_size=B)
    la.step()
    ref = sampler()
    ref.load_state_dict({"epoch": 3, "start_index": 500})
    want = list(iter(ref))[:32]
    s.load_state_dict({"epoch": 3, "start_index": 500})
    data.planned.clear()
    assert la.step() == 32 and data.planned == want and la.stats()["restarts"] == 1


def test_bounded_pending_and_in_flight():
    stall = threading.Event()
    store = SlowStore(delay_s=0, stall=stall)
    data = FakeRemote(N, store, per_block=1)
    s = sampler()
    la = LookAhead(s, data, window=10 * B, batch_size=B, threads=3, max_pending=5).start()
    try:
        wait_until(lambda: la.stats()["pending"] == 5)
        time.sleep(0.05)
        assert la.stats()["pending"] == 5 and store.max_in_flight <= 3
        assert la.stats()["samples_planned"] == 10 * B  # the window, not more
    finally:
        t0 = time.monotonic()
        la.close(timeout_s=1.0)  # stalled requests do not hold close()
        assert time.monotonic() - t0 < 3
        stall.set()


def test_background_errors_do_not_reach_training(caplog):
    store = SlowStore(delay_s=0, fail=True)
    data = FakeRemote(N, store)
    s = sampler()
    loader = DataLoader(data, batch_size=B, sampler=s, collate_fn=torch.stack)
    with caplog.at_level(logging.WARNING, logger="episode_sampler.lookahead"):
        with LookAhead(s, data, window=4 * B, batch_size=B) as la:
            got = [x for batch in loader for x in batch.tolist()]
            wait_until(lambda: la.stats()["errors"] >= 1)
    assert got == list(iter(sampler()))
    assert store.foreground_requests == N // 4  # the reads fetched everything themselves
    assert isinstance(la.last_error, ConnectionError)
    warnings = [r for r in caplog.records if "look-ahead" in r.getMessage()]
    assert len(warnings) == 1 and "fake server refused" in warnings[0].getMessage()


def _stateful_run(ahead: bool, stop: int, state=None):
    store = SlowStore(delay_s=0)
    data = FakeRemote(N, store)
    s = sampler(order="episodes")
    loader = StatefulDataLoader(data, batch_size=B, sampler=s, collate_fn=torch.stack)
    if state is not None:
        loader.load_state_dict(json.loads(json.dumps(state)))
    la = LookAhead(s, data, window=5 * B, batch_size=B)
    if ahead:
        la.start()
    out, states = [], []
    try:
        for k, batch in enumerate(loader):
            if ahead:  # let the look-ahead run between steps
                time.sleep(0.002)
            out.append(batch.tolist())
            states.append(loader.state_dict())
            if k + 1 == stop:
                break
    finally:
        la.close()
    return out, states


def test_stateful_dataloader_states_identical_and_resume_exact():
    plain, plain_states = _stateful_run(False, 30)
    ahead, ahead_states = _stateful_run(True, 30)
    assert ahead == plain and ahead_states == plain_states
    rest, _ = _stateful_run(True, 10**9, state=ahead_states[9])
    full, _ = _stateful_run(False, 10**9)
    assert rest == full[10:]


def _node_run(ahead: bool, stop: int, state=None, parallel: bool = False):
    store = SlowStore(delay_s=0)
    data = FakeRemote(N, store)
    src = node(order="blocks", block_size=6)
    mapped = (
        ParallelMapper(src, data.__getitems__, num_workers=2, method="thread")
        if parallel
        else Mapper(src, data.__getitems__)
    )
    loader = Loader(mapped)
    if state is not None:
        loader.load_state_dict(state)
    la = LookAhead(src, data, window=4 * B, batch_size=B)
    if ahead:
        la.start()
    out, states = [], []
    try:
        for k, batch in enumerate(loader):
            out.append([int(x) for x in batch])
            states.append(loader.state_dict())
            if k + 1 == stop:
                break
    finally:
        la.close()
    return out, states


@pytest.mark.parametrize("parallel", [False, True])
def test_node_pipeline_states_identical_and_resume_exact(parallel):
    plain, plain_states = _node_run(False, 25, parallel=parallel)
    ahead, ahead_states = _node_run(True, 25, parallel=parallel)
    assert ahead == plain and ahead_states == plain_states
    rest, _ = _node_run(True, 40, state=ahead_states[11], parallel=parallel)
    full, _ = _node_run(False, 52, parallel=parallel)
    assert rest == full[12:52]


def test_bad_arguments():
    s = sampler()
    data = FakeRemote(N, SlowStore(0))
    with pytest.raises(TypeError, match="source"):
        LookAhead([1, 2, 3], data)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="byte_ranges"):
        LookAhead(s, object())
    with pytest.raises(ValueError, match="window"):
        LookAhead(s, data, window=0)
    with pytest.raises(ValueError, match="threads"):
        LookAhead(s, data, threads=0)
    with pytest.raises(ValueError, match="poll_s"):
        LookAhead(s, data, poll_s=0)


def test_window_longer_than_an_epoch_stops_at_the_next_epochs_end():
    """A window longer than two epochs plans the rest of this epoch and the next one, once."""
    starts, ends = np.array([0, 10]), np.array([10, 25])
    s = EpisodeAwareSampler(starts, ends, shuffle=True, seed=3)
    data = FakeRemote(25, SlowStore(0))
    it = iter(s)
    first = [next(it) for _ in range(5)]
    la = LookAhead(s, data, window=1000, batch_size=4)
    assert la.step() == 20 + 25 and la.step() == 0 and la.stats()["restarts"] == 0
    ref = EpisodeAwareSampler(starts, ends, shuffle=True, seed=3)
    ref0 = list(iter(ref))
    ref1 = list(iter(ref))  # the next pass is epoch 1
    assert first == ref0[:5] and data.planned == ref0[5:] + ref1
    la.start()
    try:
        assert la.wait(5)
    finally:
        la.close()
