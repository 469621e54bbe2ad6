"""EpisodeAwareSampler under torchdata's StatefulDataLoader: exact mid-epoch resume, 0 and 2 workers.

The uninterrupted loader is the reference for every resume (and is itself checked against the
materialized reference order of ``tests/helpers/reference.py``). Every checkpoint goes through a JSON and a
``torch.save`` round trip and is loaded into a NEW loader over a NEW sampler.

How the loader handles our sampler (torchdata 0.11):

* ``sampler=s, batch_size=b`` (and ``batch_sampler=torchdata...sampler.BatchSampler``): the loader's
  stateful BatchSampler saves ``s.state_dict()`` and the state of ``iter(s)``; nothing is replayed.
  With workers, the loader snapshots that state when it *generates* a batch's indices and keeps the
  snapshot of the last batch it *yielded*, so prefetching does not leak into the checkpoint.
* ``batch_size=None``: the sampler is the index sampler itself, saved the same way.
* ``batch_sampler=torch.utils.data.BatchSampler(s, ...)``: neither torch's BatchSampler nor its
  generator has a state, so the loader replays ``_sampler_iter_yielded`` batches from a fresh
  ``iter(batch_sampler)``. The sampler must then be restored to the start of the pass in progress
  (restoring its current position as well skips the replayed batches twice).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch.utils.data import BatchSampler as TorchBatchSampler
from torch.utils.data import Dataset
from torchdata.stateful_dataloader import StatefulDataLoader
from torchdata.stateful_dataloader.sampler import BatchSampler as TorchdataBatchSampler

from episode_sampler import EpisodeAwareSampler
from tests.helpers.layouts import GAPS_FROM, GAPS_TO
from tests.helpers.reference import episodes_lists, reference_epoch, shard

pytestmark = pytest.mark.filterwarnings("ignore:.*set_vital")

EPOCHS = 3
BATCH = 5


class Identity(Dataset):
    """Map-style dataset whose item is its index."""

    def __len__(self) -> int:
        return 100

    def __getitem__(self, i: int) -> int:
        return i


def keep(batch: Any) -> Any:
    return batch


def roundtrip(state: Any) -> Any:
    """JSON, then torch.save / torch.load: what a checkpoint file does to the state."""
    state = json.loads(json.dumps(state))
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


SAMPLERS: dict[str, dict[str, Any]] = {
    "frames-randperm": dict(order="frames", permutation="randperm"),
    "blocks-feistel-rank1of2": dict(
        order="blocks", block_size=4, permutation="feistel", rank=1, world_size=2
    ),
    "episodes-feistel": dict(order="episodes", permutation="feistel", drop_last=True, world_size=2),
}


def make_sampler(kind: str) -> EpisodeAwareSampler:
    return EpisodeAwareSampler(GAPS_FROM, GAPS_TO, shuffle=True, seed=21, **SAMPLERS[kind])


def expected_epoch(kind: str, epoch: int) -> list[int]:
    """This sampler's epoch from the materialized reference order."""
    kw = SAMPLERS[kind]
    full = reference_epoch(
        episodes_lists(GAPS_FROM, GAPS_TO), kw["order"], kw.get("block_size"), kw["permutation"], 21, epoch
    )
    return shard(full, kw.get("rank", 0), kw.get("world_size", 1), kw.get("drop_last", False))


def make_loader(mode: str, sampler: EpisodeAwareSampler, workers: int, **kw: Any) -> StatefulDataLoader:
    kw = dict(num_workers=workers, collate_fn=keep, **kw)
    if mode == "sampler":
        return StatefulDataLoader(Identity(), sampler=sampler, batch_size=BATCH, **kw)
    if mode == "unbatched":
        return StatefulDataLoader(Identity(), sampler=sampler, batch_size=None, **kw)
    if mode == "torchdata_batch_sampler":
        batch_sampler = TorchdataBatchSampler(sampler, BATCH, False)
        return StatefulDataLoader(Identity(), batch_sampler=batch_sampler, **kw)
    if mode == "torch_batch_sampler":
        batch_sampler = TorchBatchSampler(sampler, BATCH, False)
        return StatefulDataLoader(Identity(), batch_sampler=batch_sampler, **kw)
    raise AssertionError(mode)


# (epoch loop, batches yielded in it or None for "after the loop", state)
Checkpoint = tuple[int, int | None, dict[str, Any]]


def uninterrupted(mode: str, kind: str, workers: int, **kw: Any) -> tuple[list[list[Any]], list[Checkpoint]]:
    """EPOCHS loops over one loader; a checkpoint after every batch and after every loop.

    A checkpoint holds the loader's state and, for the torch BatchSampler recipe, the sampler's state
    at the start of the loader pass in progress (``"pass"``) or, between passes, its current state.
    """
    sampler = make_sampler(kind)
    loader = make_loader(mode, sampler, workers, **kw)
    loops: list[list[Any]] = []
    checkpoints: list[Checkpoint] = []
    for e in range(EPOCHS):
        pass_start = sampler.state_dict()
        batches: list[Any] = []
        for batch in loader:
            batches.append(batch)
            checkpoints.append((e, len(batches), {"loader": loader.state_dict(), "pass": pass_start}))
        loops.append(batches)
        checkpoints.append((e, None, {"loader": loader.state_dict(), "pass": sampler.state_dict()}))
    return loops, checkpoints


def resumed(mode: str, kind: str, workers: int, checkpoint: dict[str, Any], loops: int, **kw: Any) -> list:
    """``loops`` loops over a NEW loader (NEW sampler) restored from ``checkpoint``."""
    checkpoint = roundtrip(checkpoint)
    sampler = make_sampler(kind)
    loader = make_loader(mode, sampler, workers, **kw)
    if mode == "torch_batch_sampler":
        sampler.load_state_dict(checkpoint["pass"])
    loader.load_state_dict(checkpoint["loader"])
    return [list(loader) for _ in range(loops)]


def flat(batches: list[Any]) -> list[int]:
    return [i for b in batches for i in (b if isinstance(b, list) else [b])]


def expected_after(loops: list[list[Any]], epoch: int, done: int | None) -> list[list[Any]]:
    """What the uninterrupted run yields after the checkpoint, loop by loop."""
    if done is None:
        return loops[epoch + 1 :]
    return [loops[epoch][done:], *loops[epoch + 1 :]]


def check(
    mode: str, kind: str, workers: int, pick: Callable[[list[Checkpoint]], list[Checkpoint]], **kw: Any
) -> None:
    loops, checkpoints = uninterrupted(mode, kind, workers, **kw)
    assert [flat(b) for b in loops] == [expected_epoch(kind, e) for e in range(EPOCHS)]
    for e, done, state in pick(checkpoints):
        if mode == "torch_batch_sampler" and done is None:
            continue  # between passes: see test_torch_batch_sampler_between_passes
        want = expected_after(loops, e, done)
        assert want, "checkpoints after the last loop are not picked"
        got = resumed(mode, kind, workers, state, len(want) + 1, **kw)
        assert got[: len(want)] == want, (mode, kind, workers, e, done)
        # and the loop after them is the epoch after the uninterrupted run's last
        assert flat(got[len(want)]) == expected_epoch(kind, EPOCHS), (e, done)


def every_checkpoint_before_last_loop(checkpoints: list[Checkpoint]) -> list[Checkpoint]:
    last = EPOCHS - 1
    return [c for c in checkpoints if c[0] < last or (c[1] is not None and c[0] == last)]


def some_checkpoints(checkpoints: list[Checkpoint]) -> list[Checkpoint]:
    """A few mid-epoch ones, the exact end of epoch 0 (before StopIteration) and after loop 0."""
    first = [c for c in checkpoints if c[0] == 0]
    n = len(first) - 1  # batches of loop 0
    chosen = [first[0], first[n // 2], first[n - 1], first[n]]  # 1 batch, half, the last batch, after loop
    mid_second = [c for c in checkpoints if c[0] == 1 and c[1] == 2]
    return chosen + mid_second


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(SAMPLERS))
@pytest.mark.parametrize("mode", ["sampler", "unbatched", "torchdata_batch_sampler", "torch_batch_sampler"])
def test_resume_every_step_single_process(mode: str, kind: str) -> None:
    check(mode, kind, 0, every_checkpoint_before_last_loop)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "kind", "kw"),
    [
        ("sampler", "frames-randperm", {}),
        ("sampler", "blocks-feistel-rank1of2", {"snapshot_every_n_steps": 3, "persistent_workers": True}),
        ("unbatched", "episodes-feistel", {"prefetch_factor": 3}),
        ("torchdata_batch_sampler", "blocks-feistel-rank1of2", {}),
        ("torch_batch_sampler", "frames-randperm", {}),
    ],
)
def test_resume_with_two_workers(mode: str, kind: str, kw: dict[str, Any]) -> None:
    """Workers prefetch ahead of what was yielded; the checkpoint must still be exact."""
    check(mode, kind, 2, some_checkpoints, **kw)


@pytest.mark.slow
def test_worker_prefetch_runs_ahead_of_the_checkpoint() -> None:
    """The sampler in the main process is ahead of the yielded batches, the loader state is not."""
    sampler = make_sampler("frames-randperm")
    loader = make_loader("sampler", sampler, 2)
    it = iter(loader)
    first = next(it)
    ahead = sampler.state_dict()["start_index"]
    assert ahead > BATCH  # prefetching pulled more indices than one batch
    state = roundtrip(loader.state_dict())
    rest = [b for b in it]
    fresh = make_loader("sampler", make_sampler("frames-randperm"), 2)
    fresh.load_state_dict(state)
    assert list(fresh) == rest
    assert first + flat(rest) == expected_epoch("frames-randperm", 0)


def test_torch_batch_sampler_between_passes() -> None:
    """Between passes the loader state holds nothing of ours: restore the sampler alone.

    (Loading the loader state too is ambiguous with a torch BatchSampler: with workers the replay
    pulls the pass eagerly, without workers it does not.)
    """
    sampler = make_sampler("frames-randperm")
    loader = make_loader("torch_batch_sampler", sampler, 0)
    first = list(loader)
    state = roundtrip(sampler.state_dict())
    second = list(loader)
    fresh_sampler = make_sampler("frames-randperm")
    fresh_sampler.load_state_dict(state)
    fresh = make_loader("torch_batch_sampler", fresh_sampler, 0)
    assert list(fresh) == second
    assert flat(first) == expected_epoch("frames-randperm", 0)
    assert flat(second) == expected_epoch("frames-randperm", 1)


def test_torch_batch_sampler_current_position_skips_twice() -> None:
    """The pitfall: restoring the sampler's *current* position and the loader replays k more batches."""
    kind = "frames-randperm"
    sampler = make_sampler(kind)
    loader = make_loader("torch_batch_sampler", sampler, 0)
    it = iter(loader)
    k = 3
    for _ in range(k):
        next(it)
    state = roundtrip({"loader": loader.state_dict(), "sampler": sampler.state_dict()})
    fresh_sampler = make_sampler(kind)
    fresh_sampler.load_state_dict(state["sampler"])
    fresh = make_loader("torch_batch_sampler", fresh_sampler, 0)
    fresh.load_state_dict(state["loader"])
    assert flat(list(fresh)) == expected_epoch(kind, 0)[2 * k * BATCH :]


def test_state_dict_before_iteration_and_after_finish() -> None:
    kind = "blocks-feistel-rank1of2"
    sampler = make_sampler(kind)
    loader = make_loader("sampler", sampler, 0)
    state0 = roundtrip(loader.state_dict())  # before any iter(): the loader builds its iterator
    assert flat(list(loader)) == expected_epoch(kind, 0)
    fresh = make_loader("sampler", make_sampler(kind), 0)
    fresh.load_state_dict(state0)
    assert flat(list(fresh)) == expected_epoch(kind, 0)
    assert flat(list(fresh)) == expected_epoch(kind, 1)


# ---------------------------------------------------------------- the sampler-side hooks
def test_dropped_iterators_do_not_skip_epochs() -> None:
    """DataLoader iterators with workers call iter() twice; a pass binds its epoch at its first next()."""
    kind = "frames-randperm"
    sampler = make_sampler(kind)
    for _ in range(3):
        iter(sampler)
    assert sampler.state_dict()["epoch"] == 0
    assert list(iter(sampler)) == expected_epoch(kind, 0)
    iter(sampler)
    assert list(iter(sampler)) == expected_epoch(kind, 1)


@pytest.mark.parametrize("workers", [0, pytest.param(2, marks=pytest.mark.slow)])
def test_plain_iteration_with_workers_matches_reference(workers: int) -> None:
    for mode in ("sampler", "unbatched"):
        kind = "episodes-feistel"
        loader = make_loader(mode, make_sampler(kind), workers)
        for e in range(2):
            assert flat(list(loader)) == expected_epoch(kind, e), (mode, workers, e)


def test_iterator_state_marks_an_exhausted_pass() -> None:
    kind = "frames-randperm"
    sampler = make_sampler(kind)
    it = iter(sampler)
    assert it.state_dict() == {"exhausted": False, "pulled": False}
    items = list(it)
    assert items == expected_epoch(kind, 0)
    assert it.state_dict() == {"exhausted": True, "pulled": True}
    assert sampler.state_dict()["epoch"] == 1 and sampler.state_dict()["start_index"] == 0
    saved = roundtrip({"sampler": sampler.state_dict(), "iter": it.state_dict()})

    fresh = make_sampler(kind)
    fresh.load_state_dict(saved["sampler"])
    again = iter(fresh)
    again.load_state_dict(saved["iter"])
    assert list(again) == []  # the restored pass is the exhausted one
    assert again.state_dict() == {"exhausted": True, "pulled": True}
    assert fresh.state_dict()["epoch"] == 1
    assert list(iter(fresh)) == expected_epoch(kind, 1)

    pulled = iter(fresh)
    next(pulled)
    with pytest.raises(ValueError, match="already pulled"):
        pulled.load_state_dict({"exhausted": False})
    with pytest.raises(TypeError, match="exhausted"):
        iter(fresh).load_state_dict({"exhausted": 1})


def test_iterator_state_of_a_started_pass_binds_at_load() -> None:
    # a pass pulled from holds its epoch: after a restore, a new iter() runs the next epoch, as the
    # original's would (the restored copy is indistinguishable)
    kind = "frames-randperm"
    sampler = make_sampler(kind)
    it = iter(sampler)
    first = [next(it) for _ in range(3)]
    saved = roundtrip({"sampler": sampler.state_dict(), "iter": it.state_dict()})
    assert saved["iter"] == {"exhausted": False, "pulled": True}
    fresh = make_sampler(kind)
    fresh.load_state_dict(saved["sampler"])
    again = iter(fresh)
    again.load_state_dict(saved["iter"])
    assert fresh.state_dict() == sampler.state_dict()
    assert list(iter(fresh)) == list(iter(sampler)) == expected_epoch(kind, 1)  # both abandon the pass
    assert first + list(again) == expected_epoch(kind, 0)  # the restored pass still has its rest
    legacy = make_sampler(kind)
    legacy.load_state_dict(saved["sampler"])
    old = iter(legacy)
    old.load_state_dict({"exhausted": False})  # 0.1.0's iterator state: binds at the first next()
    assert first + list(old) == expected_epoch(kind, 0)
    with pytest.raises(TypeError, match="pulled"):
        iter(fresh).load_state_dict({"exhausted": False, "pulled": 1})
