"""Crash-consistent checkpoints of the demo's training worker, with the test hooks that pause inside them.

A checkpoint directory holds ``checkpoint.json`` (``{"format", "step", "model", "loader"}``, the loader's
``state_dict()`` included) and the one ``model-<step>.pt`` file it names. Writing step ``S``:

1. ``model-<S>.pt`` (model + optimizer) is written to a temporary file, fsynced and renamed;
2. ``checkpoint.json`` is written with :func:`episode_sampler.core.checkpoint.save_state` (temporary file,
   fsync, rename). This rename is the commit point: until it happens the previous ``checkpoint.json``
   names the previous model file;
3. model files no longer named by ``checkpoint.json`` (and stale temporary files) are deleted.

:class:`Pauser` stops the process (sleeps until it is killed) at one ``(step, phase)``, phases in
:data:`PHASES`, so a test can SIGKILL it at a precise point of this sequence.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHECKPOINT_NAME = "checkpoint.json"
CHECKPOINT_FORMAT = "episode-sampler-demo/1"
PHASES = ("step", "model-tmp", "model-renamed", "json-tmp", "json-renamed")


def find_sampler_state(obj: Any) -> dict[str, Any] | None:
    """The first episode-sampler state nested anywhere in ``obj`` (dicts and lists), else ``None``."""
    if isinstance(obj, Mapping):
        if "fingerprint" in obj and "epoch" in obj and "start_index" in obj:
            return dict(obj)
        values: Any = obj.values()
    elif isinstance(obj, (list, tuple)):
        values = obj
    else:
        return None
    for value in values:
        found = find_sampler_state(value)
        if found is not None:
            return found
    return None


class Pauser:
    """Stop (sleep until killed) at one ``(step, phase)``; a no-op without a spec."""

    def __init__(self, spec: str | None, out: Any = None) -> None:
        self.step: int | None = None
        self.phase: str | None = None
        self.hit = False
        self.out = out if out is not None else sys.stdout
        if spec:
            step, _, phase = spec.partition(":")
            self.step, self.phase = int(step), phase or "step"

    def __call__(self, step: int, phase: str) -> None:
        if step == self.step and phase == self.phase:
            self.hit = True
            print(f"paused {step} {phase}", file=self.out, flush=True)
            while True:  # until SIGKILL
                time.sleep(3600)


@contextmanager
def _pause_inside_rename(pauser: Pauser, step: int) -> Iterator[None]:
    """Pause inside ``save_state`` between its temporary file and its rename (phase ``json-tmp``)."""
    if pauser.phase != "json-tmp" or pauser.step != step:
        yield
        return
    real_replace = os.replace

    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if Path(dst).name == CHECKPOINT_NAME:
            pauser(step, "json-tmp")
        real_replace(src, dst, *args, **kwargs)

    os.replace = replace  # type: ignore[assignment]
    try:
        yield
    finally:
        os.replace = real_replace  # type: ignore[assignment]
    raise RuntimeError(
        "--pause-at ...:json-tmp was not reached: save_state no longer renames with os.replace"
    )


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(ckpt_dir: Path, step: int, model: Any, optimizer: Any, loader: Any, pause: Pauser) -> int:
    """Write a crash-consistent checkpoint of ``step``; return the size of ``checkpoint.json``."""
    import torch

    from ..core.checkpoint import save_state

    ckpt_dir.mkdir(parents=True, exist_ok=True)
    name = f"model-{step:08d}.pt"
    tmp = ckpt_dir / f".{name}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        torch.save({"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict()}, f)
        f.flush()
        os.fsync(f.fileno())
    pause(step, "model-tmp")
    os.replace(tmp, ckpt_dir / name)
    _fsync_dir(ckpt_dir)
    pause(step, "model-renamed")
    record = {"format": CHECKPOINT_FORMAT, "step": step, "model": name, "loader": loader.state_dict()}
    with _pause_inside_rename(pause, step):
        size = save_state(ckpt_dir / CHECKPOINT_NAME, record)
    pause(step, "json-renamed")
    remove_stale(ckpt_dir, keep=name)
    return size


def remove_stale(ckpt_dir: Path, keep: str | None) -> None:
    for path in ckpt_dir.iterdir():
        stale_model = path.name.startswith("model-") and path.name.endswith(".pt") and path.name != keep
        if stale_model or (path.name.startswith(".") and path.name.endswith(".tmp")):
            try:
                path.unlink()
            except FileNotFoundError:
                pass


def load_checkpoint(ckpt_dir: Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """``(record, model_payload)`` of the committed checkpoint in ``ckpt_dir``, or ``None``.

    Raises:
        ValueError: ``checkpoint.json`` is unreadable or names a missing model file.
    """
    import torch

    from ..core.checkpoint import load_state

    path = ckpt_dir / CHECKPOINT_NAME
    if not path.exists():
        return None
    record = load_state(path)
    if not isinstance(record, dict) or record.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{str(path)!r} is not a demo checkpoint")
    model_path = ckpt_dir / record["model"]
    if not model_path.exists():
        raise ValueError(f"{str(path)!r} names {record['model']!r}, which does not exist")
    payload = torch.load(model_path, map_location="cpu", weights_only=True)
    if payload.get("step") != record["step"]:
        raise ValueError(f"{str(model_path)!r} holds step {payload.get('step')}, not {record['step']}")
    return record, payload
