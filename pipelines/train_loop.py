#!/usr/bin/env python
"""A crash-safe, elastic training loop: EpisodeSamplerNode -> Batcher -> torchdata Loader, one per rank.

Each step every rank takes one batch of frame indices, "trains" a tiny linear model on it (gradients
are all-reduced, which also keeps the ranks in lockstep as DDP would), appends the indices it
consumed to its log (flushed and fsynced per step) and, at ``--checkpoint-step`` / every
``--checkpoint-every`` steps, rank 0 writes ``{"step", "loader"}`` atomically (temporary file, fsync,
rename). Kill the run at any moment; ``--resume`` continues from the checkpoint with any number of
processes: the state of one rank restores every rank of the new world (elastic resume).

One process::

    python pipelines/train_loop.py --steps 20 --checkpoint-path /tmp/ckpt.json --checkpoint-every 5

Three processes (gloo, CPU), then resume on two::

    torchrun --nproc-per-node=3 pipelines/train_loop.py --checkpoint-path /tmp/ckpt.json \\
        --checkpoint-step 8 --log-path /tmp/logs/first.rank{rank}.jsonl
    torchrun --nproc-per-node=2 pipelines/train_loop.py --checkpoint-path /tmp/ckpt.json --resume \\
        --stop-at-epoch-end --log-path /tmp/logs/second.rank{rank}.jsonl

Every log line is ``{"step", "epoch", "rank", "world_size", "indices"}``; ``step`` counts optimizer
steps from the start of training, so the lines of a killed run with ``step <= checkpoint step`` plus
the lines of the resumed run are exactly what the model saw.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import timedelta
from typing import IO, Any

import numpy as np
import torch
import torch.distributed as dist
from torchdata.nodes import Batcher, Loader

from episode_sampler import load_state, save_state
from episode_sampler.distributed import check_consistent, get_rank_and_world_size
from episode_sampler.nodes import EpisodeSamplerNode

CHECKPOINT_VERSION = 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Train through EpisodeSamplerNode -> Batcher -> Loader with crash-safe checkpoints; "
        "resume with --resume on any number of processes (torchrun or RANK/WORLD_SIZE/MASTER_ADDR/"
        "MASTER_PORT in the environment; a single process without them).",
    )
    layout = p.add_mutually_exclusive_group()
    layout.add_argument("--lerobot-root", help="LeRobot v3 dataset directory (its episodes are the layout)")
    layout.add_argument(
        "--episode-lengths", help="comma-separated episode lengths, e.g. 12,7,30 (contiguous episodes)"
    )
    p.add_argument("--num-episodes", type=int, default=16, help="random layout: number of episodes")
    p.add_argument("--min-length", type=int, default=5, help="random layout: shortest episode")
    p.add_argument("--max-length", type=int, default=40, help="random layout: longest episode")
    p.add_argument("--layout-seed", type=int, default=0, help="random layout: numpy seed")
    p.add_argument("--batch-size", type=int, default=8, help="samples per rank and step")
    p.add_argument("--steps", type=int, default=1000, help="stop after this many steps in total")
    p.add_argument("--stop-at-epoch-end", action="store_true", help="stop when the epoch in progress ends")
    p.add_argument("--checkpoint-path", default=None, help="checkpoint JSON file (written by rank 0)")
    p.add_argument(
        "--checkpoint-step",
        type=int,
        action="append",
        default=[],
        help="write the checkpoint after this step (repeatable)",
    )
    p.add_argument("--checkpoint-every", type=int, default=0, help="also write it every N steps (0: never)")
    p.add_argument("--resume", action="store_true", help="resume from --checkpoint-path")
    p.add_argument("--permutation", choices=("randperm", "feistel"), default="randperm")
    p.add_argument("--order", choices=("frames", "episodes", "blocks"), default="frames")
    p.add_argument("--block-size", type=int, default=None, help="frames per block with --order blocks")
    p.add_argument("--seed", type=int, default=0, help="shuffle seed")
    p.add_argument("--no-shuffle", action="store_true", help="keep the layout order")
    p.add_argument("--drop-last", action="store_true", help="drop the epoch's tail instead of padding")
    p.add_argument(
        "--log-path", default=None, help="per-rank JSON-lines log of consumed indices ('{rank}': the rank)"
    )
    p.add_argument("--step-delay", type=float, default=0.0, help="seconds to sleep after each step")
    p.add_argument("--backend", default="gloo", help="torch.distributed backend")
    args = p.parse_args(argv)
    if args.resume and not args.checkpoint_path:
        p.error("--resume needs --checkpoint-path")
    if (args.checkpoint_step or args.checkpoint_every) and not args.checkpoint_path:
        p.error("--checkpoint-step/--checkpoint-every need --checkpoint-path")
    if args.order == "blocks" and args.block_size is None:
        p.error("--order blocks needs --block-size")
    return args


def episode_lengths(args: argparse.Namespace) -> list[int]:
    """The layout of the synthetic runs: --episode-lengths, or random lengths from --layout-seed."""
    if args.episode_lengths:
        return [int(x) for x in args.episode_lengths.split(",") if x.strip()]
    rng = np.random.default_rng(args.layout_seed)
    return rng.integers(args.min_length, args.max_length + 1, size=args.num_episodes).tolist()


def build_node(args: argparse.Namespace, rank: int, world_size: int) -> EpisodeSamplerNode:
    kw: dict[str, Any] = dict(
        shuffle=not args.no_shuffle,
        seed=args.seed,
        permutation=args.permutation,
        order=args.order,
        block_size=args.block_size,
        rank=rank,
        world_size=world_size,
        drop_last=args.drop_last,
    )
    if args.lerobot_root:
        return EpisodeSamplerNode.from_lerobot(args.lerobot_root, **kw)
    lengths = episode_lengths(args)
    ends = np.cumsum(lengths)
    return EpisodeSamplerNode((ends - lengths).tolist(), ends.tolist(), **kw)


def init_distributed(backend: str) -> None:
    """Join the process group described by the environment (torchrun sets it), if any."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ and not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=60))


def open_log(template: str | None, rank: int) -> IO[str] | None:
    if not template:
        return None
    path = template.replace("{rank}", str(rank))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return open(path, "a", encoding="utf-8")


def log_step(log: IO[str] | None, record: dict[str, Any]) -> None:
    """One JSON line, flushed and fsynced: a SIGKILL right after a step loses nothing of it."""
    if log is None:
        return
    log.write(json.dumps(record) + "\n")
    log.flush()
    os.fsync(log.fileno())


def current_epoch(loader: Loader) -> int:
    """The epoch of the pass the loader is in (its cached state: before the look-ahead after a restore)."""
    state = loader.state_dict()
    return int(state["root"][Batcher.SOURCE_KEY]["epoch"])


def train(args: argparse.Namespace) -> int:
    init_distributed(args.backend)
    rank, world_size = get_rank_and_world_size()
    node = build_node(args, rank, world_size)
    loader = Loader(Batcher(node, batch_size=args.batch_size, drop_last=False))
    step = 0
    if args.resume:
        checkpoint = load_state(args.checkpoint_path)
        version = checkpoint.get("version")
        if version != CHECKPOINT_VERSION:
            raise ValueError(f"{args.checkpoint_path}: unknown checkpoint version {version!r}")
        step = int(checkpoint["step"])
        loader.load_state_dict(checkpoint["loader"])

    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1)
    lr = 1e-3  # plain SGD by hand: torch.optim's first step imports torch._dynamo (~2 s per process)
    log = open_log(args.log_path, rank)
    checkpoint_steps = set(args.checkpoint_step)
    checked = False
    try:
        while step < args.steps:
            it = iter(loader)
            if not checked:  # after the restore, before the first step: all ranks agree?
                check_consistent(node)
                checked = True
            epoch = current_epoch(loader)
            finished_epoch = True
            for batch in it:
                step += 1
                x = torch.tensor(batch, dtype=torch.float32).unsqueeze(1) / max(1, node.num_frames)
                loss = (model(x) - x).pow(2).mean()
                model.zero_grad()
                loss.backward()
                with torch.no_grad():
                    for param in model.parameters():
                        if dist.is_initialized():  # DDP's gradient all-reduce: keeps ranks in lockstep
                            dist.all_reduce(param.grad)
                            param.grad /= world_size
                        param -= lr * param.grad
                log_step(
                    log,
                    {
                        "step": step,
                        "epoch": epoch,
                        "rank": rank,
                        "world_size": world_size,
                        "indices": list(batch),
                    },
                )
                every = args.checkpoint_every and step % args.checkpoint_every == 0
                if rank == 0 and (step in checkpoint_steps or every):
                    save_state(
                        args.checkpoint_path,
                        {
                            "version": CHECKPOINT_VERSION,
                            "step": step,
                            "world_size": world_size,
                            "loader": loader.state_dict(),
                        },
                    )
                if args.step_delay:
                    time.sleep(args.step_delay)
                if step >= args.steps:
                    finished_epoch = False
                    break
            if args.stop_at_epoch_end and finished_epoch:
                break
    finally:
        if log is not None:
            log.close()
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    if rank == 0:
        print(f"train_loop: rank 0 of {world_size} stopped after step {step}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    return train(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
