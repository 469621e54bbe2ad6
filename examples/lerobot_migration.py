#!/usr/bin/env python
"""Migrating from LeRobot: resume a LeRobot sampler checkpoint here, and get LeRobot's exact order.

    python examples/lerobot_migration.py

See docs/lerobot-migration.md. Part 1 loads LeRobot's checkpoint state and checks LeRobot's order;
part 2 (needs ``pip install accelerate``) runs ``lerobot_train.py``'s data path under accelerate with
only the import swapped, "crashes" it at several steps and resumes each exactly, then does the same
with ``resume_dataloader``.

LeRobot's ``EpisodeAwareSampler`` checkpoints ``{"epoch", "start_index"}`` (``compute_sampler_state``
gives it from a step count). That dict loads as it is. With ``shuffle=True, permutation="randperm"``
the order of every ``(seed, epoch)`` is LeRobot's, which this example recomputes inline with LeRobot's
formula: the valid frames of every episode, indexed by ``torch.randperm`` under a generator seeded
from ``np.random.SeedSequence([seed, epoch])``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from torchdata.nodes import Loader

from episode_sampler import (
    EpisodeAwareSampler,
    compute_sampler_state,
    load_state,
    save_state,
    write_lerobot_dataset,
)
from episode_sampler.lerobot import read_episode_index
from episode_sampler.node import EpisodeSamplerNode

SEED, DROP_LAST, BATCH, PROCESSES, STEP = 1000, 5, 8, 2, 137


def lerobot_order(from_idx: list[int], to_idx: list[int], seed: int, epoch: int) -> list[int]:
    """LeRobot's shuffled order of one epoch, written out as LeRobot's sampler computes it."""
    indices: list[int] = []
    for start, end in zip(from_idx, to_idx):
        indices.extend(range(start, end - DROP_LAST))
    generator = torch.Generator()
    generator.manual_seed(int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0]))
    return [indices[i] for i in torch.randperm(len(indices), generator=generator).tolist()]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "dataset"
        write_lerobot_dataset(root, num_episodes=25)
        episodes = read_episode_index(root)  # dataset_from_index / dataset_to_index of meta/episodes
        from_idx, to_idx = episodes.starts.tolist(), episodes.ends.tolist()
        num_frames = sum(b - a - DROP_LAST for a, b in zip(from_idx, to_idx))

        # A LeRobot run (2 processes under accelerate, batch 8) checkpointed at step 137.
        lerobot_state = compute_sampler_state(STEP, num_frames, BATCH, PROCESSES)
        save_state(Path(tmp) / "sampler_state.json", lerobot_state)
        print(f"LeRobot checkpoint at step {STEP}: {lerobot_state} ({num_frames} valid frames)")
        epoch, start = lerobot_state["epoch"], lerobot_state["start_index"]

        # Resume it here: same arguments as LeRobot's sampler, the bare state loads as it is.
        sampler = EpisodeAwareSampler.from_lerobot(
            root, drop_n_last_frames=DROP_LAST, shuffle=True, seed=SEED, permutation="randperm"
        )
        sampler.load_state_dict(load_state(Path(tmp) / "sampler_state.json"))
        rest = list(iter(sampler))  # the rest of the epoch (list(iter(...)): see the README)
        next_epoch = list(iter(sampler))

        # LeRobot's order, recomputed independently.
        expected = lerobot_order(from_idx, to_idx, SEED, epoch)
        assert rest == expected[start:], "the resumed epoch differs from LeRobot's"
        assert next_epoch == lerobot_order(from_idx, to_idx, SEED, epoch + 1), "next epoch differs"
        print(
            f"resumed epoch {epoch} at sample {start}: {len(rest)} samples left, identical to LeRobot's "
            f"order; epoch {epoch + 1}: all {len(next_epoch)} identical too"
        )

        # The same bare state in a torchdata pipeline: the node starts where the sampler was restored.
        resumed = EpisodeAwareSampler.from_lerobot(
            root, drop_n_last_frames=DROP_LAST, shuffle=True, seed=SEED, permutation="randperm"
        )
        resumed.load_state_dict(lerobot_state)
        loader = Loader(EpisodeSamplerNode.from_sampler(resumed, batch_size=BATCH))
        first_batch = next(iter(loader))
        assert first_batch == expected[start : start + BATCH]
        state = loader.state_dict()["root"]
        print(
            f"Loader: first batch {first_batch} = LeRobot's next {BATCH}; its state is now the full "
            f"format (epoch {state['epoch']}, start_index {state['start_index']}, "
            f"permutation {state['permutation']!r}, fingerprint {state['fingerprint'][:8]}...)"
        )
        accelerate_flow(root)
        print("lerobot_migration OK: LeRobot's order reproduced and its checkpoint resumed exactly")


def cycle(iterable):
    """LeRobot's ``lerobot.utils.utils.cycle``."""
    iterator = iter(iterable)
    while True:
        try:
            yield next(iterator)
        except StopIteration:
            iterator = iter(iterable)


def accelerate_flow(root: Path) -> None:
    """lerobot_train.py's data path under accelerate (one CPU process), killed and resumed."""
    try:
        from accelerate import Accelerator
    except ImportError:
        print("accelerate is not installed: skipping the accelerate part (pip install accelerate)")
        return
    import logging

    from torch.utils.data import DataLoader

    from episode_sampler.integrations.accelerate import resume_dataloader

    accelerator = Accelerator(cpu=True)
    frames = torch.arange(int(read_episode_index(root).ends.max()))  # item i is frame i

    def train(step: int, steps: int, checkpoint: dict | None, how: str) -> list[list[int]]:
        sampler = EpisodeAwareSampler.from_lerobot(
            root, drop_n_last_frames=DROP_LAST, shuffle=True, seed=SEED
        )
        if checkpoint is not None and how == "plain":  # lerobot_train.py with the import swapped
            sampler.load_state_dict(
                compute_sampler_state(
                    step, len(sampler), checkpoint["batch_size"], checkpoint["num_processes"]
                )
            )
        dataloader = accelerator.prepare(
            DataLoader(frames, batch_size=BATCH, sampler=sampler, drop_last=False)
        )
        if checkpoint is not None and how == "helper":
            resume_dataloader(dataloader, sampler, **checkpoint)
        dl_iter = cycle(dataloader)
        return [next(dl_iter).tolist() for _ in range(step, steps)]

    steps_per_epoch = -(-len(EpisodeAwareSampler.from_lerobot(root, drop_n_last_frames=DROP_LAST)) // BATCH)
    total = 2 * steps_per_epoch + 5
    uninterrupted = train(0, total, None, "")
    stops = [3, steps_per_epoch - 1, steps_per_epoch, steps_per_epoch + 7]
    # the plain flow logs "ignoring set_epoch(0) after a restore" once per sampler: expected here
    logging.getLogger("episode_sampler.sampler").setLevel(logging.ERROR)
    for how in ("plain", "helper"):
        for step in stops:
            checkpoint = {"step": step, "num_processes": accelerator.num_processes, "batch_size": BATCH}
            assert train(step, total, checkpoint, how) == uninterrupted[step:], (how, step)
    print(
        f"accelerate: {steps_per_epoch} steps per epoch; resumed at steps {stops} with the import swapped "
        "and with resume_dataloader: every batch identical to the uninterrupted run"
    )


if __name__ == "__main__":
    main()
