#!/usr/bin/env python
"""LeRobot's training flow (``lerobot_train.py``) under the real accelerate, one or two CPU processes.

    python tests/helpers/accelerate_flow.py SPEC.json                              # one process
    torchrun --nproc-per-node 2 tests/helpers/accelerate_flow.py SPEC.json         # two processes (gloo)

Used by ``tests/integrations/test_accelerate.py``. ``SPEC.json`` is ``{"out": dir, "jobs": [...]}``; the jobs
run one after the other in the same processes (to pay the torch/accelerate import once), each with
its own ``Accelerator``, sampler, ``DataLoader`` and ``accelerator.prepare``:

- ``{"kind": "run", "name", "mode", "batch_size", "steps", "checkpoints": [...], "kill_at": k|null}``:
  train from scratch; after step ``s`` in ``checkpoints`` write LeRobot's checkpoint fields
  ``{"step", "num_processes", "batch_size"}`` to ``{name}_ckpt{s}.json``; with ``kill_at``, SIGKILL
  this process after step ``k`` (a crash: no cleanup, torchrun tears the other rank down).
- ``{"kind": "resume", "name", "ckpt", "mode", "batch_size", "steps", "flow"}``: build everything
  afresh, restore from the checkpoint as ``flow`` says, train up to ``steps``:
  ``"plain"``: LeRobot's script with only the import swapped (``load_state_dict(compute_sampler_state
  (step, len(sampler), batch_size, num_processes, **mode))``); ``"synced"``: plus
  ``dataloader.set_epoch(epoch)`` after ``prepare``; ``"helper"``: ``resume_dataloader``.

Every process appends each step's batch to ``{name}_rank{r}.jsonl``. Each step all-reduces a tensor
over gloo, as DDP's gradient sync would, so the processes stay in lockstep.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import torch
from accelerate import Accelerator, DataLoaderConfiguration
from torch.utils.data import DataLoader, Dataset

from episode_sampler import EpisodeAwareSampler, compute_sampler_state
from episode_sampler.integrations.accelerate import resume_dataloader

FROM = [0, 10, 25, 31, 40]
TO = [9, 25, 31, 40, 46]  # 9 + 15 + 6 + 9 + 6 = 45 frames
SEED = 1000


class Frames(Dataset):
    def __len__(self) -> int:
        return max(TO)

    def __getitem__(self, i: int) -> int:
        return i


def cycle(iterable):
    """LeRobot's ``lerobot.utils.utils.cycle``."""
    iterator = iter(iterable)
    while True:
        try:
            yield next(iterator)
        except StopIteration:
            iterator = iter(iterable)


def build(job: dict, accelerator_kw: dict):
    mode = job["mode"]
    accelerator = Accelerator(
        cpu=True,
        dataloader_config=DataLoaderConfiguration(
            split_batches=mode.get("split_batches", False), even_batches=mode.get("even_batches", True)
        ),
        **accelerator_kw,
    )
    sampler = EpisodeAwareSampler(FROM, TO, shuffle=True, seed=SEED)
    return accelerator, sampler


def loader(sampler, job: dict) -> DataLoader:
    return DataLoader(
        Frames(),
        batch_size=job["batch_size"],
        sampler=sampler,
        drop_last=False,
        num_workers=job.get("workers", 0),
    )


def train(accelerator, dataloader, job: dict, out: Path, step: int) -> None:
    rank = accelerator.process_index
    dl_iter = cycle(dataloader)
    with open(out / f"{job['name']}_rank{rank}.jsonl", "w") as log:
        for _ in range(step, job["steps"]):
            batch = next(dl_iter)
            if accelerator.num_processes > 1:
                torch.distributed.all_reduce(torch.ones(1))
            step += 1
            log.write(json.dumps([step, batch.tolist()]) + "\n")
            log.flush()
            if step in job.get("checkpoints", ()) and accelerator.is_main_process:
                ckpt = {
                    "step": step,
                    "num_processes": accelerator.num_processes,
                    "batch_size": job["batch_size"],
                }
                (out / f"{job['name']}_ckpt{step}.json").write_text(json.dumps(ckpt))
            if step == job.get("kill_at"):
                accelerator.wait_for_everyone()
                if accelerator.is_main_process:
                    os.kill(os.getpid(), signal.SIGKILL)
                accelerator.wait_for_everyone()  # rank 1 waits here until torchrun tears it down


def run_job(job: dict, out: Path) -> None:
    accelerator, sampler = build(job, {})
    if job["kind"] == "run":
        dataloader = accelerator.prepare(loader(sampler, job))
        train(accelerator, dataloader, job, out, 0)
        return
    ckpt = json.loads(Path(job["ckpt"]).read_text())
    step, procs, batch = ckpt["step"], ckpt["num_processes"], ckpt["batch_size"]
    flow = job["flow"]
    if flow in ("plain", "synced"):  # lerobot_train.py: the sampler is restored before the DataLoader
        mode = {k: v for k, v in job["mode"].items() if k in ("split_batches", "even_batches")}
        if not mode.get("even_batches", True):
            mode["process_index"] = accelerator.process_index
        state = compute_sampler_state(step, len(sampler), batch, procs, **mode)
        sampler.load_state_dict(state)
    dataloader = accelerator.prepare(loader(sampler, job))
    if flow == "synced":
        dataloader.set_epoch(state["epoch"])
    elif flow == "helper":
        resume_dataloader(dataloader, sampler, step=step, num_processes=procs, batch_size=batch)
    train(accelerator, dataloader, job, out, step)


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    out = Path(spec["out"])
    for job in spec["jobs"]:
        run_job(job, out)
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
