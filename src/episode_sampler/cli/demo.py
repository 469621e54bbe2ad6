"""``episode-sampler demo``: train, SIGKILL, resume in a new process, compare sample for sample.

The orchestration only: the training itself is :mod:`.worker`, run once in this process (the uninterrupted
reference) and twice as ``python -m episode_sampler.cli.worker`` (the run that is killed, and the run that
resumes from its last committed checkpoint). Progress goes to stderr (:mod:`.progress`), the report to
stdout. Everything lives in one run directory: a temporary one, deleted at the end, or ``--keep DIR``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .parser import PROG, UsageError
from .progress import Progress, StepBar

DEFAULT_EPISODES = 120
DEMO_CAMERAS = {"observation.images.top": (64, 64)}  # one tiny AV1 camera: the demo decodes video too
DEFAULT_BLOCK_SIZE = 8
KILLED_CHECKPOINT = "killed-checkpoint.json"  # in the run directory: the state the resume started from


class DemoFailed(Exception):
    """A training process failed: reported as one line, exit code 1, the run directory kept."""


# ---------------------------------------------------------------------------------------------- dataset
def ensure_dataset(root: Path, episodes: int | None, progress: Progress) -> bool:
    """Write the demo's dataset at ``root`` unless one is there; return whether it was written.

    The one place where the demo writes its dataset. An existing dataset is used as it is, and then
    ``episodes`` (when given) must match its episode count.
    """
    from ..lerobot import read_episode_index, write_lerobot_dataset

    if (root / "meta" / "info.json").exists():
        if episodes is not None:
            try:
                have = read_episode_index(root).num_episodes
            except (OSError, ValueError) as exc:
                raise UsageError(f"cannot use the dataset at {str(root)!r}: {exc}") from None
            if have != episodes:
                raise UsageError(
                    f"--root {str(root)!r} holds a dataset of {have} episodes, not --episodes {episodes}: "
                    "drop --episodes to use it, or give another --root to write a new one"
                )
        return False
    if root.exists() and not root.is_dir():
        raise UsageError(f"--root {str(root)!r} exists and is not a directory")
    if root.is_dir() and any(root.iterdir()):
        raise UsageError(
            f"--root {str(root)!r} is not empty and holds no LeRobot dataset (no meta/info.json)"
        )
    n = DEFAULT_EPISODES if episodes is None else episodes
    with progress.status(f"writing a synthetic LeRobot v3 dataset of {n} episodes with a 64x64 camera"):
        write_lerobot_dataset(root, num_episodes=n, seed=0, cameras=DEMO_CAMERAS)
    return True


def import_libraries() -> float:
    """Import what the demo runs on (torch, torchdata, pyarrow, PyAV and the modules that use them);
    return the seconds it took. ``import episode_sampler`` imports none of them (lazy names), so the
    demo can say what it is doing before this wait (seconds on a cold start)."""
    t0 = time.perf_counter()
    import torch  # noqa: F401
    import torchdata.nodes  # noqa: F401

    from .. import lerobot, node  # noqa: F401

    return time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------- run directory
def make_run_dir(keep: str | None) -> Path:
    """``--keep DIR`` (created; refused unless new or empty), else a new temporary directory."""
    if keep is None:
        return Path(tempfile.mkdtemp(prefix="episode-sampler-demo-"))
    path = Path(keep)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--keep {keep!r} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()):
        raise UsageError(f"--keep {keep!r} is not empty: give a new or empty directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create --keep {keep!r}: {exc.strerror or exc}") from None
    return path


def process_seconds() -> float | None:
    """Seconds since this process started (Linux ``/proc``), or ``None`` where that is unknown."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return None


# ---------------------------------------------------------------------------------------------- workers
def _child_env() -> dict[str, str]:
    """This environment, with this package importable in the child even when run from a source tree."""
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _start(cmd: list[str], err: IO[bytes]) -> subprocess.Popen[str]:
    """Start a worker: stdout piped as text (its ``ready``/``step`` lines), stderr to ``err``."""
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=True, env=_child_env()
    )


def _wait_ready(proc: subprocess.Popen[str]) -> int | None:
    """Read the worker's stdout up to its ``ready STEP`` line; ``STEP``, or ``None`` if it ended first."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("ready "):
            return int(line.split()[1])
    return None


@dataclass
class Worker:
    """How to start the worker: the command prefix and where its files go."""

    base: list[str]
    run_dir: Path
    progress: Progress

    def _stderr_tail(self, name: str) -> str:
        lines = (self.run_dir / name).read_text(errors="replace").strip().splitlines()
        return lines[-1].strip() if lines else "no error output"

    def run_until_kill(self, label: str, log: Path, kill_at: int, total: int) -> int:
        """Run from scratch, SIGKILL once step ``kill_at`` is reported; return the last logged step."""
        from .worker import read_log

        err_name = "killed.err"
        with open(self.run_dir / err_name, "wb") as err:
            proc = _start([*self.base, "--log", str(log), "--progress"], err)
            try:
                with self.progress.status(f"starting the {label} (a new Python process: torch, dataset)"):
                    start = _wait_ready(proc)
                bar: StepBar | None = None
                killed = False
                if start is not None:
                    bar = self.progress.bar(label, total, start)
                    assert proc.stdout is not None
                    for line in proc.stdout:
                        if line.startswith("step "):
                            step = int(line.split()[1])
                            bar.to(step)
                            if step >= kill_at:
                                os.kill(proc.pid, signal.SIGKILL)
                                killed = True
                                break
                proc.stdout.close()  # type: ignore[union-attr]
                code = proc.wait()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        steps = read_log(log)
        last = steps[-1]["step"] if steps else 0
        if bar is not None:  # the log is the truth: the process may have run on before the kill landed
            bar.close(last, "SIGKILL" if killed else None)
        if not killed:
            raise DemoFailed(
                f"the {label} exited (code {code}) before step {kill_at}: {self._stderr_tail(err_name)}"
            )
        return last

    def run_to_end(self, label: str, log: Path, total: int) -> dict[str, Any]:
        """Resume from the checkpoint and run to the end; return the worker's JSON summary."""
        err_name = "resumed.err"
        summary = None
        with open(self.run_dir / err_name, "wb") as err:
            proc = _start([*self.base, "--log", str(log), "--progress", "--resume"], err)
            try:
                with self.progress.status(f"starting the {label} (a new Python process: torch, dataset)"):
                    start = _wait_ready(proc)
                if start is not None:
                    bar = self.progress.bar(label, total, start)
                    assert proc.stdout is not None
                    for line in proc.stdout:
                        if line.startswith("step "):
                            bar.to(int(line.split()[1]))
                        elif line.startswith("{"):
                            summary = json.loads(line)
                            bar.close(summary["steps"])
                    bar.close()
                code = proc.wait()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        if code != 0 or summary is None:
            raise DemoFailed(f"the {label} failed (exit {code}): {self._stderr_tail(err_name)}")
        return summary


# ---------------------------------------------------------------------------------------------- report
def compare(reference: list[dict[str, Any]], effective: list[dict[str, Any]]) -> str | None:
    """``None`` when the streams are equal, else a description of the first difference."""
    for a, b in zip(reference, effective):
        if a["step"] != b["step"] or a["indices"] != b["indices"]:
            return (
                f"step {a['step']}: reference {a['indices'][:6]}..., resumed stream has step {b['step']} "
                f"{b['indices'][:6]}..."
            )
    if len(reference) != len(effective):
        return f"the reference has {len(reference)} steps, the killed+resumed stream {len(effective)}"
    return None


def kill_report(last: int, kill_at: int, per_epoch: int) -> list[str]:
    """The report's ``kill`` lines: the last step the killed process logged, the step asked for, and,
    when the process got further than asked, why.

    The kill is asynchronous, as a real crash is: the demo sends SIGKILL when it reads the process's
    ``step K`` line (printed right after step K is logged), and the process does not stop to wait for
    it. A step whose batch is already prefetched takes milliseconds, so when the demo is slow to be
    scheduled the process logs step K + 1 (rarely more) before the signal lands. The report and the
    comparison use the log, so they name the step the process really reached.
    """
    ep, in_ep = divmod(last - 1, per_epoch) if last else (0, -1)
    lines = [
        f"  kill        SIGKILL after step {last} (epoch {ep}, step {in_ep + 1} of {per_epoch}); "
        f"asked for step {kill_at}"
    ]
    if last > kill_at:
        ran = last - kill_at
        lines += [
            f"              the process ran {ran} step{'s' if ran > 1 else ''} past it before the signal "
            "landed: the demo sends SIGKILL on",
            f"              reading its 'step {kill_at}' line, and the process trains on meanwhile "
            "(its batches are prefetched)",
        ]
    return lines


def _human_bytes(n: int) -> str:
    return f"{n} B" if n < 1024 else f"{n / 1024:.1f} KiB"


# ---------------------------------------------------------------------------------------------- command
def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``episode-sampler demo``: see the module doc. ``parser`` is the demo's own (for usage errors)."""
    t0 = time.perf_counter()
    startup = process_seconds()
    if args.order != "blocks" and args.block_size is not None:
        parser.error("--block-size applies only to --order blocks")
    run_dir = make_run_dir(args.keep)
    keep = args.keep is not None
    try:
        return _run_in(args, parser, run_dir, t0, startup)
    except DemoFailed as exc:
        keep = True
        sys.stderr.write(f"{PROG} demo: error: {exc} (logs kept in {run_dir})\n")
        return 1
    finally:
        if not keep:
            shutil.rmtree(run_dir, ignore_errors=True)


def _run_in(
    args: argparse.Namespace,
    parser: argparse.ArgumentParser,
    run_dir: Path,
    t0: float,
    startup: float | None,
) -> int:
    progress = Progress(enabled=not args.quiet)
    say = print
    with progress.status("loading torch, torchdata, pyarrow and PyAV"):  # the first line, at once
        imported = import_libraries()
    from . import worker

    root = Path(args.root) if args.root else run_dir / "dataset"
    wrote = ensure_dataset(root, args.episodes, progress)
    block_size = (args.block_size or DEFAULT_BLOCK_SIZE) if args.order == "blocks" else None
    cfg = worker.TrainConfig(
        root=str(root),
        batch_size=args.batch_size,
        seed=args.seed,
        permutation=args.permutation,
        order=args.order,
        block_size=block_size,
        epochs=args.epochs,
        checkpoint_every=args.checkpoint_every,
    )
    try:
        from ..lerobot import read_episode_index

        episodes = read_episode_index(root)
        _, node, dataset = worker.build_pipeline(cfg)
        features = dataset.info.get("features")
        missing = [k for k in worker.FEATURES if not isinstance(features, dict) or k not in features]
        if missing:
            raise ValueError(f"meta/info.json declares no feature {missing[0]!r}")
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot use the dataset at {str(root)!r}: {exc}") from None
    per_epoch = worker.steps_per_epoch(node.samples_per_epoch, args.batch_size)
    total = per_epoch * args.epochs
    if total < 2:
        parser.error(f"the run has only {total} step(s): use more --episodes or a smaller --batch-size")
    kill_at = args.kill_at_step
    if kill_at is None:
        kill_at = min(total - 1, per_epoch * (args.epochs - 1) + per_epoch // 2 + 3)
    if not 1 <= kill_at < total:
        parser.error(f"--kill-at-step must be in [1, {total - 1}] for this run of {total} steps")

    say(f"{PROG} demo")
    where_ds = f"{root}" + ("" if args.root or args.keep else " (temporary)")
    cameras = list(dataset.video_keys)
    shapes = {k: (dataset.info["features"][k].get("shape") or [])[:2] for k in cameras}
    seen = ", ".join(f"{k} {'x'.join(map(str, shapes[k]))}" for k in cameras) or "none"
    say(
        f"  dataset     {episodes.num_episodes} episodes, {episodes.num_frames} frames, LeRobot v3 "
        f"{'(synthetic, just written) ' if wrote else ''}at {where_ds}"
    )
    say(
        f"              cameras: {seen} (AV1 video, decoded per batch)"
        if cameras
        else "              cameras: none"
    )
    blocks = f", block_size={block_size}" if block_size else ""
    say(
        f"  pipeline    EpisodeSamplerNode(batch_size={args.batch_size}, shuffle=True, seed={args.seed}, "
        f"permutation={args.permutation!r}, order={args.order!r}{blocks})"
    )
    say("              -> Mapper(LeRobotFrames.get_batch) -> Prefetcher -> Loader")
    inputs = "observation.state" + (" + camera channel means" if cameras else "")
    say(
        f"  training    linear model {inputs} -> action, SGD with momentum; {args.epochs} epoch(s) "
        f"x {per_epoch} steps = {total} steps"
    )
    say(f"              atomic checkpoint (model + Loader.state_dict()) every {args.checkpoint_every} steps")
    sys.stdout.flush()

    # 1. the uninterrupted reference, in this process
    ref_log = run_dir / "reference.jsonl"
    bar = progress.bar("reference run", total)
    reference = worker.train(
        cfg, ckpt_dir=run_dir / "reference-checkpoints", log_path=ref_log, on_step=bar.to
    )
    bar.close(reference.steps)
    ref_steps = worker.read_log(ref_log)
    rate = reference.samples / reference.seconds if reference.seconds > 0 else float("inf")

    # 2. the same run in a new process, SIGKILLed once it reports step kill_at
    ck = run_dir / "checkpoints"
    base = [sys.executable, "-m", "episode_sampler.cli.worker", *cfg.argv(), "--checkpoint-dir", str(ck)]
    runner = Worker(base, run_dir, progress)
    crash_log, resume_log = run_dir / "killed.jsonl", run_dir / "resumed.jsonl"
    last = runner.run_until_kill("run to be killed", crash_log, kill_at, total)
    crashed = worker.read_log(crash_log)
    record = worker.load_checkpoint(ck)
    ck_step = record[0]["step"] if record else 0
    ck_bytes = (ck / worker.CHECKPOINT_NAME).stat().st_size if record else 0
    model_bytes = (ck / record[0]["model"]).stat().st_size if record else 0
    if record:
        shutil.copyfile(ck / worker.CHECKPOINT_NAME, run_dir / KILLED_CHECKPOINT)

    # 3. a new process resumes from the checkpoint
    summary = runner.run_to_end("resumed run", resume_log, total)
    resumed = worker.read_log(resume_log)
    effective = [s for s in crashed if s["step"] <= ck_step] + resumed
    problem = compare(ref_steps, effective)
    same_weights = summary["weights_sha256"] == reference.weights_sha256

    state = worker.find_sampler_state(record[0]["loader"]) if record else None
    where = (
        f"epoch {state['epoch']}, sample {state['start_index']} of {node.samples_per_epoch}"
        if state
        else "from scratch (no checkpoint yet)"
    )
    say(
        f"  reference   {reference.steps} steps, {reference.samples} samples in {reference.seconds:.2f} s "
        f"({rate:,.0f} samples/s: reading, training, checkpoints)"
    )
    for line in kill_report(last, kill_at, per_epoch):
        say(line)
    say(
        f"  checkpoint  last committed at step {ck_step}: checkpoint.json {_human_bytes(ck_bytes)} "
        f"(loader state), model {_human_bytes(model_bytes)}"
    )
    say(
        f"  resume      new process from step {ck_step} ({where}); redid steps {ck_step + 1}..{last}, "
        f"ran to step {summary['steps']}"
    )
    samples = sum(len(s["indices"]) for s in ref_steps)
    if problem is None and same_weights:
        say(
            f"  verdict     EXACT: {len(ref_steps)} steps, {samples} samples identical to the uninterrupted "
            "run; final weights bit-identical"
        )
    elif problem is None:
        say("  verdict     stream EXACT, but the final weights differ from the reference")
    else:
        say(f"  verdict     MISMATCH: {problem}")
    if args.keep:
        kept = run_dir / KILLED_CHECKPOINT if record else ck / worker.CHECKPOINT_NAME
        say(f"  kept        {run_dir}: step logs (*.jsonl), checkpoints/, worker stderr (*.err)")
        say(f"              the state the resume started from: {PROG} inspect {kept}")
    took = time.perf_counter() - t0
    if startup is not None:
        say(
            f"  time        {startup + took:.1f} s in all, {startup:.1f} s of it starting Python "
            f"and {imported:.1f} s importing torch and the readers"
        )
    else:
        say(f"  time        {took:.1f} s (after starting Python), {imported:.1f} s of it importing torch")
    return 0 if problem is None and same_weights else 1
