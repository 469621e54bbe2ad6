"""A training run over a (remote) LeRobot dataset with checkpoints, for the SIGKILL test of
tests/lerobot/test_remote_resume.py (not part of the package).

``python -m tests.helpers.remote_trainer ROOT LOG --checkpoint FILE [--cache DIR] [--lookahead]
[--arm FILE --status FILE]``

:func:`run` iterates a ``StatefulDataLoader`` with two workers over ``LeRobotFrames(ROOT)`` (ROOT a path
or a URL, read through the on-disk cache ``--cache``), shuffled by episodes, for :data:`EPOCHS` epochs.
Each step appends ``{"step", "indices", "digest"}`` to LOG (flushed at once; the digest hashes every
tensor of the batch bit for bit) and every :data:`CHECKPOINT_EVERY` steps saves
``{"step", "loader": loader.state_dict()}`` atomically; a run with a checkpoint resumes from it.
``--lookahead`` runs the look-ahead prefetch (``episode_sampler.lookahead.LookAhead``) around the loop.

Kill point (``--arm``): once the checkpoint of step :data:`ARM_AT` is saved, the run creates the file
``--arm``; from then on the next block the cache moves into place (``os.replace`` onto
``<cache>/blocks/...``, in whichever DataLoader worker or look-ahead thread downloads it) pauses
instead: ``paused`` is written to ``--status`` and the process sleeps until killed. The download is
then in flight: its temporary file written and the cache's byte count raised, the entry not moved in.
Patching ``os.replace`` is inherited by the forked workers; run this only in a process of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch

import episode_sampler
from episode_sampler import EpisodeAwareSampler, LeRobotFrames, load_state, save_state

ROOT = Path(__file__).resolve().parents[2]
CAM = "observation.images.top"
COLUMNS = ["index", "observation.state", "action", CAM]
EPOCHS, BATCH, CHECKPOINT_EVERY, ARM_AT = 2, 8, 3, 3


def env() -> dict[str, str]:
    """The environment a run needs to import this checkout's package and tests (``python -m``)."""
    src = Path(episode_sampler.__file__).resolve().parents[1]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(ROOT)])}


def digest(batch: dict[str, Any]) -> str:
    """A hash of every tensor of a batch (key, dtype, shape, bytes)."""
    h = hashlib.sha256()
    for key in sorted(batch):
        t = batch[key]
        assert isinstance(t, torch.Tensor), key
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def read_log(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a log (a kill may leave the last one half written)."""
    if not path.exists():
        return []
    lines = path.read_text().splitlines(keepends=True)
    return [json.loads(line) for line in lines if line.endswith("\n")]


def pause_on_store(cache_dir: str, arm: str, status: str) -> None:
    blocks = os.path.join(os.path.abspath(cache_dir), "blocks") + os.sep
    real_replace = os.replace

    def replace(src: Any, dst: Any, *a: Any, **k: Any) -> None:
        if os.path.abspath(os.fspath(dst)).startswith(blocks) and os.path.exists(arm):
            with open(status, "a", encoding="utf-8") as out:
                out.write(f"paused {os.getpid()} {dst}\n")
            while True:  # until SIGKILL
                time.sleep(3600)
        real_replace(src, dst, *a, **k)

    os.replace = replace  # type: ignore[assignment]


def run(
    root: str,
    log_path: str,
    checkpoint: str | None,
    cache_dir: str | None,
    arm: str | None = None,
    lookahead: bool = False,
) -> None:
    from torchdata.stateful_dataloader import StatefulDataLoader

    frames = LeRobotFrames(
        root,
        columns=COLUMNS,
        return_uint8=True,
        video_backend="pyav",
        cache_dir=cache_dir,
        cache_bytes=1 << 30,
    )
    sampler = EpisodeAwareSampler.from_index(frames.episodes, shuffle=True, seed=11, order="episodes")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*set_vital")
        loader = StatefulDataLoader(frames, batch_size=BATCH, sampler=sampler, num_workers=2)
    steps_per_epoch = -(-len(sampler) // BATCH)
    step, total = 0, EPOCHS * steps_per_epoch
    if checkpoint and os.path.exists(checkpoint):
        saved = load_state(checkpoint)
        loader.load_state_dict(saved["loader"])
        step = saved["step"]
    with contextlib.ExitStack() as stack:
        if lookahead:  # fetches ahead in this process's threads (never part of the checkpoint)
            from episode_sampler.lookahead import LookAhead

            stack.enter_context(LookAhead(sampler, frames, window=4 * BATCH, batch_size=BATCH, threads=4))
        log = stack.enter_context(open(log_path, "a"))
        while step < total:
            for batch in loader:
                step += 1
                entry = {"step": step, "indices": batch["index"].tolist(), "digest": digest(batch)}
                log.write(json.dumps(entry) + "\n")
                log.flush()
                if checkpoint and step % CHECKPOINT_EVERY == 0:
                    save_state(checkpoint, {"step": step, "loader": loader.state_dict()})
                    if arm and step == ARM_AT:
                        Path(arm).touch()
                if step == total:
                    break


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="remote_trainer")
    p.add_argument("root")
    p.add_argument("log")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--cache")
    p.add_argument("--arm")
    p.add_argument("--status")
    p.add_argument("--lookahead", action="store_true", help="run episode_sampler.lookahead.LookAhead too")
    args = p.parse_args(argv)
    if args.arm:
        assert args.cache and args.status, "--arm needs --cache and --status"
        pause_on_store(args.cache, args.arm, args.status)
    run(args.root, args.log, args.checkpoint, args.cache, args.arm, args.lookahead)
    return 0


if __name__ == "__main__":
    sys.exit(main())
