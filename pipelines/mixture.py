#!/usr/bin/env python
"""Train on a weighted mixture of LeRobot datasets, with exact resume from a checkpoint.

    python pipelines/mixture.py --synthetic 3 --steps 200 --checkpoint ckpt/mix.json
    python pipelines/mixture.py --root pusht=/data/pusht --root aloha=/data/aloha \\
        --weight pusht=3 --weight aloha=1 --batch-size 32 --steps 10000 --checkpoint ckpt/mix.json

Graph (per rank)::

    EpisodeSamplerNode(A, batch_size) -> Mapper(LeRobotFrames(A).get_batch) --+
    EpisodeSamplerNode(B, batch_size) -> Mapper(LeRobotFrames(B).get_batch) --+-> MultiNodeWeightedSampler
    ...                                                                          -> Prefetcher -> Loader

Every batch comes from one dataset (``batch["dataset"]`` names it). A checkpoint holds
``{"step", "world_size", "loader": state_to_json(loader.state_dict())}``, written atomically every
``--checkpoint-every`` steps; a restart with the same world size resumes exactly (also after a
SIGKILL). A restart with another world size is refused: a mixture's elastic restore cannot be exact
(see docs/torchdata.md, "Mixtures").
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from torchdata.nodes import Loader, Prefetcher

from episode_sampler import load_state, save_state, write_lerobot_dataset
from episode_sampler.mixture import STOP_CRITERIA, lerobot_mixture, state_from_json, state_to_json


def _pairs(values: list[str], what: str) -> dict[str, str]:
    out = {}
    for v in values:
        name, sep, rest = v.partition("=")
        if not sep or not name or not rest:
            raise SystemExit(f"error: {what} must be NAME=VALUE, got {v!r}")
        out[name] = rest
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--root", action="append", default=[], help="NAME=DIR of a LeRobot v3 dataset (repeat)")
    src.add_argument(
        "--synthetic", type=int, metavar="K", help="write K small synthetic datasets (default 3)"
    )
    p.add_argument("--weight", action="append", default=[], help="NAME=W sampling weight (default 1 each)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument(
        "--stop", choices=[str(s) for s in STOP_CRITERIA], default="CYCLE_UNTIL_ALL_DATASETS_EXHAUSTED"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, required=True, help="stop at this global step count")
    p.add_argument("--checkpoint", default=None, help="checkpoint JSON path; resumed from if it exists")
    p.add_argument("--checkpoint-every", type=int, default=10)
    p.add_argument("--log-indices", default=None, help="append one JSON line per step (dataset, indices)")
    p.add_argument("--data-dir", default=None, help="where --synthetic writes (default: a temp dir)")
    args = p.parse_args(argv)
    if args.batch_size < 1 or args.steps < 0 or args.checkpoint_every < 1:
        p.error("--batch-size and --checkpoint-every must be >= 1, --steps >= 0")
    return args


def synthetic_roots(k: int, where: Path) -> dict[str, str]:
    roots = {}
    for i in range(k):
        root = where / f"ds{i}"
        if not (root / "meta").exists():
            write_lerobot_dataset(root, num_episodes=4 + 2 * i, min_length=5, max_length=15, seed=i)
        roots[f"ds{i}"] = str(root)
    return roots


def run(args: argparse.Namespace, roots: dict[str, str]) -> int:
    weights = {name: 1.0 for name in roots}
    for name, w in _pairs(args.weight, "--weight").items():
        if name not in roots:
            raise SystemExit(f"error: --weight names unknown dataset {name!r} (datasets: {sorted(roots)})")
        weights[name] = float(w)
    graph = lerobot_mixture(
        roots,
        weights,
        batch_size=args.batch_size,
        columns=["index"],
        stop_criteria=args.stop,
        seed=args.seed,
        shuffle=True,
        permutation="feistel",
    )
    world = graph.world_size
    loader = Loader(Prefetcher(graph, prefetch_factor=4))
    step = 0
    ckpt = Path(args.checkpoint) if args.checkpoint else None
    if ckpt is not None and ckpt.exists():
        saved = load_state(ckpt)
        if saved["world_size"] != world:
            raise SystemExit(
                f"error: checkpoint was taken with world_size {saved['world_size']}, this run has {world}: "
                "a mixture restores exactly only with the same world size"
            )
        loader.load_state_dict(state_from_json(saved["loader"]))
        step = int(saved["step"])
        print(f"resumed from {ckpt} at step {step}")
    log = open(args.log_indices, "a") if args.log_indices else None  # noqa: SIM115
    try:
        while step < args.steps:
            for batch in loader:
                step += 1  # ... a training step on `batch` would run here ...
                if log is not None:
                    log.write(
                        json.dumps(
                            {"step": step, "dataset": batch["dataset"], "indices": batch["index"].tolist()}
                        )
                        + "\n"
                    )
                    log.flush()
                if ckpt is not None and step % args.checkpoint_every == 0:
                    save_state(
                        ckpt,
                        {"step": step, "world_size": world, "loader": state_to_json(loader.state_dict())},
                    )
                if step >= args.steps:
                    break
    finally:
        if log is not None:
            log.close()
    print(f"mixture: {step} steps over {len(roots)} datasets")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.root:
        return run(args, _pairs(args.root, "--root"))
    k = args.synthetic or 3
    if args.data_dir:
        return run(args, synthetic_roots(k, Path(args.data_dir)))
    with tempfile.TemporaryDirectory() as tmp:
        return run(args, synthetic_roots(k, Path(tmp)))


if __name__ == "__main__":
    sys.exit(main())
