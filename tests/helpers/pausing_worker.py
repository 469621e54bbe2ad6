"""The demo's training worker with kill points, for the fault-injection tests (not part of the package).

``main(argv)`` runs the real :func:`episode_sampler.cli.worker.main` with two more arguments::

    --pause-at STEP[:PHASE]   stop at STEP, in PHASE (default ``step``): write ``paused STEP PHASE`` to
                              --status and sleep until killed
    --status FILE             where that line goes (appended, flushed)

so that a test can SIGKILL the process at a precise point. Nothing of the worker is replaced: its
``train`` and ``save_checkpoint`` are wrapped (module attributes patched for the life of the process:
run it only in a process of its own), and the pause happens around the real calls.

Phases (in the order they happen within step STEP):

- ``step``: the step is logged, not yet checkpointed (the worker's ``on_step`` callback);
- ``model-tmp``: the temporary model file is written and fsynced, not yet renamed (just before the
  ``os.replace`` onto ``model-*.pt`` inside ``save_checkpoint``);
- ``model-renamed``: the model file is in place, ``checkpoint.json`` not yet written (just after it);
- ``json-tmp``: inside ``save_state``, the temporary JSON file is written and fsynced, the rename has not
  happened (just before the ``os.replace`` onto ``checkpoint.json``);
- ``json-renamed``: committed, old files not yet removed (just after it).

A checkpoint of STEP that ends without passing its requested phase is an error (exit code 3): the
worker's checkpoint code changed so that the kill point no longer exists, and the test must follow.

Run as ``python tests/helpers/pausing_worker.py --pause-at 50:model-tmp --status S <worker arguments>``,
or call :func:`main` from a (forkserver) process.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from episode_sampler.cli import worker

PHASES = ("step", "model-tmp", "model-renamed", "json-tmp", "json-renamed")
CHECKPOINT_PHASES = PHASES[1:]


class Pause:
    """Stop (sleep until killed) at one ``(step, phase)``."""

    def __init__(self, spec: str, status: str | None) -> None:
        step, _, phase = spec.partition(":")
        self.step, self.phase = int(step), phase or "step"
        self.status = status

    def __call__(self, step: int, phase: str) -> None:
        if (step, phase) != (self.step, self.phase):
            return
        line = f"paused {step} {phase}\n"
        if self.status:
            with open(self.status, "a", encoding="utf-8") as out:
                out.write(line)
                out.flush()
        else:
            sys.stdout.write(line)
            sys.stdout.flush()
        while True:  # until SIGKILL
            time.sleep(3600)


def _phase_of(dst: Any) -> str | None:
    """``model`` or ``json`` for the two renames of a checkpoint write, else ``None``."""
    name = Path(dst).name
    if name == worker.CHECKPOINT_NAME:
        return "json"
    if name.startswith("model-") and name.endswith(".pt"):
        return "model"
    return None


def install(pause: Pause) -> None:
    """Wrap the worker's ``train`` (phase ``step``) and ``save_checkpoint`` (the four others)."""
    real_train = worker.train
    real_save = worker.save_checkpoint

    def train(*args: Any, on_step: Any = None, **kwargs: Any) -> Any:
        def step_done(step: int) -> None:
            if on_step is not None:
                on_step(step)
            pause(step, "step")

        return real_train(*args, on_step=step_done, **kwargs)

    def save_checkpoint(ckpt_dir: Path, step: int, *args: Any, **kwargs: Any) -> int:
        real_replace = os.replace

        def replace(src: Any, dst: Any, *a: Any, **k: Any) -> None:
            phase = _phase_of(dst)
            if phase is not None:
                pause(step, f"{phase}-tmp")
            real_replace(src, dst, *a, **k)
            if phase is not None:
                pause(step, f"{phase}-renamed")

        os.replace = replace  # type: ignore[assignment]
        try:
            size = real_save(ckpt_dir, step, *args, **kwargs)
        finally:
            os.replace = real_replace  # type: ignore[assignment]
        if step == pause.step and pause.phase in CHECKPOINT_PHASES:
            print(
                f"error: the checkpoint of step {step} never reached phase {pause.phase} "
                "(save_checkpoint no longer renames with os.replace?)",
                file=sys.stderr,
                flush=True,
            )
            raise SystemExit(3)
        return size

    worker.train = train  # type: ignore[assignment]
    worker.save_checkpoint = save_checkpoint  # type: ignore[assignment]


def _pause_spec(text: str) -> str:
    step, _, phase = text.partition(":")
    if not step.isdigit() or (phase and phase not in PHASES):
        raise argparse.ArgumentTypeError(f"expected STEP[:PHASE] with PHASE in {', '.join(PHASES)}")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pausing_worker", add_help=False)
    parser.add_argument("--pause-at", type=_pause_spec, required=True, metavar="STEP[:PHASE]")
    parser.add_argument("--status", default=None)
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    install(Pause(args.pause_at, args.status))
    worker.main(rest)
    # reaching the pause would have slept until killed
    print(f"error: --pause-at {args.pause_at} was never reached", file=sys.stderr, flush=True)
    raise SystemExit(3)


if __name__ == "__main__":
    sys.exit(main())
