"""Crash-consistent checkpoints of the demo's training worker.

A checkpoint directory holds ``checkpoint.json`` (``{"format", "step", "model", "loader"}``, the loader's
``state_dict()`` included) and the one ``model-<step>.pt`` file it names. Writing step ``S``:

1. ``model-<S>.pt`` (model + optimizer) is written to a temporary file, fsynced and renamed;
2. ``checkpoint.json`` is written with :func:`episode_sampler.core.checkpoint.save_state` (temporary file,
   fsync, rename). This rename is the commit point: until it happens the previous ``checkpoint.json``
   names the previous model file;
3. model files no longer named by ``checkpoint.json`` (and stale temporary files) are deleted.

A SIGKILL at any instant of this sequence leaves a loadable checkpoint (the previous one until the
rename of ``checkpoint.json``, the new one after it); ``tests/cli/test_worker_checkpoint.py`` kills the worker
before and after each of the two renames to prove it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CHECKPOINT_NAME = "checkpoint.json"
CHECKPOINT_FORMAT = "episode-sampler-demo/1"


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


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(ckpt_dir: Path, step: int, model: Any, optimizer: Any, loader: Any) -> int:
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
    os.replace(tmp, ckpt_dir / name)
    _fsync_dir(ckpt_dir)
    record = {"format": CHECKPOINT_FORMAT, "step": step, "model": name, "loader": loader.state_dict()}
    size = save_state(ckpt_dir / CHECKPOINT_NAME, record)  # the commit point (temporary file + rename)
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
