"""The measurements of ``episode-sampler bench``: one setting's throughput, decode work and first batch.

A *setting* is an order (``"frames"``, or ``"blocks"`` with a block size) and a number of DataLoader
workers. :func:`measure` builds everything afresh, as a training script does after its imports::

    frames  = LeRobotFrames(root, columns, return_uint8=uint8)
    sampler = EpisodeAwareSampler.from_lerobot(root, shuffle=True, seed=seed, order=..., block_size=...)
    loader  = DataLoader(frames read with get_batch, batch_sampler=BatchSampler(sampler, batch_size),
                         num_workers=workers, persistent_workers=workers > 0)

It times the first batch (set-up included), then iterates for the time budget (across epochs if
the dataset is small) and reports samples per second from the first batch on: worker start-up and the
first decoder opens fall in the first batch, not in the rate. The command measures each setting in
several rounds, settings interleaved, so that a change of machine load affects every setting alike
(:func:`summarize` merges a setting's rounds).

Decode work is counted where it happens: every batch carries the :attr:`LeRobotFrames.video_stats` of
the process that read it (counted from that process's first batch), so the totals include the work of
DataLoader workers.

Run as ``python -m episode_sampler.cli.bench_measure ROOT --order ... --workers ...`` it measures the
time from process start to the first batch in a new process and prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: decode counters of :attr:`LeRobotFrames.video_stats` that are summed over processes
DECODE_COUNTERS = ("opens", "seeks", "packets", "packet_bytes", "frames_decoded", "frames_converted")


@dataclass(frozen=True)
class Setting:
    """One configuration measured: ``order`` ``"frames"`` or ``"blocks"`` (with ``block_size``), and
    the number of DataLoader ``workers``."""

    order: str
    block_size: int | None
    workers: int

    @property
    def unit(self) -> int:
        """Frames per shuffled unit: 1 for ``order="frames"``, else the block size."""
        return 1 if self.block_size is None else self.block_size

    def label(self) -> str:
        order = "frames" if self.block_size is None else f"blocks of {self.block_size}"
        return f"{order}, {self.workers} worker{'' if self.workers == 1 else 's'}"


@dataclass(frozen=True)
class Options:
    """What every setting shares: the dataset and how it is read."""

    root: str
    batch_size: int = 32
    columns: tuple[str, ...] | None = None
    uint8: bool = False
    seed: int = 0
    video_backend: str = "pyav"


class BatchReader:
    """``LeRobotFrames`` for a DataLoader with a ``batch_sampler``: ``__getitems__`` reads the whole
    batch with ``get_batch`` and returns it with the decode counters of the process that read it."""

    def __init__(self, frames: Any) -> None:
        self.frames = frames
        self._base: tuple[int, dict[str, int]] | None = None

    def __len__(self) -> int:
        return len(self.frames)

    def __getitems__(self, indices: Sequence[int]) -> tuple[dict[str, Any], int, dict[str, int]]:
        pid = os.getpid()
        if self._base is None or self._base[0] != pid:  # this process's first batch
            self._base = (pid, dict(self.frames.video_stats))
        batch = self.frames.get_batch(indices)
        base = self._base[1]
        stats = {k: v - base.get(k, 0) for k, v in self.frames.video_stats.items()}
        return batch, pid, stats


def passthrough(batch: Any) -> Any:
    """The DataLoader's ``collate_fn``: the batch is collated already."""
    return batch


def batch_nbytes(batch: Mapping[str, Any]) -> int:
    """Bytes of the tensors (and numpy arrays) of a collated batch."""
    total = 0
    for value in batch.values():
        nbytes = getattr(value, "nbytes", None)
        if nbytes is not None:
            total += int(nbytes)
    return total


def _cpu_of(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by process ``pid`` (Linux ``/proc``; ``None`` elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def cpu_snapshot() -> tuple[float, dict[int, float | None]]:
    """CPU seconds of this process (all its threads) and of each of its child processes (the DataLoader
    workers; Linux ``/proc``, none found elsewhere)."""
    pid = os.getpid()
    try:
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        children = []
    return time.process_time(), {c: _cpu_of(c) for c in children}


def cpu_between(
    before: tuple[float, dict[int, float | None]], after: tuple[float, dict[int, float | None]], workers: int
) -> float | None:
    """CPU seconds used between two :func:`cpu_snapshot` by this process and its children; ``None`` when
    the workers' CPU cannot be read (not Linux)."""
    main = after[0] - before[0]
    if workers == 0:
        return main
    kids = after[1]
    if len(kids) < workers or any(v is None for v in kids.values()):
        return None
    return main + sum(float(v or 0.0) - float(before[1].get(c) or 0.0) for c, v in kids.items())


def build(opts: Options, setting: Setting) -> tuple[Any, Any, Any]:
    """``(frames, sampler, loader)`` for ``setting``, built from scratch."""
    from torch.utils.data import BatchSampler, DataLoader

    from ..lerobot import LeRobotFrames
    from ..sampler import EpisodeAwareSampler

    frames = LeRobotFrames(
        opts.root,
        columns=list(opts.columns) if opts.columns else None,
        return_uint8=opts.uint8,
        video_backend=opts.video_backend,
    )
    sampler = EpisodeAwareSampler.from_lerobot(
        opts.root, shuffle=True, seed=opts.seed, order=setting.order, block_size=setting.block_size
    )
    loader: DataLoader[Any] = DataLoader(
        BatchReader(frames),  # type: ignore[arg-type]
        batch_sampler=BatchSampler(sampler, opts.batch_size, drop_last=False),
        collate_fn=passthrough,
        num_workers=setting.workers,
        persistent_workers=setting.workers > 0,
    )
    return frames, sampler, loader


def measure(opts: Options, setting: Setting, seconds: float) -> dict[str, Any]:
    """One round of ``setting``: build afresh, read the first batch, then read for about ``seconds``.

    Returns the round's totals: ``setup_s``, ``first_batch_s``, ``timed_samples``, ``timed_batches``,
    ``timed_seconds`` (from the first batch on), ``cpu_seconds`` (this process and its DataLoader workers
    over the same time; ``None`` where unknown), ``samples`` (all, the first batch too),
    ``delivered_bytes``, ``epochs_started``, ``cameras`` and ``decode`` (the decode counters summed over
    the processes that read, :data:`DECODE_COUNTERS`). :func:`summarize` turns rounds into a run record.
    """
    t0 = time.perf_counter()
    frames, sampler, loader = build(opts, setting)
    setup = time.perf_counter() - t0
    per_process: dict[int, dict[str, int]] = {}
    epoch = 0
    it = iter(loader)
    batch, pid, stats = next(it)
    first = time.perf_counter() - t0
    samples = len(next(iter(batch.values()))) if batch else 0
    delivered = batch_nbytes(batch)
    per_process[pid] = stats
    timed_samples = timed_batches = 0
    cpu0 = cpu_snapshot()
    t1 = time.perf_counter()
    try:
        while time.perf_counter() - t1 < seconds or timed_batches == 0:
            try:
                batch, pid, stats = next(it)
            except StopIteration:  # a small dataset: go on with the next epoch
                epoch += 1
                sampler.set_epoch(epoch)
                it = iter(loader)
                continue
            n = len(next(iter(batch.values()))) if batch else 0
            timed_samples += n
            timed_batches += 1
            delivered += batch_nbytes(batch)
            per_process[pid] = stats
        elapsed = time.perf_counter() - t1
        cpu = cpu_between(cpu0, cpu_snapshot(), setting.workers)  # before the workers shut down
    finally:  # on success and on failure: workers stopped, decoders closed
        del it
        del loader
        frames.close()
    return {
        "setup_s": setup,
        "first_batch_s": first,
        "timed_samples": timed_samples,
        "timed_batches": timed_batches,
        "timed_seconds": elapsed,
        "cpu_seconds": cpu,
        "samples": samples + timed_samples,
        "delivered_bytes": delivered,
        "epochs_started": epoch + 1,
        "cameras": len(frames.video_keys),
        "decode": {k: sum(s.get(k, 0) for s in per_process.values()) for k in DECODE_COUNTERS},
    }


def summarize(setting: Setting, rounds: Sequence[Mapping[str, Any]], video_backend: str) -> dict[str, Any]:
    """The run record of ``setting`` (the ``runs`` items of the JSON output, see :mod:`.bench_report`)
    from its rounds (:func:`measure`), without ``same_episode_share`` and ``fraction_of_best``.

    samples/s is all timed samples over all timed seconds; set-up and first batch are medians over
    the rounds; per-sample counts divide the totals by all samples read.
    """
    if not rounds:
        raise ValueError("rounds is empty: nothing was measured")
    total = sum(int(r["samples"]) for r in rounds)
    timed = sum(int(r["timed_samples"]) for r in rounds)
    seconds = sum(float(r["timed_seconds"]) for r in rounds)
    cameras = int(rounds[0]["cameras"])
    sums = {k: sum(int(r["decode"][k]) for r in rounds) for k in DECODE_COUNTERS}
    cpus = [r.get("cpu_seconds") for r in rounds]
    cpu = None if any(c is None for c in cpus) else sum(float(c) for c in cpus if c is not None)
    decode: dict[str, Any] | None = None
    if cameras:
        exact = video_backend == "pyav"  # torchcodec reports files opened and frames asked, not decoded

        def per(count: float) -> float | None:
            return count / total if exact and total else None

        frames = per(sums["frames_decoded"])
        decode = {
            "backend": video_backend,
            "cameras": cameras,
            "packets_per_sample": per(sums["packets"]),
            "packet_bytes_per_sample": per(sums["packet_bytes"]),
            "frames_decoded_per_sample_camera": None if frames is None else frames / cameras,
            "seeks_per_sample": per(sums["seeks"]),
            "files_opened": sums["opens"],
        }
    return {
        "order": setting.order,
        "block_size": setting.block_size,
        "workers": setting.workers,
        "samples_per_s": timed / seconds if seconds > 0 else 0.0,
        "samples_per_s_rounds": [
            r["timed_samples"] / r["timed_seconds"] if r["timed_seconds"] > 0 else 0.0 for r in rounds
        ],
        "timed_samples": timed,
        "timed_batches": sum(int(r["timed_batches"]) for r in rounds),
        "timed_seconds": seconds,
        "cpu_seconds": cpu,
        "samples_per_cpu_s": timed / cpu if cpu else None,
        "epochs_started": sum(int(r["epochs_started"]) for r in rounds),
        "setup_s": float(np.median([r["setup_s"] for r in rounds])),
        "first_batch_s": float(np.median([r["first_batch_s"] for r in rounds])),
        "delivered_bytes_per_sample": sum(int(r["delivered_bytes"]) for r in rounds) / total
        if total
        else 0.0,
        "decode": decode,
    }


def same_episode_share(episode_of_samples: np.ndarray, batch_size: int) -> float:
    """Share of pairs of batch-mates that come from the same episode (full batches only).

    ``episode_of_samples``: the episode of each sample, in the order they are drawn. A uniform shuffle
    gives about :func:`uniform_same_episode_share`; ``order="episodes"`` gives nearly 1.
    """
    if batch_size < 2:
        return 0.0
    full = episode_of_samples.size // batch_size * batch_size
    if full == 0:
        return 0.0
    eps = np.sort(episode_of_samples[:full].reshape(-1, batch_size), axis=1)
    # within a sorted row, the member at column j has (j - start of its run) earlier equal mates;
    # summed over a run of c members that is c * (c - 1) / 2 pairs
    cols = np.arange(batch_size)
    new_run = np.ones(eps.shape, dtype=bool)
    new_run[:, 1:] = eps[:, 1:] != eps[:, :-1]
    run_start = np.maximum.accumulate(np.where(new_run, cols, 0), axis=1)
    same = int((cols - run_start).sum())
    pairs = (full // batch_size) * (batch_size * (batch_size - 1) // 2)
    return same / pairs


def uniform_same_episode_share(lengths: np.ndarray) -> float:
    """The same share for a uniform shuffle: the chance that two distinct frames share an episode."""
    n = float(lengths.sum())
    if n < 2:
        return 0.0
    lengths = lengths.astype(np.float64)
    return float((lengths * (lengths - 1)).sum() / (n * (n - 1)))


def order_share(root: str, setting: Setting, batch_size: int, seed: int, max_samples: int = 65_536) -> float:
    """:func:`same_episode_share` of the first ``max_samples`` samples of epoch 0 of ``setting``'s order."""
    from ..lerobot import read_episode_index
    from ..sampler import EpisodeAwareSampler

    index = read_episode_index(root)
    sampler = EpisodeAwareSampler.from_index(
        index, shuffle=True, seed=seed, order=setting.order, block_size=setting.block_size
    )
    frames = sampler.frame_indices(0, 0, min(len(sampler), max_samples))
    return same_episode_share(index.episode_of(np.asarray(frames)), batch_size)


# ---------------------------------------------------------------------------------------------- fresh process
def _process_seconds() -> float | None:
    from .demo import process_seconds

    return process_seconds()


def fresh_process_command(opts: Options, setting: Setting) -> list[str]:
    """The command that measures ``setting``'s first batch in a new Python process."""
    cmd = [
        sys.executable,
        "-m",
        "episode_sampler.cli.bench_measure",
        opts.root,
        "--order",
        setting.order,
        "--workers",
        str(setting.workers),
        "--batch-size",
        str(opts.batch_size),
        "--seed",
        str(opts.seed),
    ]
    if setting.block_size is not None:
        cmd += ["--block-size", str(setting.block_size)]
    if opts.columns:
        cmd += ["--columns", ",".join(opts.columns)]
    if opts.uint8:
        cmd.append("--uint8")
    cmd += ["--video-backend", opts.video_backend]
    return cmd


def child_env() -> dict[str, str]:
    """This environment, with this package importable in the child even when run from a source tree."""
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def first_batch_in_this_process(opts: Options, setting: Setting) -> dict[str, Any]:
    """Import, build and read the first batch; the seconds of each part (``process_start_s`` is the time
    from process start to this call, ``None`` where unknown)."""
    start = _process_seconds()
    t0 = time.perf_counter()
    import torch  # noqa: F401

    from .. import lerobot, sampler  # noqa: F401

    imported = time.perf_counter() - t0
    t1 = time.perf_counter()
    _, _, loader = build(opts, setting)
    setup = time.perf_counter() - t1
    next(iter(loader))
    first = time.perf_counter() - t1
    total = None if start is None else start + time.perf_counter() - t0
    return {
        "process_start_s": start,
        "import_s": imported,
        "setup_s": setup,
        "first_batch_s": first,
        "process_to_first_batch_s": total,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m episode_sampler.cli.bench_measure")
    parser.add_argument("root")
    parser.add_argument("--order", choices=("frames", "blocks"), default="frames")
    parser.add_argument("--block-size", type=int, default=None)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--columns", default=None)
    parser.add_argument("--uint8", action="store_true")
    parser.add_argument("--video-backend", choices=("pyav", "torchcodec"), default="pyav")
    args = parser.parse_args(argv)
    opts = Options(
        root=args.root,
        batch_size=args.batch_size,
        columns=tuple(args.columns.split(",")) if args.columns else None,
        uint8=args.uint8,
        seed=args.seed,
        video_backend=args.video_backend,
    )
    result = first_batch_in_this_process(opts, Setting(args.order, args.block_size, args.workers))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
