#!/usr/bin/env python
"""Crash and resume: SIGKILL a training process mid-epoch, resume in a new one, check every sample.

    python examples/resume_after_crash.py

The worker (this file run with ``--worker``) iterates the canonical pipeline
``EpisodeSamplerNode -> Mapper(get_batch) -> Prefetcher -> Loader``, appends the frame indices of
every step to a log (flushed at once) and saves ``{"step", "loader": loader.state_dict()}`` atomically
with ``episode_sampler.save_state`` every few steps. The parent kills it with SIGKILL once it has
logged step ``KILL_AT``, starts a new worker that resumes from the checkpoint, and checks that the
steps up to the checkpoint plus the resumed steps are exactly an uninterrupted run. Steps done after
the last checkpoint and before the kill are done again after the resume, as in any real training job.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from torchdata.nodes import Loader, Mapper, Prefetcher

from episode_sampler import LeRobotFrames, load_state, save_state, write_lerobot_dataset
from episode_sampler.node import EpisodeSamplerNode

EPOCHS, BATCH, CHECKPOINT_EVERY, KILL_AT = 2, 16, 10, 105


def make_loader(root: str) -> tuple[Loader, int]:
    """The pipeline, and the number of steps (batches) in one epoch."""
    dataset = LeRobotFrames(root, columns=["index", "observation.state", "observation.images.top"])
    node = EpisodeSamplerNode.from_lerobot(
        root, batch_size=BATCH, shuffle=True, seed=7, permutation="feistel"
    )
    steps_per_epoch = -(-node.samples_per_epoch // BATCH)
    return Loader(Prefetcher(Mapper(node, dataset.get_batch), prefetch_factor=4)), steps_per_epoch


def train(root: str, log_path: str, checkpoint: str | None) -> None:
    """Run EPOCHS epochs' worth of steps, resuming from ``checkpoint`` when it exists."""
    loader, steps_per_epoch = make_loader(root)
    step, total = 0, EPOCHS * steps_per_epoch
    if checkpoint and os.path.exists(checkpoint):
        saved = load_state(checkpoint)
        loader.load_state_dict(saved["loader"])  # the sampler seeks in O(1): nothing is replayed
        step = saved["step"]
    with open(log_path, "a") as log:
        while step < total:  # each pass over the Loader is one epoch (restart_on_stop_iteration)
            for batch in loader:
                step += 1  # ... a real training step would run on `batch` here ...
                log.write(json.dumps({"step": step, "indices": batch["index"].tolist()}) + "\n")
                log.flush()
                if checkpoint and step % CHECKPOINT_EVERY == 0:
                    save_state(checkpoint, {"step": step, "loader": loader.state_dict()})  # atomic
                if step == total:
                    break


def read_log(path: Path) -> list[dict]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines(keepends=True)
    return [json.loads(line) for line in lines if line.endswith("\n")]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = str(Path(tmp) / "dataset")
        write_lerobot_dataset(root, num_episodes=30, cameras={"observation.images.top": (64, 64)})
        ref_log, crash_log, resume_log = (Path(tmp) / n for n in ("ref.jsonl", "crash.jsonl", "resume.jsonl"))
        checkpoint = str(Path(tmp) / "state.json")

        train(root, str(ref_log), None)  # the uninterrupted reference, in this process
        reference = read_log(ref_log)
        print(f"reference: {len(reference)} steps over {EPOCHS} epochs")

        cmd = [sys.executable, __file__, "--worker", root, "--checkpoint", checkpoint]
        proc = subprocess.Popen([*cmd, "--log", str(crash_log)])
        while proc.poll() is None and len(read_log(crash_log)) < KILL_AT:
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        crashed = read_log(crash_log)
        saved_step = load_state(checkpoint)["step"] if os.path.exists(checkpoint) else 0
        print(
            f"killed the worker (SIGKILL) after step {crashed[-1]['step']} (mid epoch 1); "
            f"last checkpoint: step {saved_step}"
        )

        subprocess.run([*cmd, "--log", str(resume_log)], check=True)
        resumed = read_log(resume_log)
        print(f"resumed in a new process from step {saved_step}: {len(resumed)} more steps")

        effective = [s for s in crashed if s["step"] <= saved_step] + resumed
        assert effective == reference, "the resumed stream differs from the uninterrupted run"
        samples = sum(len(s["indices"]) for s in effective)
        print(f"resume_after_crash OK: {len(effective)} steps, {samples} samples, identical to the reference")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", metavar="ROOT", help="internal: run the training worker on ROOT")
    parser.add_argument("--checkpoint")
    parser.add_argument("--log")
    args = parser.parse_args()
    if args.worker:
        train(args.worker, args.log, args.checkpoint)
        sys.exit(0)
    sys.exit(main())
