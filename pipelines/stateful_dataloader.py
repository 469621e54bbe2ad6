#!/usr/bin/env python
"""Train through torchdata's ``StatefulDataLoader`` with an ``EpisodeAwareSampler``, resumably.

    StatefulDataLoader(LeRobotFrames, batch_sampler=BatchSampler(EpisodeAwareSampler(...)), num_workers=W)

``torchdata.stateful_dataloader.sampler.BatchSampler`` saves the sampler's ``state_dict()`` inside the
loader's, so a restore seeks the sampler in O(1) (``permutation="feistel"``) instead of replaying the
epoch. ``LeRobotFrames.__getitems__`` reads each batch with one vectorized gather per file touched.

One process (``--resume`` continues from ``--checkpoint`` when it exists, so the same command both
starts and resumes a run)::

    python pipelines/stateful_dataloader.py --episodes 100 --epochs 2 --checkpoint /tmp/sdl.json --resume

Several (gloo, CPU)::

    torchrun --standalone --nproc-per-node 2 pipelines/stateful_dataloader.py --episodes 100 --epochs 2 \
        --checkpoint /tmp/sdl.json --resume

With the same number of processes and ``--workers`` the whole
``StatefulDataLoader.state_dict()`` is restored; otherwise only the sampler state nested in it (elastic
resume: exactly the samples no rank had consumed, for any new number of ranks).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch
from torchdata.stateful_dataloader import StatefulDataLoader
from torchdata.stateful_dataloader.sampler import BatchSampler

from episode_sampler import EpisodeAwareSampler
from episode_sampler.distributed import check_consistent

if str(Path(__file__).resolve().parent) not in sys.path:  # also when loaded by path, not run
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return _common.parse_args(
        Path(__file__).name,
        "Train a tiny model through StatefulDataLoader(batch_sampler=BatchSampler("
        "EpisodeAwareSampler)) with exact resume from --checkpoint (also under torchrun).",
        "DataLoader worker processes",
        argv,
    )


def main(argv: list[str] | None = None) -> int:
    return _common.run(parse_args(argv), "stateful-dl", train)


def train(args: argparse.Namespace, root: str, rank: int, world: int) -> int:
    torch.manual_seed(args.seed)
    dataset = _common.open_dataset(root)
    cameras = _common.video_keys(dataset.info)
    scale = float(len(dataset))
    sampler = EpisodeAwareSampler.from_lerobot(root, **_common.sampler_options(args, rank, world))
    with _common.no_set_vital_warning():  # torchdata 0.11 calls torch.set_vital, deprecated by torch
        loader = StatefulDataLoader(
            dataset,
            batch_sampler=BatchSampler(sampler, args.batch_size, drop_last=False),
            num_workers=args.workers,
        )
    model, optim, net = _common.build_model(dataset, world, args.lr)

    step, epoch = 0, 0
    ckpt = Path(args.checkpoint) if args.checkpoint else None
    if ckpt is not None and args.resume and ckpt.exists():
        record = _common.load_checkpoint(ckpt, net, optim)
        step = int(record["step"])
        if record["workers"] == args.workers and record["world_size"] == world:
            # The whole loader state. A state taken right after an epoch's last batch first ends that
            # (empty) pass, as the uninterrupted loader would: the loop's own epoch counter stays right.
            loader.load_state_dict(record["loader"])
            epoch = int(record["epoch"])
        else:  # another world size or worker count: restore the sampler alone (elastic resume)
            sampler.load_state_dict(record["sampler"])
            epoch = int(record["sampler"]["epoch"])
        _common.report_resume(ckpt, step, epoch, record["world_size"], world, rank)
    elif ckpt is not None:
        _common.report_fresh_start(ckpt, args.checkpoint_every, rank)
    check_consistent(sampler)

    def inputs(batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        return _common.model_input(batch, cameras, scale), batch["action"].float() / scale

    return _common.fit(
        args, loader, model, optim, inputs, step=step, epoch=epoch, rank=rank, world=world, record_world=True
    )


if __name__ == "__main__":
    sys.exit(main())
