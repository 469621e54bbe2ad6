"""``compute_sampler_state`` against accelerate's real ``BatchSamplerShard`` in every sharding mode.

accelerate (a test dependency) shards a ``BatchSampler`` over each process's own world-size-1 sampler
with ``BatchSamplerShard`` (only when there is more than one process). The uninterrupted run below is
built from materialized LeRobot epoch lists (``reference.lerobot_epoch``) fed through accelerate's own
class; the resumed run is our sampler restored from ``compute_sampler_state(step, ...)`` fed through
the same class. Per process, the resumed batches must equal the uninterrupted ones from ``step`` on,
except accelerate's padding: with ``even_batches=True`` the final round of an epoch is completed with
samples from the first batches *of the pass*, and a resumed pass starts elsewhere. Real samples
(global position < num_frames) are compared everywhere; padded slots only in number.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter

import pytest

pytest.importorskip("accelerate")
from accelerate.data_loader import BatchSamplerShard  # noqa: E402
from torch.utils.data import BatchSampler  # noqa: E402

from episode_sampler import EpisodeAwareSampler, compute_sampler_state  # noqa: E402
from tests.helpers.reference import lerobot_epoch, lerobot_indices  # noqa: E402

FROM = [0, 10, 25, 31, 40, 70]
TO = [9, 25, 31, 40, 63, 77]
SEED = 11
INDICES = lerobot_indices(FROM, TO)
N = len(INDICES)  # 69
EPOCHS = 4


def shard(batch_sampler, procs: int, rank: int, split: bool, even: bool):
    if procs == 1:  # accelerate does not wrap the batch sampler of a single process
        return batch_sampler
    return BatchSamplerShard(batch_sampler, procs, rank, split_batches=split, even_batches=even)


def real_lengths(batch: int, procs: int, split: bool, rank: int, rounds: int) -> list[int]:
    """Real (non-padding) samples in each of ``rounds`` batches of ``rank`` in one full epoch."""
    out = []
    for k in range(rounds):
        if split:
            part = batch // procs
            lo = k * batch + rank * part
            out.append(max(0, min(part, N - lo)))
        else:
            lo = (k * procs + rank) * batch
            out.append(max(0, min(batch, N - lo)))
    return out


def uninterrupted(batch, procs, rank, split, even, drop_last):
    """[(epoch, real_len, batch)] of ``rank`` for EPOCHS epochs, from materialized epoch lists."""
    out = []
    for e in range(EPOCHS):
        order = lerobot_epoch(INDICES, SEED, e)
        batches = list(shard(BatchSampler(order, batch, drop_last), procs, rank, split, even))
        reals = real_lengths(batch, procs, split, rank, len(batches))
        out += [(e, r, b) for r, b in zip(reals, batches)]
    return out


def resumed(state, batch, procs, rank, split, even, drop_last, steps):
    sampler = EpisodeAwareSampler(FROM, TO, shuffle=True, seed=SEED)
    sampler.load_state_dict(state)
    out: list[list[int]] = []
    while len(out) < steps:
        out += list(shard(BatchSampler(sampler, batch, drop_last), procs, rank, split, even))
    return out[:steps]


MODES = [  # (split_batches, even_batches, drop_last)
    (False, True, False),
    (False, False, False),
    (True, True, False),
    (True, False, False),
    (False, True, True),
    (True, True, True),
]
SHAPES = [(4, 2), (5, 3), (6, 2), (7, 1), (9, 3), (23, 3), (64, 2), (3, 1)]  # (batch_size, processes)


@pytest.mark.parametrize(("split", "even", "drop_last"), MODES)
@pytest.mark.parametrize(("batch", "procs"), SHAPES)
def test_resume_is_exact_per_process_in_every_mode(split, even, drop_last, batch, procs) -> None:
    if split and batch % procs:
        with pytest.raises(ValueError, match="multiple of num_processes"):
            compute_sampler_state(0, N, batch, procs, split_batches=True)
        return
    for rank in range(procs):
        full = uninterrupted(batch, procs, rank, split, even, drop_last)
        if not full:
            with pytest.raises(ValueError, match="gets no batch"):
                compute_sampler_state(0, N, batch, procs, split_batches=split, even_batches=even,
                                      drop_last=drop_last, process_index=rank)  # fmt: skip
            continue
        per_epoch = len(full) // EPOCHS
        for step in sorted({0, 1, per_epoch - 1, per_epoch, per_epoch + 1, 2 * per_epoch - 1}):
            state = compute_sampler_state(
                step, N, batch, procs, split_batches=split, even_batches=even, drop_last=drop_last,
                process_index=rank,
            )  # fmt: skip
            want = full[step:]
            got = resumed(state, batch, procs, rank, split, even, drop_last, len(want))
            assert len(got) == len(want)
            for t, ((epoch, real, b), g) in enumerate(zip(want, got)):
                assert len(g) == len(b), (rank, step, t)
                assert g[:real] == b[:real], f"rank {rank}, resumed at step {step}, its step {step + t}"
                if epoch > want[0][0]:  # after the resumed epoch: identical, padding included
                    assert g == b, (rank, step, t)
                if not even or drop_last:
                    assert g == b  # no padding in these modes


def test_split_batches_consumes_one_global_batch_per_step() -> None:
    # the example: split_batches=True, batch 16 over 2 processes, step 4 -> (0, 64), not (0, 128)
    assert compute_sampler_state(4, 1000, 16, 2, split_batches=True) == {"epoch": 0, "start_index": 64}
    assert compute_sampler_state(4, 1000, 16, 2) == {"epoch": 0, "start_index": 128}


def test_even_batches_false_needs_the_process_index() -> None:
    with pytest.raises(ValueError, match="process_index is required with even_batches=False"):
        compute_sampler_state(5, N, 4, 2, even_batches=False)
    with pytest.raises(ValueError, match="process_index must be <= 1"):
        compute_sampler_state(5, N, 4, 2, even_batches=False, process_index=2)
    # 69 frames, batch 4: 18 batches -> 9 each; batch 5: 14 batches -> 7 each; batch 10: 7 -> 4 and 3
    assert compute_sampler_state(4, N, 10, 2, even_batches=False, process_index=0) == {
        "epoch": 1,
        "start_index": 0,
    }
    assert compute_sampler_state(4, N, 10, 2, even_batches=False, process_index=1) == {
        "epoch": 1,
        "start_index": 20,
    }
    with pytest.raises(TypeError, match="split_batches must be a bool"):
        compute_sampler_state(1, N, 4, 2, split_batches=1)


@pytest.mark.parametrize(("old", "new"), [(2, 1), (1, 2), (3, 2), (2, 3)])
@pytest.mark.parametrize("batch", [4, 5, 23])
def test_resume_with_another_number_of_processes_loses_and_repeats_nothing(old, new, batch) -> None:
    """Default mode: old processes consumed the epoch's prefix; the new world takes the rest."""
    full_old = [uninterrupted(batch, old, r, False, True, False) for r in range(old)]
    per_epoch = len(full_old[0]) // EPOCHS
    for step in range(1, 2 * per_epoch):
        state = compute_sampler_state(step, N, batch, old)
        epoch = state["epoch"]
        # what the old world trained on in this epoch before the checkpoint (real samples only)
        before = Counter()
        for r in range(old):
            for e, real, b in full_old[r][:step]:
                if e == epoch:
                    before.update(b[:real])
        # the new world from the restored state to the end of the epoch
        after = Counter()
        for r in range(new):
            sampler = EpisodeAwareSampler(FROM, TO, shuffle=True, seed=SEED)
            sampler.load_state_dict(state)
            batches = list(shard(BatchSampler(sampler, batch, False), new, r, False, True))
            real_total = N - state["start_index"]
            for k, b in enumerate(batches):  # real = global position inside the remaining epoch
                lo = (k * new + r) * batch
                after.update(b[: max(0, min(batch, real_total - lo))])
            nxt = list(itertools.islice(iter(sampler), N))
            assert nxt == lerobot_epoch(INDICES, SEED, epoch + 1)  # the next epoch is untouched
        assert before + after == Counter(lerobot_epoch(INDICES, SEED, epoch)), (old, new, step)


@pytest.mark.parametrize(("first", "second"), [((2, 4), (1, 4)), ((1, 4), (3, 5)), ((3, 5), (2, 4))])
def test_origin_maps_steps_after_a_resize(first, second) -> None:
    """(P, B) for steps [0, s1), then (P', B') from s1 on: a checkpoint at s2 with the origin is exact."""
    (p1, b1), (p2, b2) = first, second
    for s1, s2 in [(3, 9), (5, 20), (1, 2)]:
        state1 = compute_sampler_state(s1, N, b1, p1)
        origin = {"step": s1, **state1}
        # the resized run, uninterrupted from s1: every process's own sampler, all in lockstep
        samplers = [EpisodeAwareSampler(FROM, TO, shuffle=True, seed=SEED) for _ in range(p2)]
        for s in samplers:
            s.load_state_dict(state1)
        streams = []
        for r in range(p2):
            out = []
            while len(out) < s2 - s1 + 30:
                out += list(shard(BatchSampler(samplers[r], b2, False), p2, r, False, True))
            streams.append(out)
        # resume at s2 with the origin: every process continues with the same batches
        state2 = compute_sampler_state(s2, N, b2, p2, origin=origin)
        epoch_pass = math.ceil(math.ceil((N - state2["start_index"]) / b2) / p2)  # steps left in the epoch
        for r in range(p2):
            resumed = EpisodeAwareSampler(FROM, TO, shuffle=True, seed=SEED)
            resumed.load_state_dict(state2)
            got = []
            while len(got) < 20:
                got += list(shard(BatchSampler(resumed, b2, False), p2, r, False, True))
            want = streams[r][s2 - s1 : s2 - s1 + 20]
            for k, (g, w) in enumerate(zip(got, want)):
                real = (
                    max(0, min(b2, N - state2["start_index"] - (k * p2 + r) * b2)) if k < epoch_pass else b2
                )
                assert len(g) == len(w) and g[:real] == w[:real], (first, second, s1, s2, r, k)
        # without the origin the step means something else (unless nothing was resized)
        if (p1, b1) != (p2, b2) and compute_sampler_state(s2, N, b2, p2) == state2:
            pytest.fail("origin made no difference")
    with pytest.raises(ValueError, match=r"origin\['step'\] must be <= 3"):
        compute_sampler_state(3, N, 4, 2, origin={"step": 4, "epoch": 0, "start_index": 0})
    with pytest.raises(TypeError, match="origin must be a dict"):
        compute_sampler_state(3, N, 4, 2, origin={"step": 1})
