"""Do DataLoader / ParallelMapper workers scale? Samples/s and samples per CPU-second, 0 vs N workers.

    PYTHONPATH=src:. python -m benchmarks.workers [--workers 0 2] [--reps 3] [--batches 20]

The dataset: ``write_lerobot_dataset`` with two AV1 cameras (96x96 and 240x320, ``g=2``), as in
``benchmarks/cases/video.py``. Pipelines, batch 32, ``order="frames"`` and ``order="blocks"`` (8):

- ``dataloader``: ``DataLoader(LeRobotFrames, sampler=EpisodeAwareSampler, batch_size=32, num_workers=N)``
  (``__getitems__`` + ``default_collate``);
- ``node-process``: ``EpisodeSamplerNode(batch_size=32) -> ParallelMapper(get_batch, N, "process")``
  (``Mapper`` for 0 workers);
- ``node-thread``: the same with ``method="thread"`` (what ``pipelines/train_loader.py`` does).

Steady state: the clock (wall and CPU) starts after ``--warmup`` batches; CPU time is the process's
plus its live children's (psutil, per pid, so workers of earlier loaders still exiting do not count),
read before the workers exit. The suite's version of this measurement is ``bench_workers`` in
``benchmarks/cases/video.py`` (targets ``workers_*``). Every run prints the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from typing import Any

CAMERAS = {"observation.images.small": (96, 96), "observation.images.large": (240, 320)}


def cpu_snapshot() -> dict[int, float]:
    """CPU seconds (user + system) of this process and each of its live descendants, by pid."""
    import psutil

    me = psutil.Process()
    out = {me.pid: sum(me.cpu_times()[:2])}
    for child in me.children(recursive=True):
        try:
            out[child.pid] = sum(child.cpu_times()[:2])
        except psutil.Error:
            pass
    return out


def cpu_since(before: dict[int, float]) -> float:
    """CPU seconds spent since ``before`` (a :func:`cpu_snapshot`) by this process and its live
    descendants; children started since count in full, children gone since are not counted (keep the
    workers alive until this is read: stop before the end of the epoch, which shuts them down)."""
    return sum(t - before.get(pid, 0.0) for pid, t in cpu_snapshot().items())


def shm_cost(ds: Any, batch: int, reps: int = 20) -> None:
    """What a process worker adds per batch: ``default_collate`` in a worker stacks the items into fresh
    shared memory (torch's ``_new_shared``), page-faulting every 4 KiB page; in the main process the
    same stack reuses freed heap memory."""
    import resource

    import torch

    items = ds.__getitems__(list(range(batch)))
    tensors = [[it[k] for it in items] for k in ds.video_keys]

    def cpu() -> tuple[float, float]:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime, r.ru_stime

    for mode in ("heap", "shared"):
        (u0, s0), t0 = cpu(), time.perf_counter()
        for _ in range(reps):
            for group in tensors:
                out = None
                if mode == "shared":
                    numel = sum(x.numel() for x in group)
                    storage = group[0]._typed_storage()._new_shared(numel, device="cpu")
                    out = group[0].new(storage).resize_(len(group), *group[0].shape)
                torch.stack(group, 0, out=out)
        (u1, s1), wall = cpu(), time.perf_counter() - t0
        print(
            f"collate into {mode} memory: {wall / reps * 1e3:.1f} ms/batch, "
            f"user {(u1 - u0) / reps * 1e3:.1f} ms, sys {(s1 - s0) / reps * 1e3:.1f} ms "
            f"(load {os.getloadavg()[0]:.2f})"
        )


def build(kind: str, ds: Any, order: str, workers: int, seed: int, batch: int) -> Any:
    from episode_sampler import EpisodeAwareSampler, EpisodeSamplerNode

    block = 8 if order == "blocks" else None
    opts = {"shuffle": True, "seed": seed, "order": order, "block_size": block}
    if kind == "dataloader":
        from torch.utils.data import DataLoader

        sampler = EpisodeAwareSampler.from_index(ds.episodes, **opts)
        return DataLoader(ds, sampler=sampler, batch_size=batch, num_workers=workers)
    from torchdata.nodes import Loader, Mapper, ParallelMapper

    node = EpisodeSamplerNode.from_index(ds.episodes, batch_size=batch, **opts)
    if workers == 0:
        graph: Any = Mapper(node, ds.get_batch)
    else:
        method = kind.split("-")[1]
        graph = ParallelMapper(node, ds.get_batch, num_workers=workers, method=method, in_order=True)
    return Loader(graph)


def run_once(loader: Any, warmup: int, batches: int) -> tuple[int, float, float]:
    it = iter(loader)
    for _ in range(warmup):
        next(it)
    c0, t0 = cpu_snapshot(), time.perf_counter()
    got = 0
    for b, item in enumerate(it, 1):
        got += len(item["index"])
        if b == batches:
            break
    wall, cpu = time.perf_counter() - t0, cpu_since(c0)
    del it
    return got, wall, cpu


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--kinds", nargs="+", default=["dataloader", "node-process", "node-thread"])
    p.add_argument("--orders", nargs="+", default=["frames", "blocks"])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--episodes", type=int, default=16)
    p.add_argument("--dataset", help="existing dataset directory (else one is written to a temp dir)")
    p.add_argument("--json", help="write the rows here")
    p.add_argument("--shm", action="store_true", help="also time the worker's collate into shared memory")
    args = p.parse_args(argv)

    from episode_sampler import LeRobotFrames, write_lerobot_dataset

    with tempfile.TemporaryDirectory(prefix="episode-sampler-workers-") as tmp:
        root = args.dataset
        if root is None:
            root = tmp
            write_lerobot_dataset(
                root, args.episodes, 40, 80, seed=0, episodes_per_file=args.episodes // 2, cameras=CAMERAS
            )
        ds = LeRobotFrames(root)
        import torch

        print(f"{len(ds)} frames, torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}")
        if args.shm:
            shm_cost(ds, args.batch)
        rows = []
        for kind in args.kinds:
            for order in args.orders:
                base: dict[str, float] = {}
                for workers in args.workers:
                    rates, per_cpu = [], []
                    load0 = os.getloadavg()[0]
                    for rep in range(args.reps):
                        ds.close()
                        loader = build(kind, ds, order, workers, rep, args.batch)
                        got, wall, cpu = run_once(loader, args.warmup, args.batches)
                        del loader
                        rates.append(got / wall)
                        per_cpu.append(got / cpu)
                    row = {
                        "kind": kind,
                        "order": order,
                        "workers": workers,
                        "samples_per_s": statistics.median(rates),
                        "samples_per_cpu_s": statistics.median(per_cpu),
                        "load1_before": load0,
                        "rates": rates,
                        "per_cpu": per_cpu,
                    }
                    if workers == 0:
                        base = row
                    ratio = ""
                    if base and workers:
                        ratio = (
                            f"  x{row['samples_per_s'] / base['samples_per_s']:.2f} speed, "
                            f"x{row['samples_per_cpu_s'] / base['samples_per_cpu_s']:.2f} per CPU-s"
                        )
                    print(
                        f"{kind:13s} {order:6s} w={workers}: {row['samples_per_s']:6.0f} samples/s "
                        f"{row['samples_per_cpu_s']:6.0f} samples/CPU-s (load {load0:.2f}){ratio}",
                        flush=True,
                    )
                    rows.append(row)
        ds.close()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "loadavg": os.getloadavg()}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
