#!/usr/bin/env python
"""Train through torchdata's ``StatefulDataLoader`` with an ``EpisodeAwareSampler``, resumably.

    StatefulDataLoader(LeRobotFrames, batch_sampler=BatchSampler(EpisodeAwareSampler(...)), num_workers=W)

``torchdata.stateful_dataloader.sampler.BatchSampler`` saves the sampler's ``state_dict()`` inside the
loader's, so a restore seeks the sampler in O(1) (``permutation="feistel"``) instead of replaying the
epoch. ``LeRobotFrames.__getitems__`` reads each batch with one Arrow ``take`` per file touched.

One process::

    python pipelines/stateful_dataloader.py --synthetic 100 --epochs 2 --checkpoint /tmp/sdl/state.json

Several (gloo, CPU)::

    torchrun --standalone --nproc_per_node 2 pipelines/stateful_dataloader.py --synthetic 100 \
        --checkpoint /tmp/sdl/state.json

Run the same command again to resume. With the same number of processes and ``--workers`` the whole
``StatefulDataLoader.state_dict()`` is restored; otherwise only the sampler state nested in it (elastic
resume: exactly the samples no rank had consumed, for any new number of ranks).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torchdata.stateful_dataloader import StatefulDataLoader
from torchdata.stateful_dataloader.sampler import BatchSampler

from episode_sampler import EpisodeAwareSampler, LeRobotFrames, load_state, save_state, write_lerobot_dataset
from episode_sampler.distributed import check_consistent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Train a tiny model through StatefulDataLoader(batch_sampler=BatchSampler("
        "EpisodeAwareSampler)) with exact resume from --checkpoint (also under torchrun).",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--root", help="LeRobot v3 dataset directory")
    src.add_argument(
        "--synthetic",
        type=int,
        metavar="N",
        default=None,
        help="write a synthetic dataset of N episodes to a temporary directory (default: 60)",
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--permutation", choices=("feistel", "randperm"), default="feistel")
    p.add_argument("--order", choices=("frames", "episodes", "blocks"), default="frames")
    p.add_argument("--block-size", type=int, default=None, help="frames per block for --order blocks")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="stop once the global step count (including steps before a resume) reaches this",
    )
    p.add_argument("--checkpoint", default=None, help="checkpoint JSON path; resumed from if it exists")
    p.add_argument("--checkpoint-every", type=int, default=50, help="steps between checkpoints")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument(
        "--log-indices",
        default=None,
        metavar="PATH",
        help="append each step's frame indices as JSON lines here ('{rank}' is replaced; "
        "with several ranks and no '{rank}', '.rank<r>' is appended)",
    )
    args = p.parse_args(argv)
    for name in ("batch_size", "epochs", "checkpoint_every"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.workers < 0:
        p.error("--workers must be >= 0")
    if args.steps is not None and args.steps < 0:
        p.error("--steps must be >= 0")
    if args.order == "blocks" and args.block_size is None:
        p.error("--order blocks needs --block-size")
    if args.root is None and args.synthetic is None:
        args.synthetic = 60
    if args.synthetic is not None and args.synthetic < 1:
        p.error("--synthetic must be >= 1")
    return args


def init_distributed() -> tuple[int, int]:
    """Join the process group when launched by torchrun with WORLD_SIZE > 1 (gloo works on CPU)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def sampler_state(obj: Any) -> dict[str, Any] | None:
    """The episode-sampler state nested in a StatefulDataLoader state_dict."""
    if isinstance(obj, Mapping):
        if "fingerprint" in obj and "start_index" in obj:
            return dict(obj)
        obj = list(obj.values())
    if isinstance(obj, list):
        for value in obj:
            found = sampler_state(value)
            if found is not None:
                return found
    return None


def save_checkpoint(
    path: Path,
    step: int,
    epoch: int,
    args: argparse.Namespace,
    model: Any,
    optim: Any,
    loader: StatefulDataLoader,
    world: int,
) -> int:
    """Model file first (tmp + rename), then the JSON that names it (the commit), then old files go."""
    path.parent.mkdir(parents=True, exist_ok=True)
    model_path = path.with_name(f"{path.name}.step-{step:08d}.pt")
    tmp = model_path.with_name(model_path.name + f".{os.getpid()}.tmp")
    net = model.module if hasattr(model, "module") else model
    torch.save({"model": net.state_dict(), "optimizer": optim.state_dict(), "step": step}, tmp)
    os.replace(tmp, model_path)
    loader_state = loader.state_dict()
    record = {
        "step": step,
        "epoch": epoch,  # the training loop's epoch (the pass the loader is in)
        "model": model_path.name,
        "workers": args.workers,
        "world_size": world,
        "loader": loader_state,
        "sampler": sampler_state(loader_state),
    }
    size = save_state(path, record)
    for old in path.parent.glob(f"{path.name}.step-*.pt"):
        if old != model_path:
            old.unlink(missing_ok=True)
    return size


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rank, world = init_distributed()
    tmp = None
    if args.root is None:  # every rank writes the same deterministic dataset: no shared disk needed
        tmp = tempfile.mkdtemp(prefix=f"stateful-dl-r{rank}-")
        write_lerobot_dataset(tmp, num_episodes=args.synthetic, seed=0)
    try:
        return train(args, args.root or tmp, rank, world)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        if dist.is_initialized():
            dist.destroy_process_group()


def train(args: argparse.Namespace, root: str, rank: int, world: int) -> int:
    torch.manual_seed(args.seed)
    dataset = LeRobotFrames(root, columns=["index", "observation.state", "action"])
    scale = float(len(dataset))
    sampler = EpisodeAwareSampler.from_lerobot(
        root,
        shuffle=True,
        seed=args.seed,
        permutation=args.permutation,
        order=args.order,
        block_size=args.block_size if args.order == "blocks" else None,
        rank=rank,
        world_size=world,
        drop_last=False,  # equal step counts on every rank
    )
    loader = StatefulDataLoader(
        dataset,
        batch_sampler=BatchSampler(sampler, args.batch_size, drop_last=False),
        num_workers=args.workers,
    )
    features = dataset.info["features"]
    model: Any = torch.nn.Linear(features["observation.state"]["shape"][0], features["action"]["shape"][0])
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    optim = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    net = model.module if world > 1 else model

    step, epoch = 0, 0
    ckpt = Path(args.checkpoint) if args.checkpoint else None
    if ckpt is not None and ckpt.exists():
        record = load_state(ckpt)
        payload = torch.load(ckpt.with_name(record["model"]), map_location="cpu", weights_only=True)
        net.load_state_dict(payload["model"])
        optim.load_state_dict(payload["optimizer"])
        step = int(record["step"])
        if record["workers"] == args.workers and record["world_size"] == world:
            # The whole loader state. A state taken right after an epoch's last batch first ends that
            # (empty) pass, as the uninterrupted loader would: the loop's own epoch counter stays right.
            loader.load_state_dict(record["loader"])
            epoch = int(record["epoch"])
        else:  # another world size or worker count: restore the sampler alone (elastic resume)
            sampler.load_state_dict(record["sampler"])
            epoch = int(record["sampler"]["epoch"])
        if rank == 0:
            print(
                f"resumed from {ckpt} at step {step} (epoch {epoch}, saved by {record['world_size']} "
                f"rank(s), now {world})",
                flush=True,
            )
    check_consistent(sampler)

    log = None
    if args.log_indices is not None:
        path = args.log_indices.format(rank=rank) if "{rank}" in args.log_indices else args.log_indices
        if world > 1 and "{rank}" not in args.log_indices:
            path += f".rank{rank}"
        log = open(path, "a", encoding="utf-8")
    samples, t0, loss = 0, time.perf_counter(), torch.zeros(())
    stop = False
    while epoch < args.epochs and not stop:
        if args.steps is not None and step >= args.steps:
            break
        for batch in loader:
            x = batch["observation.state"].float() / scale
            y = batch["action"].float() / scale
            loss = torch.nn.functional.mse_loss(model(x), y)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            step += 1
            samples += len(batch["index"])
            if log is not None:
                log.write(
                    json.dumps(
                        {"step": step, "epoch": epoch, "rank": rank, "indices": batch["index"].tolist()}
                    )
                    + "\n"
                )
                log.flush()
            if ckpt is not None and rank == 0 and step % args.checkpoint_every == 0:
                save_checkpoint(ckpt, step, epoch, args, model, optim, loader, world)
            if args.steps is not None and step >= args.steps:
                stop = True
                break
        else:
            epoch += 1
    if ckpt is not None and rank == 0:
        size = save_checkpoint(ckpt, step, epoch, args, model, optim, loader, world)
        print(f"checkpoint {ckpt} ({size} bytes) at step {step}", flush=True)
    if log is not None:
        log.close()
    seconds = time.perf_counter() - t0
    print(
        f"rank {rank}/{world}: {samples} samples in {seconds:.2f} s "
        f"({samples / max(seconds, 1e-9):,.0f}/s), step {step}, epoch {epoch}, "
        f"loss {float(loss.detach()):.3e}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
