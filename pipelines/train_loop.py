#!/usr/bin/env python
"""A crash-safe, elastic training loop: EpisodeSamplerNode -> Batcher -> torchdata Loader, one per rank.

Each step every rank takes one batch of frame indices, "trains" a tiny linear model on it (gradients
are all-reduced, which also keeps the ranks in lockstep as DDP would), appends the indices it
consumed to its ``--log-indices`` file (flushed and fsynced per step) and, every ``--checkpoint-every``
steps, at each ``--checkpoint-step`` and at the end, rank 0 writes ``{"step", "loader"}`` atomically
(temporary file, fsync, rename). Kill the run at any moment; ``--resume`` continues from the
checkpoint with any number of processes: the state of one rank restores every rank of the new world
(elastic resume). Without ``--root`` the layout is the one ``--episodes N`` synthetic episodes have in
the other pipelines (or ``--episode-lengths``); no frames are read.

One process (``--resume`` continues from ``--checkpoint`` when it exists)::

    python pipelines/train_loop.py --steps 20 --checkpoint /tmp/ckpt.json --checkpoint-every 5 --resume

Three processes (gloo, CPU), then resume on two::

    torchrun --standalone --nproc-per-node 3 pipelines/train_loop.py --checkpoint /tmp/ckpt.json \
        --steps 8 --log-indices /tmp/logs/first.rank{rank}.jsonl
    torchrun --standalone --nproc-per-node 2 pipelines/train_loop.py --checkpoint /tmp/ckpt.json --resume \
        --log-indices /tmp/logs/second.rank{rank}.jsonl

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
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
import torch.distributed as dist
from torchdata.nodes import Batcher, Loader

from episode_sampler import load_state, save_state
from episode_sampler.distributed import check_consistent, get_rank_and_world_size
from episode_sampler.node import EpisodeSamplerNode

if str(Path(__file__).resolve().parent) not in sys.path:  # also when loaded by path, not run
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

CHECKPOINT_VERSION = 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = _common.base_parser(
        prog=Path(__file__).name,
        description="Train through EpisodeSamplerNode -> Batcher -> Loader with crash-safe checkpoints; "
        "resume with --resume on any number of processes (torchrun, or RANK/WORLD_SIZE/MASTER_ADDR/"
        "MASTER_PORT in the environment; a single process without them).",
    )
    layout = p.add_argument_group("layout without --root (no frames are read)")
    layout.add_argument(
        "--episode-lengths", help="comma-separated episode lengths, e.g. 12,7,30 (instead of random ones)"
    )
    layout.add_argument("--min-length", type=int, default=20, help="random layout: shortest episode (20)")
    layout.add_argument("--max-length", type=int, default=60, help="random layout: longest episode (60)")
    layout.add_argument("--layout-seed", type=int, default=0, help="random layout: numpy seed (0)")
    extra = p.add_argument_group("train_loop.py only")
    extra.add_argument(
        "--checkpoint-step",
        type=int,
        action="append",
        default=[],
        help="also write the checkpoint after this step (repeatable)",
    )
    extra.add_argument("--no-shuffle", action="store_true", help="keep the layout order")
    extra.add_argument("--drop-last", action="store_true", help="drop the epoch's tail instead of padding")
    extra.add_argument("--step-delay", type=float, default=0.0, help="seconds to sleep after each step")
    extra.add_argument("--backend", default="gloo", help="torch.distributed backend (default: gloo)")
    args = p.parse_args(argv)
    if args.episode_lengths is not None:
        if args.root is not None or args.episodes is not None:
            p.error("--episode-lengths is a layout of its own: not with --root or --episodes")
        try:
            lengths = [int(x) for x in args.episode_lengths.split(",") if x.strip()]
        except ValueError:
            p.error(f"--episode-lengths must be comma-separated integers, got {args.episode_lengths!r}")
        if not lengths or min(lengths) < 1:
            p.error(f"--episode-lengths must be positive integers, got {args.episode_lengths!r}")
    if not 1 <= args.min_length <= args.max_length:
        p.error(f"need 1 <= --min-length <= --max-length, got {args.min_length} and {args.max_length}")
    if args.checkpoint_step and not args.checkpoint:
        p.error("--checkpoint-step needs --checkpoint")
    _common.check_args(p, args)
    if args.episode_lengths is not None:
        args.episodes = None
    return args


def episode_lengths(args: argparse.Namespace) -> list[int]:
    """The layout of the synthetic runs: --episode-lengths, or random lengths from --layout-seed."""
    if args.episode_lengths:
        return [int(x) for x in args.episode_lengths.split(",") if x.strip()]
    rng = np.random.default_rng(args.layout_seed)  # as write_lerobot_dataset draws them
    return rng.integers(args.min_length, args.max_length + 1, size=args.episodes).tolist()


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
    if args.root:
        return EpisodeSamplerNode.from_lerobot(args.root, **kw)
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
    _common.set_threads(args)
    init_distributed(args.backend)
    rank, world_size = get_rank_and_world_size()
    node = build_node(args, rank, world_size)
    loader = Loader(Batcher(node, batch_size=args.batch_size, drop_last=False))
    step = 0
    ckpt = Path(args.checkpoint) if args.checkpoint else None
    if ckpt is not None and args.resume and ckpt.exists():
        checkpoint = load_state(ckpt)
        version = checkpoint.get("version")
        if version != CHECKPOINT_VERSION:
            raise ValueError(f"{ckpt}: unknown checkpoint version {version!r}")
        step = int(checkpoint["step"])
        loader.load_state_dict(checkpoint["loader"])
        if rank == 0:
            print(
                f"resumed from {ckpt} at step {step} (saved by {checkpoint['world_size']} rank(s), "
                f"now {world_size})",
                flush=True,
            )
    elif ckpt is not None and rank == 0:
        print(f"no checkpoint at {ckpt} yet: starting from scratch", flush=True)

    def save() -> None:
        state = {"version": CHECKPOINT_VERSION, "step": step, "world_size": world_size}
        save_state(ckpt, {**state, "loader": loader.state_dict()})

    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1)
    lr = 1e-3  # plain SGD by hand: torch.optim's first step imports torch._dynamo (~2 s per process)
    log = open_log(args.log_indices, rank)
    checkpoint_steps = set(args.checkpoint_step)
    checked = False
    saved_at = step if ckpt is not None and args.resume and ckpt.exists() else None
    try:
        while args.steps is None or step < args.steps:
            it = iter(loader)
            if not checked:  # after the restore, before the first step: all ranks agree?
                check_consistent(node)
                checked = True
            epoch = current_epoch(loader)
            if epoch >= args.epochs:
                break
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
                every = step % args.checkpoint_every == 0
                if ckpt is not None and rank == 0 and (step in checkpoint_steps or every):
                    save()
                    saved_at = step
                if args.step_delay:
                    time.sleep(args.step_delay)
                if args.steps is not None and step >= args.steps:
                    break
        if ckpt is not None and rank == 0 and saved_at != step:
            save()  # the end of the run
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
