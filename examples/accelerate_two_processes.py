#!/usr/bin/env python
"""LeRobot's training data path (``lerobot_train.py``) under accelerate on several CPU processes, with only
the sampler import swapped: "killed" at several steps and resumed from LeRobot's checkpoint fields.

    torchrun --standalone --nproc-per-node 2 examples/accelerate_two_processes.py   # 2 processes (gloo)
    python examples/accelerate_two_processes.py                                     # 1 process

Needs ``pip install accelerate``. Every process trains the uninterrupted run first, then, for each stop,
builds a fresh sampler, ``DataLoader`` and ``accelerator.prepare`` as a restarted run would, restores the
sampler from LeRobot's checkpoint fields ``{"step", "num_processes", "batch_size"}`` with
``compute_sampler_state`` (what LeRobot's script does), and checks that every later batch of this
process is the uninterrupted run's. An epoch here fills every process's last batch, so accelerate
pads nothing (its ``even_batches`` padding repeats the first samples *this pass* yielded, which after a
resume mid-epoch are other samples: see "accelerate's padding" in docs/lerobot-migration.md).
"""

from __future__ import annotations

import logging

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from episode_sampler import EpisodeAwareSampler, compute_sampler_state

# 8 episodes of 40..90 frames, 10 last frames of each dropped (delta timestamps): 480 valid frames
LENGTHS = [40, 90, 70, 50, 80, 60, 85, 85]
FROM = [sum(LENGTHS[:i]) for i in range(len(LENGTHS))]
TO = [f + n for f, n in zip(FROM, LENGTHS)]
BATCH, SEED, DROP = 8, 7, 10


def cycle(iterable):
    """LeRobot's ``lerobot.utils.utils.cycle``."""
    iterator = iter(iterable)
    while True:
        try:
            yield next(iterator)
        except StopIteration:
            iterator = iter(iterable)


def main() -> None:
    try:
        from accelerate import Accelerator
    except ImportError:
        print("accelerate is not installed: pip install accelerate")
        return
    accelerator = Accelerator(cpu=True)
    procs, rank = accelerator.num_processes, accelerator.process_index
    frames = torch.arange(TO[-1])  # item i is frame i

    def run(step: int, steps: int) -> list[list[int]]:
        """This process's batches ``step + 1 .. steps`` of a run (restored at ``step`` if > 0)."""
        sampler = EpisodeAwareSampler(FROM, TO, drop_n_last_frames=DROP, shuffle=True, seed=SEED)
        if step > 0:  # lerobot_train.py with the import swapped, from its checkpoint fields
            ckpt = {"step": step, "num_processes": procs, "batch_size": BATCH}
            sampler.load_state_dict(
                compute_sampler_state(ckpt["step"], len(sampler), ckpt["batch_size"], ckpt["num_processes"])
            )
        dataloader = accelerator.prepare(DataLoader(frames, batch_size=BATCH, sampler=sampler))
        batches = cycle(dataloader)
        return [next(batches).tolist() for _ in range(step, steps)]

    valid = len(EpisodeAwareSampler(FROM, TO, drop_n_last_frames=DROP))
    per_epoch = valid // (BATCH * procs)
    assert per_epoch * BATCH * procs == valid, "choose sizes without a padded last batch"
    total = 2 * per_epoch + 3
    uninterrupted = run(0, total)
    stops = [1, per_epoch // 2, per_epoch - 1, per_epoch, per_epoch + 5]
    # a restored sampler logs "ignoring set_epoch(0) after a restore" (accelerate's call): expected
    logging.getLogger("episode_sampler.sampler").setLevel(logging.ERROR)
    for step in stops:
        assert run(step, total) == uninterrupted[step:], f"process {rank}: resume at step {step} differs"
    if dist.is_initialized():
        dist.barrier()  # every process has checked its own stream
    if accelerator.is_main_process:
        print(
            f"accelerate_two_processes OK: {procs} process(es), {per_epoch} steps per epoch; resumed at "
            f"steps {stops}: every batch of every process identical to the uninterrupted run"
        )
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
