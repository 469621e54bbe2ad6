"""accelerate-style batch sharding (how LeRobot trains) and ``compute_sampler_state``.

LeRobot keeps one world-size-1 sampler per process inside a ``BatchSampler``; accelerate's
``BatchSamplerShard`` (``split_batches=False``, ``even_batches=True``) gives process r of P the
batches r, r + P, r + 2P, ... and, when the number of batches is not a multiple of P (or the last
batch is short), completes the last round with samples cycled from the first P batches it saw in
that pass. ``accelerate_shard`` below is our own small equivalent of that behaviour.

Finding: a restore through ``compute_sampler_state`` at step s is exact for every real sample;
the only difference is the padding of the final round of the *resumed* epoch, which accelerate
takes from the first batches of the resumed pass instead of the epoch's first batches (the
sampler cannot change what accelerate pads with). Epochs after the resumed one are identical.
"""

from __future__ import annotations

import itertools

import pytest
from torch.utils.data import BatchSampler

from episode_sampler import EpisodeAwareSampler, compute_sampler_state
from episode_sampler.core.steps import accelerate_pass
from tests.helpers.layouts import GAPS_FROM, GAPS_TO
from tests.helpers.reference import lerobot_epoch, lerobot_indices

SEED = 4
INDICES = lerobot_indices(GAPS_FROM, GAPS_TO)
N = len(INDICES)  # 69 = 3 * 23
EPOCHS = 3


def accelerate_shard(
    batches: list[list[int]], num_processes: int, rank: int, batch_size: int
) -> list[list[int]]:
    """Process ``rank``'s batches of one pass, as accelerate's even_batches sharding yields them."""
    batches = list(batches)
    if not batches:
        return []
    seen_first = [i for b in batches[:num_processes] for i in b]  # what accelerate keeps for padding
    while len(seen_first) < num_processes * batch_size:
        seen_first += seen_first
    rounds = [b for b in batches if len(b) == batch_size]
    used = 0
    if len(batches[-1]) < batch_size:  # complete the short last batch
        used = batch_size - len(batches[-1])
        rounds.append(batches[-1] + seen_first[:used])
    while len(rounds) % num_processes:  # then whole batches until every process has one
        rounds.append(seen_first[used : used + batch_size])
        used += batch_size
    return rounds[rank::num_processes]


def reference_run(batch_size: int, num_processes: int) -> list[list[list[int]]]:
    """Per rank, the batches of EPOCHS epochs, from materialized epoch lists (no sampler involved)."""
    out: list[list[list[int]]] = [[] for _ in range(num_processes)]
    for e in range(EPOCHS):
        order = lerobot_epoch(INDICES, SEED, e)
        batches = [order[i : i + batch_size] for i in range(0, N, batch_size)]
        for r in range(num_processes):
            out[r] += accelerate_shard(batches, num_processes, r, batch_size)
    return out


def sampler_run(batch_size: int, num_processes: int, rank: int, state=None, steps: int | None = None):
    """Rank ``rank`` of a LeRobot-style run: its own world-size-1 sampler in a torch BatchSampler."""
    sampler = EpisodeAwareSampler(GAPS_FROM, GAPS_TO, shuffle=True, seed=SEED)
    if state is not None:
        sampler.load_state_dict(state)
    out: list[list[int]] = []
    while len(out) < steps:
        out += accelerate_shard(BatchSampler(sampler, batch_size, False), num_processes, rank, batch_size)
    return out[:steps]


CASES = [(7, 1), (4, 2), (5, 3), (7, 2), (3, 4), (2, 5), (10, 3), (9, 7), (64, 2), (100, 3)]
EXACT_CASES = [(1, 3), (23, 3), (3, 23), (3, 1)]  # 69 frames: no padding at all


def brute_force_state(step: int, batch_size: int, num_processes: int) -> dict[str, int]:
    """Walk the run step by step, counting the real samples the sampler handed out in the epoch."""
    epoch, consumed = 0, 0
    batches_in_epoch = -(-N // batch_size)
    batch = 0  # global batch index inside the epoch (all processes)
    for _ in range(step):
        batch += num_processes  # one step: one batch per process
        if batch >= batches_in_epoch:  # the round that reached the epoch's end (maybe padded)
            epoch, batch = epoch + 1, 0
    consumed = min(batch * batch_size, N)
    return {"epoch": epoch, "start_index": consumed}


@pytest.mark.parametrize(("batch_size", "num_processes"), CASES + EXACT_CASES)
def test_compute_sampler_state_brute_force(batch_size: int, num_processes: int) -> None:
    for step in range(60):
        assert compute_sampler_state(step, N, batch_size, num_processes) == brute_force_state(
            step, batch_size, num_processes
        ), step


@pytest.mark.parametrize(("batch_size", "num_processes"), CASES[:4])
def test_uninterrupted_run_matches_reference(batch_size: int, num_processes: int) -> None:
    ref = reference_run(batch_size, num_processes)
    for r in range(num_processes):
        assert sampler_run(batch_size, num_processes, r, steps=len(ref[r])) == ref[r]


def ceil_div(a: int, b: int) -> int:
    return (a + b - 1) // b


def padding_slots(batch_size: int, num_processes: int) -> set[tuple[int, int, int]]:
    """(rank, step in epoch, slot) of every padded sample of an epoch (global position >= N)."""
    steps = ceil_div(ceil_div(N, batch_size), num_processes)
    return {
        (r, j, i)
        for r, j, i in itertools.product(range(num_processes), range(steps), range(batch_size))
        if ((j * num_processes + r) * batch_size + i) >= N
    }


@pytest.mark.parametrize(("batch_size", "num_processes"), CASES + EXACT_CASES)
def test_resume_at_every_step(batch_size: int, num_processes: int) -> None:
    ref = reference_run(batch_size, num_processes)
    per_epoch = len(ref[0]) // EPOCHS
    pads = padding_slots(batch_size, num_processes)
    total = len(ref[0])
    differs = 0
    for step in range(total):
        state = compute_sampler_state(step, N, batch_size, num_processes)
        epoch, into = divmod(step, per_epoch)
        resumed_order = lerobot_epoch(INDICES, SEED, epoch)[state["start_index"] :]
        for r in range(num_processes):
            got = sampler_run(batch_size, num_processes, r, state, steps=total - step)
            want = ref[r][step:]
            assert len(got) == len(want)
            if into == 0 or not pads:
                assert got == want, (step, r)
                continue
            # everything but the padding of the resumed epoch's last round is identical ...
            end = per_epoch - into  # steps left in the resumed epoch
            assert got[end:] == want[end:], (step, r)
            differs += got != want
            for j in range(end):
                for i, (a, b) in enumerate(zip(got[j], want[j])):
                    if (r, into + j, i) not in pads:
                        assert a == b, (step, r, j, i)
            # ... and the padding comes, cycled, from the start of the resumed pass
            rounds = [sampler_run(batch_size, num_processes, q, state, end) for q in range(num_processes)]
            flat = [x for j in range(end) for q in range(num_processes) for x in rounds[q][j]]
            real = len(resumed_order)
            assert flat[:real] == resumed_order
            first = resumed_order[: num_processes * batch_size]
            cycled = list(itertools.islice(itertools.cycle(first), len(flat) - real))
            assert flat[real:] == cycled, (step, r)
    # the finding: with padding, resuming inside an epoch changes the padding of that epoch's last round
    assert bool(differs) == bool(pads and per_epoch > 1)


@pytest.mark.parametrize(("batch_size", "num_processes"), EXACT_CASES)
def test_no_padding_means_exact(batch_size: int, num_processes: int) -> None:
    assert not padding_slots(batch_size, num_processes)


def test_accelerate_pass_names_the_pass_in_progress():
    # 10 frames, batch 3, one process: 4 steps per epoch (3 + 3 + 3 + 1); by hand.
    assert accelerate_pass(0, 10, 3, 1) == (0, 0, 0)
    assert accelerate_pass(3, 10, 3, 1) == (0, 0, 3)
    assert accelerate_pass(4, 10, 3, 1) == (1, 0, 0)
    assert accelerate_pass(9, 10, 3, 1) == (2, 0, 1)
    # resumed at step 5 at frame 4 of epoch 2: 6 frames left, a pass of 2 steps, then full epochs
    origin = {"step": 5, "epoch": 2, "start_index": 4}
    assert accelerate_pass(5, 10, 3, 1, origin=origin) == (2, 4, 0)
    assert accelerate_pass(6, 10, 3, 1, origin=origin) == (2, 4, 1)
    assert accelerate_pass(7, 10, 3, 1, origin=origin) == (3, 0, 0)
    assert accelerate_pass(12, 10, 3, 1, origin=origin) == (4, 0, 1)
    with pytest.raises(ValueError, match="process_index is required"):
        accelerate_pass(1, 10, 3, 2, even_batches=False)
