"""The demo's training process (behind ``episode-sampler demo``).

Run as ``python -m episode_sampler.cli.worker --root DATASET --checkpoint-dir DIR --log LOG.jsonl [...]``.
It trains a linear model (``observation.state -> action``) through the canonical pipeline::

    EpisodeSamplerNode(batch_size=B, shuffle=True, permutation=...) -> Mapper(LeRobotFrames.get_batch)
        -> Prefetcher -> Loader

and appends one JSON line per optimizer step to ``--log`` (``{"step", "epoch", "indices"}``, the frame
``index`` column of the batch actually read), flushed at once, so a parent that SIGKILLs the process
knows exactly which samples it consumed. Checkpoints (every ``--checkpoint-every`` steps and at the end)
are crash-consistent at every instant (:mod:`.worker_checkpoint`); ``--resume`` continues from
``checkpoint.json`` when it exists (from scratch otherwise).

With ``--progress`` it prints ``ready STEP`` on stdout once the pipeline is built and the checkpoint (if
any) loaded, then ``step N`` after every step, each line flushed: the parent draws the progress from them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.order import ORDERS
from ..core.permutation import PERMUTATIONS
from .worker_checkpoint import (
    CHECKPOINT_NAME,
    find_sampler_state,
    load_checkpoint,
    remove_stale,
    save_checkpoint,
)

FEATURES = ("observation.state", "action")  # the dataset columns the demo's model trains on (+ cameras)

__all__ = [
    "CHECKPOINT_NAME",
    "FEATURES",
    "TrainConfig",
    "TrainResult",
    "build_pipeline",
    "find_sampler_state",
    "load_checkpoint",
    "main",
    "read_log",
    "steps_per_epoch",
    "train",
]


@dataclass
class TrainConfig:
    """What defines a run: two runs with equal configs consume the same samples in the same order."""

    root: str
    batch_size: int = 32
    seed: int = 0
    permutation: str = "feistel"
    order: str = "frames"
    block_size: int | None = None
    epochs: int = 2
    checkpoint_every: int = 20
    lr: float = 0.05

    def argv(self) -> list[str]:
        """The worker command-line arguments that reproduce this config."""
        pairs = {
            "--root": self.root,
            "--batch-size": self.batch_size,
            "--seed": self.seed,
            "--permutation": self.permutation,
            "--order": self.order,
            "--epochs": self.epochs,
            "--checkpoint-every": self.checkpoint_every,
            "--lr": repr(self.lr),
        }
        out = [str(x) for pair in pairs.items() for x in pair]
        if self.block_size is not None:
            out += ["--block-size", str(self.block_size)]
        return out


@dataclass
class TrainResult:
    """Summary of one (possibly resumed) run."""

    start_step: int
    steps: int  # global step count at the end
    samples: int  # samples consumed by this process
    seconds: float
    weights_sha256: str
    loss: float
    checkpoints: int
    checkpoint_bytes: int  # size of the last checkpoint.json written


# ---------------------------------------------------------------------------------------------- pipeline
def steps_per_epoch(samples_per_epoch: int, batch_size: int) -> int:
    return -(-samples_per_epoch // batch_size)


def build_pipeline(cfg: TrainConfig) -> tuple[Any, Any, Any]:
    """``(loader, node, dataset)``: the canonical single-process graph for ``cfg``."""
    from torchdata.nodes import Loader, Mapper, Prefetcher

    from ..lerobot import LeRobotFrames, read_info
    from ..node import EpisodeSamplerNode

    # cameras as uint8 (as decoded: 4x less memory than float32); the model scales them
    features = read_info(cfg.root).get("features")
    features = features if isinstance(features, dict) else {}
    cameras = [k for k, f in features.items() if isinstance(f, dict) and f.get("dtype") == "video"]
    dataset = LeRobotFrames(cfg.root, columns=["index", *FEATURES, *cameras], return_uint8=True)
    node = EpisodeSamplerNode.from_lerobot(
        cfg.root,
        batch_size=cfg.batch_size,
        shuffle=True,
        seed=cfg.seed,
        permutation=cfg.permutation,
        order=cfg.order,
        block_size=cfg.block_size,
        rank=0,
        world_size=1,
    )
    graph = Prefetcher(Mapper(node, dataset.get_batch), prefetch_factor=4)
    return Loader(graph, restart_on_stop_iteration=True), node, dataset


# ---------------------------------------------------------------------------------------------- training
class MomentumSGD:
    """SGD with heavy-ball momentum (as ``torch.optim.SGD(momentum=m)``), with a checkpointable state.

    Written out rather than taken from ``torch.optim``: constructing a ``torch.optim`` optimizer imports
    ``torch._dynamo``, which costs more than a second in every fresh worker process.
    """

    def __init__(self, params: Any, lr: float, momentum: float = 0.9) -> None:
        self.params = list(params)
        self.lr, self.momentum = lr, momentum
        self.buffers: list[Any] = [None] * len(self.params)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        import torch

        with torch.no_grad():
            for i, p in enumerate(self.params):
                buf = self.buffers[i]
                if buf is None:
                    buf = self.buffers[i] = p.grad.detach().clone()
                else:
                    buf.mul_(self.momentum).add_(p.grad)
                p.add_(buf, alpha=-self.lr)

    def state_dict(self) -> dict[str, Any]:
        return {"lr": self.lr, "momentum": self.momentum, "buffers": list(self.buffers)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.lr, self.momentum = state["lr"], state["momentum"]
        self.buffers = list(state["buffers"])


def weights_digest(model: Any) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def train(
    cfg: TrainConfig,
    *,
    ckpt_dir: str | os.PathLike[str],
    log_path: str | os.PathLike[str],
    resume: bool = False,
    bar: str | None = None,
    on_step: Callable[[int], None] | None = None,
    on_ready: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train ``cfg`` (resuming from ``ckpt_dir`` if asked and a checkpoint exists); see the module doc."""
    import torch
    from tqdm import tqdm

    ckpt_dir = Path(ckpt_dir)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # bit-identical numerics in every process, and no oversubscription
    try:
        torch.manual_seed(cfg.seed)
        loader, node, dataset = build_pipeline(cfg)
        scale = float(len(dataset))
        state_dim = int(dataset.info["features"]["observation.state"]["shape"][0])
        action_dim = int(dataset.info["features"]["action"]["shape"][0])
        cameras = list(dataset.video_keys)
        # a linear policy on the state and each camera's per-channel mean brightness
        model = torch.nn.Linear(state_dim + 3 * len(cameras), action_dim)
        optimizer = MomentumSGD(model.parameters(), lr=cfg.lr, momentum=0.9)
        per_epoch = steps_per_epoch(node.samples_per_epoch, cfg.batch_size)
        step, epoch = 0, 0
        found = load_checkpoint(ckpt_dir) if resume else None
        if found is not None:
            record, payload = found
            model.load_state_dict(payload["model"])
            optimizer.load_state_dict(payload["optimizer"])
            loader.load_state_dict(record["loader"])
            step = int(record["step"])
            state = find_sampler_state(record["loader"])
            epoch = int(state["epoch"]) if state is not None else 0
        if ckpt_dir.exists():
            remove_stale(ckpt_dir, keep=found[0]["model"] if found else None)
        start_step = step
        if on_ready is not None:
            on_ready(step)
        total = cfg.epochs * per_epoch
        samples = checkpoints = ckpt_bytes = 0
        loss_value = float("nan")
        progress: Any = _NoBar()  # no tqdm object at all: tqdm allocates a multiprocessing lock
        if bar is not None:
            progress = tqdm(
                total=total, initial=step, desc=bar, unit="step", file=sys.stderr, dynamic_ncols=True
            )
        t0 = time.perf_counter()
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a", encoding="utf-8") as log:
            while epoch < cfg.epochs:
                for batch in loader:
                    x = torch.cat(
                        [batch["observation.state"] / scale]
                        + [batch[k].float().mean(dim=(-2, -1)) / 255.0 for k in cameras],
                        dim=-1,
                    )
                    y = batch["action"] / scale
                    loss = torch.nn.functional.mse_loss(model(x), y)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    step += 1
                    indices = batch["index"].tolist()
                    samples += len(indices)
                    log.write(json.dumps({"step": step, "epoch": epoch, "indices": indices}) + "\n")
                    log.flush()
                    if on_step is not None:
                        on_step(step)
                    if step % cfg.checkpoint_every == 0:
                        ckpt_bytes = save_checkpoint(ckpt_dir, step, model, optimizer, loader)
                        checkpoints += 1
                    progress.update(1)
                loss_value = float(loss.detach()) if samples else loss_value
                epoch += 1
        if step % cfg.checkpoint_every != 0 or checkpoints == 0:
            ckpt_bytes = save_checkpoint(ckpt_dir, step, model, optimizer, loader)
            checkpoints += 1
        seconds = time.perf_counter() - t0
        progress.close()
        return TrainResult(
            start_step=start_step,
            steps=step,
            samples=samples,
            seconds=seconds,
            weights_sha256=weights_digest(model),
            loss=loss_value,
            checkpoints=checkpoints,
            checkpoint_bytes=ckpt_bytes,
        )
    finally:
        torch.set_num_threads(threads)


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def read_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The complete lines of a step log (a torn last line, if any, is ignored)."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if not line.endswith("\n"):
            break
        out.append(json.loads(line))
    return out


# ---------------------------------------------------------------------------------------------- CLI
def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m episode_sampler.cli.worker",
        description="Training worker of `episode-sampler demo`.",
    )
    p.add_argument("--root", required=True, help="LeRobot v3 dataset directory")
    p.add_argument("--checkpoint-dir", required=True, help="where checkpoint.json and model files go")
    p.add_argument("--log", required=True, help="JSON-lines file: one line per step, appended and flushed")
    p.add_argument("--batch-size", type=_positive, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--permutation", choices=PERMUTATIONS, default="feistel")
    p.add_argument("--order", choices=ORDERS, default="frames")
    p.add_argument("--block-size", type=_positive, default=None)
    p.add_argument("--epochs", type=_positive, default=2)
    p.add_argument("--checkpoint-every", type=_positive, default=20)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--resume", action="store_true", help="continue from checkpoint.json if it exists")
    p.add_argument("--progress", action="store_true", help="print 'step N' on stdout after every step")
    p.add_argument("--bar", default=None, help="show a tqdm bar (on stderr) with this label")
    p.add_argument("--summary", default=None, help="write the final JSON summary here instead of stdout")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = TrainConfig(
        root=args.root,
        batch_size=args.batch_size,
        seed=args.seed,
        permutation=args.permutation,
        order=args.order,
        block_size=args.block_size,
        epochs=args.epochs,
        checkpoint_every=args.checkpoint_every,
        lr=args.lr,
    )

    def report(step: int) -> None:
        sys.stdout.write(f"step {step}\n")
        sys.stdout.flush()

    def ready(step: int) -> None:
        sys.stdout.write(f"ready {step}\n")
        sys.stdout.flush()

    result = train(
        cfg,
        ckpt_dir=args.checkpoint_dir,
        log_path=args.log,
        resume=args.resume,
        bar=args.bar,
        on_step=report if args.progress else None,
        on_ready=ready if args.progress else None,
    )
    summary = {
        "done": True,
        "start_step": result.start_step,
        "steps": result.steps,
        "samples": result.samples,
        "seconds": result.seconds,
        "weights_sha256": result.weights_sha256,
        "loss": result.loss,
        "checkpoint_bytes": result.checkpoint_bytes,
    }
    if args.summary:
        Path(args.summary).write_text(json.dumps(summary) + "\n", encoding="utf-8")
    else:
        print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
