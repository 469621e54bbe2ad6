#!/usr/bin/env python
"""Train through the canonical torchdata graph, resumably, on one process or under torchrun.

    EpisodeSamplerNode(batch_size=B, shuffle=True)        frame indices of this rank, in batches
      -> Mapper / ParallelMapper(LeRobotFrames.get_batch)  one gather per file touched
      -> Mapper(collate)                                   model-ready tensors
      -> Prefetcher -> PinMemory (only with CUDA) -> Loader

One process (``--resume`` continues from ``--checkpoint`` when it exists, so the same command both
starts and resumes a run)::

    python pipelines/train_loader.py --episodes 100 --epochs 2 --checkpoint /tmp/ckpt/state.json --resume

Several (gloo, CPU; each rank takes global positions r, r + W, ...)::

    torchrun --standalone --nproc-per-node 2 pipelines/train_loader.py --episodes 100 --epochs 2 \
        --checkpoint /tmp/ckpt/state.json --resume

A resume takes exactly the remaining samples, also with a different number of processes (elastic
resume). The checkpoint is ``state.json`` (step, epoch,
``Loader.state_dict()`` and the sampler state nested in it, written atomically with
``episode_sampler.save_state``) plus ``state.json.step-<N>.pt`` (model and optimizer, written to a
temporary file and renamed *before* ``state.json`` commits to it). Rank 0 writes it; every rank reads it.

What it prints (rank 0): a line before and after writing the synthetic dataset (without ``--root``),
where it starts from (``resumed from ...``; ``no checkpoint ... yet``; or, when the previous run was
killed before its first checkpoint, that training starts over -- ``state.json.started`` marks a run that
has not committed a checkpoint yet), a line per checkpoint, and each rank's summary. Rerun after the
run is complete, it says so and trains nothing.
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path
from typing import Any

import torch
from torchdata.nodes import Loader, Mapper, ParallelMapper, PinMemory, Prefetcher

from episode_sampler.distributed import check_consistent
from episode_sampler.node import EpisodeSamplerNode

if str(Path(__file__).resolve().parent) not in sys.path:  # also when loaded by path, not run
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return _common.parse_args(
        Path(__file__).name,
        "Train a tiny model through EpisodeSamplerNode -> Mapper/ParallelMapper -> Prefetcher "
        "-> Loader, with exact resume from --checkpoint (also under torchrun, with any number of ranks).",
        "ParallelMapper threads (0: a plain Mapper)",
        argv,
    )


def build_loader(args: argparse.Namespace, root: str, rank: int, world: int) -> tuple[Loader, Any, Any]:
    """``(loader, node, dataset)`` for this rank."""
    dataset = _common.open_dataset(root)
    cameras = _common.video_keys(dataset.info)
    scale = float(len(dataset))
    node = EpisodeSamplerNode.from_lerobot(
        root, batch_size=args.batch_size, **_common.sampler_options(args, rank, world)
    )
    if args.workers > 0:
        read = ParallelMapper(
            node, dataset.get_batch, num_workers=args.workers, method="thread", in_order=True
        )
    else:
        read = Mapper(node, dataset.get_batch)

    def collate(batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {
            "x": _common.model_input(batch, cameras, scale),
            "y": batch["action"].float() / scale,
            "index": batch["index"],
        }

    graph: Any = Prefetcher(Mapper(read, collate), prefetch_factor=4)
    if torch.cuda.is_available():
        graph = PinMemory(graph)
    return Loader(graph, restart_on_stop_iteration=True), node, dataset


def main(argv: list[str] | None = None) -> int:
    return _common.run(parse_args(argv), "train-loader", train)


def train(args: argparse.Namespace, root: str, rank: int, world: int) -> int:
    torch.manual_seed(args.seed)
    loader, node, dataset = build_loader(args, root, rank, world)
    model, optim, net = _common.build_model(dataset, world, args.lr)

    step, epoch = 0, 0
    ckpt = Path(args.checkpoint) if args.checkpoint else None
    if ckpt is not None and args.resume and ckpt.exists():
        record = _common.load_checkpoint(ckpt, net, optim)
        step = int(record["step"])
        saved_world = int(record["sampler"]["world_size"])
        if record["workers"] == args.workers and saved_world == world:
            loader.load_state_dict(record["loader"])  # the whole graph's state, as saved
        else:  # another graph or world size: restore the sampler (elastic), rebuild the rest
            node.load_state_dict(record["sampler"])
        epoch = int(record["sampler"]["epoch"])  # the epoch the restored loader continues
        _common.report_resume(ckpt, step, epoch, saved_world, world, rank)
    elif ckpt is not None:
        _common.report_fresh_start(ckpt, args.checkpoint_every, rank)
    check_consistent(node)  # every rank: same layout, seed, order, epoch and position

    try:
        return _common.fit(
            args,
            loader,
            model,
            optim,
            lambda b: (b["x"], b["y"]),
            step=step,
            epoch=epoch,
            rank=rank,
            world=world,
        )
    finally:
        # Stop the pipeline's threads before the interpreter exits: the Prefetcher and ParallelMapper keep
        # reading ahead in daemon threads, and one still inside a C++ video decoder at exit can abort the
        # process ("terminate called without an active exception"). torchdata stops them when its
        # iterators are collected; then the decoders and their threads are closed.
        del loader
        gc.collect()
        dataset.close()


if __name__ == "__main__":
    sys.exit(main())
