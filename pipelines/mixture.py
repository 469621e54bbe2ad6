#!/usr/bin/env python
"""Train on a weighted mixture of LeRobot datasets, with exact resume from a checkpoint.

The flags are the other pipelines' (``pipelines/_common.py``, the README's "Pipelines" section), with
``--root`` repeated (one per dataset), plus the mixture's own: ``--weight NAME=W``,
``--stop-criteria`` and, without ``--root``, ``--datasets K`` synthetic datasets.

One process, three synthetic datasets (``--resume`` continues from ``--checkpoint`` when it exists, so
the same command both starts and resumes a run)::

    python pipelines/mixture.py --steps 200 --checkpoint ckpt/mix.json --resume

Your datasets, sampled 3:1::

    python pipelines/mixture.py --root pusht=/data/pusht --root aloha=/data/aloha \\
        --weight pusht=3 --weight aloha=1 --steps 10000 --checkpoint ckpt/mix.json --resume

Several processes (gloo, CPU; resumed with the same number)::

    torchrun --standalone --nproc-per-node 2 pipelines/mixture.py --steps 200 \\
        --checkpoint ckpt/mix.json --resume

Graph (per rank)::

    EpisodeSamplerNode(A, batch_size) -> Mapper(LeRobotFrames(A).get_batch) --+
    EpisodeSamplerNode(B, batch_size) -> Mapper(LeRobotFrames(B).get_batch) --+-> MultiNodeWeightedSampler
    ...                                                                          -> Prefetcher -> Loader

Every batch comes from one dataset (``batch["dataset"]`` names it). An epoch is one pass of the
mixture as ``--stop-criteria`` defines it. With several ranks each rank's mixer draws its own
datasets, so the ranks' passes have different lengths: training is by ``--steps`` then.

The checkpoint (rank 0 writes it atomically every ``--checkpoint-every`` steps and at the end) is
``{"step", "world_size", "mixture", "epochs", "loaders"}``: the mixture's settings, and every rank's
epoch and ``Loader.state_dict()`` (JSON-safe through ``state_to_json``). A restart with the same
settings and world size resumes exactly, also after a SIGKILL; other settings or another world size
are refused: a mixture's elastic restore cannot be exact (see docs/torchdata.md, "Mixtures").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch.distributed as dist
from torchdata.nodes import Loader, Prefetcher, StopCriteria

from episode_sampler import load_state, save_state, write_lerobot_dataset
from episode_sampler.mixture import STOP_CRITERIA, lerobot_mixture, state_from_json, state_to_json

if str(Path(__file__).resolve().parent) not in sys.path:  # also when loaded by path, not run
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

PROG = Path(__file__).name
DATASETS = 3  # --datasets: synthetic datasets when no --root is given
COLUMNS = ["index"]  # what each batch reads (a real training step would read its model's inputs)
#: The settings a checkpoint records and a resume must match (the flag each comes from).
SETTINGS = {
    "datasets": "--root/--datasets",
    "weights": "--weight",
    "stop_criteria": "--stop-criteria",
    "batch_size": "--batch-size",
    "seed": "--seed",
    "permutation": "--permutation",
    "order": "--order",
    "block_size": "--block-size",
}
RECORD_KEYS = ("step", "world_size", "mixture", "epochs", "loaders")


class CheckpointError(Exception):
    """A checkpoint this run cannot resume from: one line, exit code 2."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = _common.base_parser(
        "Train on a weighted mixture of LeRobot datasets (EpisodeSamplerNode per dataset under torchdata's "
        "MultiNodeWeightedSampler) with exact resume from --checkpoint (also under torchrun, with the "
        "same number of processes).",
        PROG,
        several_roots=True,
    )
    mix = p.add_argument_group("mixture")
    mix.add_argument(
        "--datasets",
        type=int,
        metavar="K",
        default=None,
        help=f"without --root: K synthetic datasets ds0 .. ds<K-1> (default: {DATASETS})",
    )
    mix.add_argument(
        "--weight",
        action="append",
        default=[],
        metavar="NAME=W",
        help="sampling weight of dataset NAME, a number > 0 (relative; repeat; default: 1 each)",
    )
    mix.add_argument(
        "--stop-criteria",
        choices=[str(s) for s in STOP_CRITERIA],
        default=str(StopCriteria.CYCLE_UNTIL_ALL_DATASETS_EXHAUSTED),
        metavar="CRITERIA",
        help="when one pass (epoch) of the mixture ends, torchdata's StopCriteria: %(choices)s "
        "(default: %(default)s: a dataset that runs out starts over until every dataset ran out once)",
    )
    args = p.parse_args(argv)
    if args.root:
        if args.datasets is not None:
            p.error("--datasets counts the synthetic datasets: it does not apply with --root")
        args.roots = parse_roots(p, args.root)
    else:
        if args.datasets is None:
            args.datasets = DATASETS
        if args.datasets < 1:
            p.error(f"--datasets must be >= 1, got {args.datasets}")
        args.roots = {f"ds{i}": None for i in range(args.datasets)}
    args.weights = parse_weights(p, args.weight, list(args.roots))
    if args.stop_criteria == StopCriteria.CYCLE_FOREVER and args.steps is None:
        p.error(f"--stop-criteria {StopCriteria.CYCLE_FOREVER} never ends a pass: give --steps")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        if args.steps is None:
            p.error("several ranks draw passes of different lengths: give --steps (training is by steps)")
        if args.epochs != 1:
            p.error("--epochs does not apply with several ranks (their passes differ in length): use --steps")
    return _common.check_args(p, args)


def parse_roots(p: argparse.ArgumentParser, values: list[str]) -> dict[str, str]:
    """``--root [NAME=]DIR`` values -> ``{name: dir}`` (the name defaults to the directory's name)."""
    roots: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or os.sep in name:  # no NAME= prefix
            name, path = Path(value).name, value
        if not name or not path:
            p.error(f"--root must be [NAME=]DIR, got {value!r}")
        if name in roots:
            p.error(f"--root: two datasets named {name!r} (give each a NAME=)")
        if not (Path(path) / "meta" / "info.json").is_file():
            p.error(f"--root {path!r} is not a LeRobot v3 dataset (no meta/info.json)")
        roots[name] = path
    return roots


def parse_weights(p: argparse.ArgumentParser, values: list[str], names: list[str]) -> dict[str, float]:
    """``--weight NAME=W`` values -> a weight per dataset (1 for those not named)."""
    weights = dict.fromkeys(names, 1.0)
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name or not text:
            p.error(f"--weight must be NAME=W, got {value!r}")
        if name not in weights:
            p.error(f"--weight names no dataset of the mixture: {name!r} (datasets: {', '.join(names)})")
        try:
            w = float(text)
        except ValueError:
            p.error(f"--weight {name}: W must be a number, got {text!r}")
        if not (w > 0 and w != float("inf")):
            p.error(f"--weight {name}: W must be a finite number > 0, got {text!r}")
        weights[name] = w
    return weights


def synthetic_roots(names: list[str], episodes: int, where: Path) -> dict[str, str]:
    """The synthetic datasets (no cameras: the mixture reads only ``COLUMNS``), deterministic per name."""
    roots = {}
    for i, name in enumerate(names):
        root = where / name
        write_lerobot_dataset(root, num_episodes=episodes, seed=i)
        roots[name] = str(root)
    return roots


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """What a checkpoint records about the mixture (see :data:`SETTINGS`)."""
    return {
        "datasets": list(args.roots),
        "weights": args.weights,
        "stop_criteria": args.stop_criteria,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "permutation": args.permutation,
        "order": args.order,
        "block_size": args.block_size,
    }


def read_checkpoint(path: Path, args: argparse.Namespace, world: int) -> dict[str, Any]:
    """The checkpoint at ``path``, refused unless this run's settings and world size are its own."""
    try:
        record = load_state(path)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"--checkpoint {str(path)!r}: cannot read it ({exc})") from None
    missing = [k for k in RECORD_KEYS if not isinstance(record, dict) or k not in record]
    if missing:
        raise CheckpointError(
            f"--checkpoint {str(path)!r} is not a checkpoint of {PROG}: missing keys {missing}"
        )
    saved, saved_world = record["mixture"], record["world_size"]
    for key, value in settings(args).items():
        if saved.get(key) != value:
            raise CheckpointError(
                f"--checkpoint {str(path)!r} was written with {key} {saved.get(key)!r}, this run has "
                f"{value!r} ({SETTINGS[key]}): resume with the same settings"
            )
    if saved_world != world:
        raise CheckpointError(
            f"--checkpoint {str(path)!r} was written by {saved_world} rank(s), this run has {world}: a "
            "mixture restores exactly only with the same world size"
        )
    return record


def gather(obj: Any, world: int) -> list[Any]:
    """Every rank's ``obj`` (rank order), on every rank."""
    if world == 1:
        return [obj]
    out: list[Any] = [None] * world
    dist.all_gather_object(out, obj)
    return out


def save_checkpoint(
    path: Path, args: argparse.Namespace, loader: Loader, step: int, epoch: int, rank: int, world: int
) -> int:
    """Every rank's epoch and loader state, written by rank 0 (atomically); its size in bytes there."""
    mine = (epoch, state_to_json(loader.state_dict()))
    ranks = gather(mine, world)
    if rank != 0:
        return 0
    record = {
        "step": step,
        "world_size": world,
        "mixture": settings(args),
        "epochs": [e for e, _ in ranks],
        "loaders": [s for _, s in ranks],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_state(path, record)


def train(
    args: argparse.Namespace, roots: dict[str, str], rank: int, world: int, record: dict[str, Any] | None
) -> int:
    """Train from ``record`` (a checkpoint read by :func:`read_checkpoint`) or from scratch."""
    graph = lerobot_mixture(
        roots,
        args.weights,
        batch_size=args.batch_size,
        columns=COLUMNS,
        stop_criteria=args.stop_criteria,
        seed=args.seed,
        rank=rank,
        world_size=world,
        shuffle=True,
        permutation=args.permutation,
        order=args.order,
        block_size=args.block_size,
    )
    # restart_on_stop_iteration=False: a state taken after a pass's last batch then restores to the end of
    # that pass (the loop below counts the epoch and starts the next one). With True, torchdata 0.11's
    # Loader would move on by itself and keep reporting the restored state from state_dict() afterwards
    # (LoaderIterator's look-ahead cache is not cleared on reset; see meta-pytorch/data#1552).
    loader = Loader(Prefetcher(graph, prefetch_factor=4), restart_on_stop_iteration=False)
    step, epoch = 0, 0
    ckpt = Path(args.checkpoint) if args.checkpoint else None
    if record is not None:
        loader.load_state_dict(state_from_json(record["loaders"][rank]))
        step, epoch = int(record["step"]), int(record["epochs"][rank])
        if rank == 0:
            print(f"resumed from {ckpt} at step {step} (epoch {epoch}, {world} rank(s))", flush=True)
    elif ckpt is not None and rank == 0:
        print(f"no checkpoint at {ckpt} yet: starting from scratch", flush=True)

    it, fresh_pass = iter(loader), record is None
    log = _common.open_log(args, rank, world)
    by_dataset: Counter[str] = Counter()
    t0 = time.perf_counter()
    try:
        while args.steps is None or step < args.steps:
            if world == 1 and epoch >= args.epochs:
                break
            try:
                batch = next(it)
            except StopIteration:  # one pass of the mixture is over
                if fresh_pass:
                    raise RuntimeError("a new pass of the mixture yielded no batch") from None
                epoch += 1
                it, fresh_pass = iter(loader), True  # the next pass (a checkpoint now holds its start)
                continue
            fresh_pass = False
            step += 1  # ... a training step on `batch` would run here ...
            by_dataset[batch["dataset"]] += 1
            if log is not None:
                line = {"step": step, "epoch": epoch, "rank": rank, "dataset": batch["dataset"]}
                log.write(json.dumps({**line, "indices": batch["index"].tolist()}) + "\n")
                log.flush()
            if ckpt is not None and step % args.checkpoint_every == 0:
                save_checkpoint(ckpt, args, loader, step, epoch, rank, world)
    finally:
        if log is not None:
            log.close()
    seconds = time.perf_counter() - t0
    if ckpt is not None:
        size = save_checkpoint(ckpt, args, loader, step, epoch, rank, world)
        if rank == 0:
            print(f"checkpoint {ckpt} ({size} bytes) at step {step}", flush=True)
    counts = ", ".join(f"{name} {by_dataset[name]}" for name in roots)
    print(
        f"rank {rank}/{world}: step {step}, epoch {epoch}, {sum(by_dataset.values())} batches in "
        f"{seconds:.2f} s ({counts}) over {len(roots)} datasets",
        flush=True,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _common.set_threads(args)
    rank, world = _common.init_distributed()
    try:
        ckpt = Path(args.checkpoint) if args.checkpoint else None
        record = read_checkpoint(ckpt, args, world) if ckpt and args.resume and ckpt.exists() else None
        if args.root:
            return train(args, args.roots, rank, world, record)
        with tempfile.TemporaryDirectory(prefix=f"mixture-r{rank}-") as tmp:  # same data on every rank
            roots = synthetic_roots(list(args.roots), args.episodes, Path(tmp))
            return train(args, roots, rank, world, record)
    except CheckpointError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return 2
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
