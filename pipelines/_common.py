"""What the pipeline scripts share: the flags (:func:`base_parser`, :func:`check_args`, the same names and
defaults in every script), torch threads, process group, synthetic dataset, checkpoint files, the
training step and loop, and logging.

Not a script: the pipelines import it from their own directory.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import torch
import torch.distributed as dist

from episode_sampler import LeRobotFrames, load_state, save_state, write_lerobot_dataset
from episode_sampler.lerobot import read_info

#: The camera of the synthetic dataset (``--episodes N`` without ``--root``): tiny and short AV1 video, so
#: every pipeline decodes video the way a vision policy's data loading does.
CAMERAS = {"observation.images.top": (64, 64)}

TrainFn = Callable[[argparse.Namespace, str, int, int], int]
"""``train(args, root, rank, world) -> exit code``."""

InputsFn = Callable[[dict[str, Any]], tuple[torch.Tensor, torch.Tensor]]
"""A loader batch -> model input ``x`` and target ``y``."""


EPISODES = 60  # --episodes: synthetic episodes when no --root is given (about 2400 frames)
THREADS_ENV = "OMP_NUM_THREADS"


def base_parser(
    description: str, prog: str | None = None, *, several_roots: bool = False
) -> argparse.ArgumentParser:
    """The flags every pipeline script takes, with the same names and defaults (see the README's
    "Pipelines" section). A script adds its own flags, then calls :func:`check_args`.

    ``several_roots`` (a mixture): ``--root [NAME=]DIR`` may be repeated (``args.root`` is then a list
    of the raw values, ``None`` without any) and ``--episodes`` sizes each synthetic dataset."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    data = p.add_argument_group("dataset")
    if several_roots:
        data.add_argument(
            "--root",
            action="append",
            metavar="[NAME=]DIR",
            help="a LeRobot v3 dataset of the mixture; repeat for each (NAME: default the directory's "
            "name; default: synthetic ones, see --episodes)",
        )
    else:
        data.add_argument(
            "--root", help="LeRobot v3 dataset directory (default: a synthetic one, see --episodes)"
        )
    data.add_argument(
        "--episodes",
        type=int,
        metavar="N",
        default=None,
        help=f"without --root: {'each' if several_roots else 'a'} synthetic dataset of N episodes "
        f"(default: {EPISODES})",
    )
    order = p.add_argument_group("sampling")
    order.add_argument("--batch-size", type=int, default=32, help="samples per rank and step (default: 32)")
    order.add_argument(
        "--permutation", choices=("feistel", "randperm"), default="feistel", help="default: feistel"
    )
    order.add_argument(
        "--order", choices=("frames", "episodes", "blocks"), default="frames", help="default: frames"
    )
    order.add_argument(
        "--block-size", type=int, default=None, help="frames per block (needed by --order blocks)"
    )
    order.add_argument("--seed", type=int, default=0, help="shuffle seed (default: 0)")
    run = p.add_argument_group("run")
    run.add_argument(
        "--epochs", type=int, default=1, help="train until this many epochs are done (default: 1)"
    )
    run.add_argument(
        "--steps",
        type=int,
        default=None,
        help="also stop once the global step count (steps before a resume included) reaches this",
    )
    run.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help=f"torch intra-op threads of each process (default: ${THREADS_ENV} if set, else 1: the "
        "data pipeline's own threads need the cores; raise it for a model that is worth it)",
    )
    ck = p.add_argument_group("checkpoints")
    ck.add_argument(
        "--checkpoint", metavar="PATH", default=None, help="checkpoint JSON file (rank 0 writes it)"
    )
    ck.add_argument(
        "--checkpoint-every",
        type=int,
        default=50,
        metavar="N",
        help="steps between checkpoints (default: 50)",
    )
    ck.add_argument(
        "--resume",
        action="store_true",
        help="continue from --checkpoint if it exists (from scratch if not); without --resume an "
        "existing --checkpoint is refused rather than overwritten",
    )
    out = p.add_argument_group("output")
    out.add_argument(
        "--log-indices",
        default=None,
        metavar="PATH",
        help="append each step's frame indices as JSON lines here ('{rank}' is replaced; "
        "with several ranks and no '{rank}', '.rank<r>' is appended)",
    )
    return p


def check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """Validate the shared flags (usage errors exit 2 with one line) and fill in defaults."""
    for name in ("batch_size", "epochs", "checkpoint_every"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.steps is not None and args.steps < 0:
        p.error(f"--steps must be >= 0, got {args.steps}")
    if args.threads is not None and args.threads < 1:
        p.error(f"--threads must be >= 1, got {args.threads}")
    if args.order == "blocks" and args.block_size is None:
        p.error("--order blocks needs --block-size")
    if args.order != "blocks" and args.block_size is not None:
        p.error("--block-size applies only to --order blocks")
    if args.block_size is not None and args.block_size < 1:
        p.error(f"--block-size must be >= 1, got {args.block_size}")
    if args.root is not None and args.episodes is not None:
        p.error("--episodes sizes the synthetic dataset: it does not apply with --root")
    if args.episodes is not None and args.episodes < 1:
        p.error(f"--episodes must be >= 1, got {args.episodes}")
    if args.root is None and args.episodes is None:
        args.episodes = EPISODES
    if args.resume and not args.checkpoint:
        p.error("--resume needs --checkpoint")
    if args.checkpoint and not args.resume and Path(args.checkpoint).exists():
        p.error(
            f"--checkpoint {args.checkpoint!r} already exists: add --resume to continue from it, "
            "or remove it to start over"
        )
    return args


def set_threads(args: argparse.Namespace) -> int:
    """Set torch's intra-op threads from ``--threads`` (default: ``$OMP_NUM_THREADS``, else 1).

    The pipelines are data loading with a tiny model: torch's default (one thread per core) makes its
    kernels' worker threads compete with the loader's threads (Prefetcher, ParallelMapper, gloo) for the
    same cores. One process of ``train_loader.py`` ran 4-10x slower on an idle 2-core machine with the
    default than with one thread (1.2-1.6x on the median when the cores were shared with other jobs).
    ``torchrun`` sets ``OMP_NUM_THREADS=1`` for several processes per node; it is honoured.
    """
    threads = args.threads
    if threads is None:
        env = os.environ.get(THREADS_ENV, "")
        threads = int(env) if env.isdigit() and int(env) > 0 else 1
    torch.set_num_threads(threads)
    return threads


def parse_args(
    prog: str, description: str, workers_help: str, argv: list[str] | None = None
) -> argparse.Namespace:
    """The flags of ``train_loader.py`` and ``stateful_dataloader.py``: the shared ones plus ``--workers``
    and ``--lr``."""
    p = base_parser(description, prog)
    p.add_argument("--workers", type=int, default=0, help=f"{workers_help} (default: 0)")
    p.add_argument("--lr", type=float, default=0.05, help="learning rate (default: 0.05)")
    args = p.parse_args(argv)
    if args.workers < 0:
        p.error(f"--workers must be >= 0, got {args.workers}")
    return check_args(p, args)


#: The warning torchdata 0.11's ``StatefulDataLoader.__init__`` causes with a recent torch (2.13 here): it
#: calls ``torch.set_vital("Dataloader", "enabled", "True")``, which torch deprecates (the call does nothing).
SET_VITAL_WARNING = "'set_vital' is deprecated, please do not call"


@contextmanager
def no_set_vital_warning() -> Iterator[None]:
    """Construct a ``StatefulDataLoader`` in this block: the one warning it causes that is no news to a
    user (:data:`SET_VITAL_WARNING`) is filtered, in this block only; every other warning shows."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=re.escape(SET_VITAL_WARNING), category=UserWarning)
        yield


def init_distributed() -> tuple[int, int]:
    """Join the process group when launched by torchrun with WORLD_SIZE > 1 (gloo works on CPU)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def sampler_options(args: argparse.Namespace, rank: int, world: int) -> dict[str, Any]:
    """The ``from_lerobot`` options both samplers take from the flags: shuffled, this rank's shard, no
    drop_last (every rank gets ceil(N / W) samples: equal step counts for DDP)."""
    return {
        "shuffle": True,
        "seed": args.seed,
        "permutation": args.permutation,
        "order": args.order,
        "block_size": args.block_size if args.order == "blocks" else None,
        "rank": rank,
        "world_size": world,
        "drop_last": False,
    }


def run(args: argparse.Namespace, tmp_prefix: str, train: TrainFn) -> int:
    """Set the threads, join the process group, write the synthetic dataset if there is no ``--root``,
    ``train``, then clean up."""
    set_threads(args)
    rank, world = init_distributed()
    tmp = None
    if args.root is None:  # every rank writes the same deterministic dataset: no shared disk needed
        tmp = tempfile.mkdtemp(prefix=f"{tmp_prefix}-r{rank}-")
        camera = ", ".join(f"{h}x{w}" for h, w in CAMERAS.values())
        say(
            rank,
            f"writing a synthetic LeRobot v3 dataset of {args.episodes} episodes with a {camera} AV1 camera "
            f"to {tmp} (deleted at the end; --root DIR reads your own) ...",
        )
        t0 = time.perf_counter()
        index = write_lerobot_dataset(tmp, num_episodes=args.episodes, seed=0, cameras=CAMERAS)
        say(rank, f"dataset written in {time.perf_counter() - t0:.1f} s: {index.num_frames} frames")
    try:
        return train(args, args.root or tmp, rank, world)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        if dist.is_initialized():
            dist.destroy_process_group()


def say(rank: int, line: str) -> None:
    """Print ``line`` (flushed) on rank 0 only."""
    if rank == 0:
        print(line, flush=True)


def started_marker(path: Path) -> Path:
    """The file that says a run writing checkpoint ``path`` started and has not yet committed one."""
    return path.with_name(f"{path.name}.started")


def report_fresh_start(path: Path, every: int, rank: int) -> None:
    """No checkpoint at ``path``: rank 0 says whether a previous run stopped before its first checkpoint
    (it left :func:`started_marker`) and so this run starts over, after leaving the marker itself."""
    if rank != 0:
        return
    marker = started_marker(path)
    if marker.exists():
        try:
            due = f" (due at step {int(json.loads(marker.read_text(encoding='utf-8'))['checkpoint_every'])})"
        except (OSError, ValueError, KeyError, TypeError):
            due = ""
        line = (
            f"no checkpoint at {path}: the previous run was stopped before its first checkpoint{due}, "
            "so training starts over from step 0"
        )
    else:
        line = f"no checkpoint at {path} yet: starting from scratch (first checkpoint at step {every})"
    path.parent.mkdir(parents=True, exist_ok=True)
    note = "a run that checkpoints here started; its first checkpoint removes this file"
    tmp = marker.with_name(f"{marker.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"checkpoint_every": every, "note": note}) + "\n", encoding="utf-8")
    os.replace(tmp, marker)  # in place before the line is printed: a kill after it finds the marker
    print(line, flush=True)


def sampler_state(obj: Any) -> dict[str, Any] | None:
    """The episode-sampler state nested in a loader state_dict (wherever the loader puts it)."""
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


def open_dataset(root: str) -> LeRobotFrames:
    """The columns the model reads: ``index``, state, action and every camera (as uint8: 4x less to move
    between processes than float32; :func:`model_input` scales them)."""
    names = ["index", "observation.state", "action", *video_keys(read_info(root))]
    return LeRobotFrames(root, columns=names, return_uint8=True)


def video_keys(info: Mapping[str, Any]) -> list[str]:
    """Camera features (dtype ``video``) of a dataset's ``info.json``."""
    return [
        k
        for k, f in (info.get("features") or {}).items()
        if isinstance(f, dict) and f.get("dtype") == "video"
    ]


def model_input(batch: Mapping[str, Any], cameras: list[str], scale: float) -> torch.Tensor:
    """State (divided by ``scale``) and, per camera, each channel's mean brightness in [0, 1]."""
    parts = [batch["observation.state"].float() / scale]
    parts += [batch[k].float().mean(dim=(-2, -1)) / 255.0 for k in cameras]
    return torch.cat(parts, dim=-1)


def build_model(
    dataset: LeRobotFrames, world: int, lr: float
) -> tuple[torch.nn.Module, torch.optim.Optimizer, torch.nn.Module]:
    """``(model, optimizer, net)``: a linear model from state and camera features (:func:`model_input`) to
    action (DDP-wrapped when ``world > 1``), and the bare module whose state is saved."""
    features = dataset.info["features"]
    width = features["observation.state"]["shape"][0] + 3 * len(video_keys(dataset.info))
    model: Any = torch.nn.Linear(width, features["action"]["shape"][0])
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    optim = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    net = model.module if world > 1 else model
    return model, optim, net


def save_checkpoint(
    path: Path,
    step: int,
    epoch: int,
    args: argparse.Namespace,
    model: Any,
    optim: Any,
    loader: Any,
    world: int | None = None,
) -> int:
    """Model file first (tmp + rename), then the JSON that names it (the commit), then old files go.

    ``world`` is recorded as ``world_size`` when given. Returns the JSON's size in bytes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    model_path = path.with_name(f"{path.name}.step-{step:08d}.pt")
    tmp = model_path.with_name(model_path.name + f".{os.getpid()}.tmp")
    net = model.module if hasattr(model, "module") else model
    torch.save({"model": net.state_dict(), "optimizer": optim.state_dict(), "step": step}, tmp)
    os.replace(tmp, model_path)
    loader_state = loader.state_dict()
    record: dict[str, Any] = {
        "step": step,
        "epoch": epoch,  # the training loop's epoch (the pass the loader is in)
        "model": model_path.name,
        "workers": args.workers,
    }
    if world is not None:
        record["world_size"] = world
    record["loader"] = loader_state
    record["sampler"] = sampler_state(loader_state)
    size = save_state(path, record)
    for old in path.parent.glob(f"{path.name}.step-*.pt"):
        if old != model_path:
            old.unlink(missing_ok=True)
    started_marker(path).unlink(missing_ok=True)  # a resume now starts from this checkpoint
    return size


def load_checkpoint(path: Path, net: torch.nn.Module, optim: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore model and optimizer from the file ``path`` names; return the checkpoint record."""
    record = load_state(path)
    payload = torch.load(path.with_name(record["model"]), map_location="cpu", weights_only=True)
    net.load_state_dict(payload["model"])
    optim.load_state_dict(payload["optimizer"])
    return record


def report_resume(path: Path, step: int, epoch: int, saved_world: int, world: int, rank: int) -> None:
    """Rank 0 says where training resumes from."""
    if rank == 0:
        print(
            f"resumed from {path} at step {step} (epoch {epoch}, saved by {saved_world} rank(s), "
            f"now {world})",
            flush=True,
        )


def open_log(args: argparse.Namespace, rank: int, world: int) -> IO[str] | None:
    """This rank's ``--log-indices`` file, opened for appending (``None`` without the flag)."""
    if args.log_indices is None:
        return None
    path = args.log_indices.format(rank=rank) if "{rank}" in args.log_indices else args.log_indices
    if world > 1 and "{rank}" not in args.log_indices:
        path += f".rank{rank}"
    return open(path, "a", encoding="utf-8")


def log_step(log: IO[str], step: int, epoch: int, rank: int, indices: torch.Tensor) -> None:
    """Append one step's frame indices as a JSON line and flush."""
    log.write(json.dumps({"step": step, "epoch": epoch, "rank": rank, "indices": indices.tolist()}) + "\n")
    log.flush()


def train_step(model: Any, optim: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One SGD step on the MSE of ``model(x)`` against ``y``; returns the loss."""
    loss = torch.nn.functional.mse_loss(model(x), y)
    optim.zero_grad(set_to_none=True)
    loss.backward()
    optim.step()
    return loss


def fit(
    args: argparse.Namespace,
    loader: Any,
    model: Any,
    optim: torch.optim.Optimizer,
    inputs: InputsFn,
    *,
    step: int,
    epoch: int,
    rank: int,
    world: int,
    record_world: bool = False,
) -> int:
    """Train from ``(step, epoch)`` until ``--epochs`` / ``--steps``, checkpointing every
    ``--checkpoint-every`` steps and at the end on rank 0 (``record_world``: save ``world_size`` too)
    with a line for each, logging indices if asked, then print this rank's summary. Returns 0.

    A run resumed after it was complete trains nothing and rewrites nothing: it says so."""
    ckpt = Path(args.checkpoint) if args.checkpoint else None
    saved_world = world if record_world else None
    if epoch >= args.epochs or (args.steps is not None and step >= args.steps):
        limit = f"--epochs {args.epochs}" + (f", --steps {args.steps}" if args.steps is not None else "")
        where = f"{ckpt} is" if ckpt is not None and ckpt.exists() else "it is"
        say(
            rank,
            f"the run is complete: {where} at step {step}, epoch {epoch} ({limit}); nothing to train "
            "(raise --epochs or --steps to train on)",
        )
        if ckpt is not None and rank == 0:
            started_marker(ckpt).unlink(missing_ok=True)  # (--steps 0: no run to resume)
        return 0
    log = open_log(args, rank, world)
    samples, t0, loss = 0, time.perf_counter(), torch.zeros(())
    stop = False
    saved = None  # the step of the last checkpoint written by this loop
    while epoch < args.epochs and not stop:
        if args.steps is not None and step >= args.steps:
            break
        for batch in loader:
            x, y = inputs(batch)
            loss = train_step(model, optim, x, y)
            step += 1
            samples += len(batch["index"])
            if log is not None:
                log_step(log, step, epoch, rank, batch["index"])
            if ckpt is not None and rank == 0 and step % args.checkpoint_every == 0:
                size = save_checkpoint(ckpt, step, epoch, args, model, optim, loader, saved_world)
                print(f"checkpoint {ckpt} ({size} bytes) at step {step}", flush=True)
                saved = step
            if args.steps is not None and step >= args.steps:
                stop = True
                break
        else:
            epoch += 1
    if ckpt is not None and rank == 0:
        size = save_checkpoint(ckpt, step, epoch, args, model, optim, loader, saved_world)
        if saved != step:  # (else rewritten with the loop's final epoch, already announced)
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
