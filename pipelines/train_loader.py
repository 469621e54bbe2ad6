#!/usr/bin/env python
"""Train through the canonical torchdata graph, resumably, on one process or under torchrun.

    EpisodeSamplerNode(batch_size=B, shuffle=True)        frame indices of this rank, in batches
      -> Mapper / ParallelMapper(LeRobotFrames.get_batch)  one Arrow take per file touched
      -> Mapper(collate)                                   model-ready tensors
      -> Prefetcher -> PinMemory (only with CUDA) -> Loader

One process::

    python pipelines/train_loader.py --synthetic 100 --epochs 2 --checkpoint /tmp/ckpt/state.json

Several (gloo, CPU; each rank takes global positions r, r + W, ...)::

    torchrun --standalone --nproc_per_node 2 pipelines/train_loader.py --synthetic 100 \
        --checkpoint /tmp/ckpt/state.json

Run the same command again to resume from ``--checkpoint``: exactly the remaining samples, also with
a different number of processes (elastic resume). The checkpoint is ``state.json`` (step, epoch,
``Loader.state_dict()`` and the sampler state nested in it, written atomically with
``episode_sampler.save_state``) plus ``state.json.step-<N>.pt`` (model and optimizer, written to a
temporary file and renamed *before* ``state.json`` commits to it). Rank 0 writes it; every rank reads it.
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
from torchdata.nodes import Loader, Mapper, ParallelMapper, PinMemory, Prefetcher

from episode_sampler import LeRobotFrames, load_state, save_state, write_lerobot_dataset
from episode_sampler.distributed import check_consistent
from episode_sampler.nodes import EpisodeSamplerNode


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Train a tiny model through EpisodeSamplerNode -> Mapper/ParallelMapper -> Prefetcher "
        "-> Loader, with exact resume from --checkpoint (also under torchrun, with any number of ranks).",
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
    p.add_argument("--workers", type=int, default=0, help="ParallelMapper threads (0: a plain Mapper)")
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
    """The episode-sampler state nested in a Loader state_dict (wherever the graph puts it)."""
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


def build_loader(args: argparse.Namespace, root: str, rank: int, world: int) -> tuple[Loader, Any, Any]:
    """``(loader, node, dataset)`` for this rank."""
    dataset = LeRobotFrames(root, columns=["index", "observation.state", "action"])
    scale = float(len(dataset))
    node = EpisodeSamplerNode.from_lerobot(
        root,
        batch_size=args.batch_size,
        shuffle=True,
        seed=args.seed,
        permutation=args.permutation,
        order=args.order,
        block_size=args.block_size if args.order == "blocks" else None,
        rank=rank,
        world_size=world,
        drop_last=False,  # every rank gets ceil(N / W) samples: equal step counts for DDP
    )
    if args.workers > 0:
        read = ParallelMapper(
            node, dataset.get_batch, num_workers=args.workers, method="thread", in_order=True
        )
    else:
        read = Mapper(node, dataset.get_batch)

    def collate(batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {
            "x": batch["observation.state"].float() / scale,
            "y": batch["action"].float() / scale,
            "index": batch["index"],
        }

    graph: Any = Prefetcher(Mapper(read, collate), prefetch_factor=4)
    if torch.cuda.is_available():
        graph = PinMemory(graph)
    return Loader(graph, restart_on_stop_iteration=True), node, dataset


def save_checkpoint(
    path: Path, step: int, epoch: int, args: argparse.Namespace, model: Any, optim: Any, loader: Loader
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
        "epoch": epoch,
        "model": model_path.name,
        "workers": args.workers,
        "loader": loader_state,
        "sampler": sampler_state(loader_state),
    }
    size = save_state(path, record)
    for old in path.parent.glob(f"{path.name}.step-*.pt"):
        if old != model_path:
            old.unlink(missing_ok=True)
    return size


def open_log(args: argparse.Namespace, rank: int, world: int) -> Any:
    if args.log_indices is None:
        return None
    path = args.log_indices.format(rank=rank) if "{rank}" in args.log_indices else args.log_indices
    if world > 1 and "{rank}" not in args.log_indices:
        path += f".rank{rank}"
    return open(path, "a", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rank, world = init_distributed()
    tmp = None
    if args.root is None:  # every rank writes the same deterministic dataset: no shared disk needed
        tmp = tempfile.mkdtemp(prefix=f"train-loader-r{rank}-")
        write_lerobot_dataset(tmp, num_episodes=args.synthetic, seed=0)
    root = args.root or tmp
    try:
        return train(args, root, rank, world)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        if dist.is_initialized():
            dist.destroy_process_group()


def train(args: argparse.Namespace, root: str, rank: int, world: int) -> int:
    torch.manual_seed(args.seed)
    loader, node, dataset = build_loader(args, root, rank, world)
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
        saved_world = int(record["sampler"]["world_size"])
        if record["workers"] == args.workers and saved_world == world:
            loader.load_state_dict(record["loader"])  # the whole graph's state, as saved
        else:  # another graph or world size: restore the sampler (elastic), rebuild the rest
            node.reset(record["sampler"])
        epoch = int(record["sampler"]["epoch"])  # the epoch the restored loader continues
        if rank == 0:
            print(
                f"resumed from {ckpt} at step {step} (epoch {epoch}, saved by {saved_world} rank(s), "
                f"now {world})",
                flush=True,
            )
    check_consistent(node)  # every rank: same layout, seed, order, epoch and position

    log = open_log(args, rank, world)
    samples, t0, loss = 0, time.perf_counter(), torch.zeros(())
    stop = False
    while epoch < args.epochs and not stop:
        if args.steps is not None and step >= args.steps:
            break
        for batch in loader:
            loss = torch.nn.functional.mse_loss(model(batch["x"]), batch["y"])
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
                save_checkpoint(ckpt, step, epoch, args, model, optim, loader)
            if args.steps is not None and step >= args.steps:
                stop = True
                break
        else:
            epoch += 1
    if ckpt is not None and rank == 0:
        size = save_checkpoint(ckpt, step, epoch, args, model, optim, loader)
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
