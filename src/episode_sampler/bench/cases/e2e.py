"""End to end: samples/s through the canonical pipeline over ``LeRobotFrames`` vs ``DataLoader``."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import Any

from ..config import BLOCK_SIZE, Config
from ..layouts import build_sampler
from ..timing import Log, med, time_round_robin

E2E_BLOCKS = f"same as the get_batch row, order='blocks' (block_size={BLOCK_SIZE})"


def bench_e2e(cfg: Config, log: Log) -> dict[str, Any]:
    """Samples/s over a synthetic LeRobot dataset: our Loader pipeline vs DataLoader + RandomSampler."""
    import torch
    from torch.utils.data import DataLoader, RandomSampler
    from torch.utils.data._utils.collate import default_collate
    from torchdata.nodes import Loader, Mapper, Prefetcher

    from ...lerobot import LeRobotFrames, write_lerobot_dataset
    from ...nodes import EpisodeSamplerNode

    rows = []
    with tempfile.TemporaryDirectory(prefix="episode-sampler-bench-") as tmp:
        lo, hi = cfg.e2e_lengths
        write_lerobot_dataset(tmp, cfg.e2e_episodes, lo, hi, seed=0)
        ds = LeRobotFrames(tmp)
        n = len(ds)
        log(f"e2e LeRobotFrames: {n} frames, {cfg.e2e_episodes} episodes, columns {list(ds.columns)}")
        ds.get_batch([0])  # open the files once (memory-mapped), for both sides
        sampler = build_sampler(ds.episodes, "feistel")
        blocks = build_sampler(ds.episodes, "feistel", "blocks", BLOCK_SIZE)

        def ours(batch: int, fn: Callable[[Any], Any], s: Any = sampler) -> Callable[[int], Any]:
            def run(r: int) -> int:
                node = EpisodeSamplerNode.from_sampler(s, batch_size=batch)
                node.set_epoch(r + 1)
                loader = Loader(Prefetcher(Mapper(node, fn), prefetch_factor=4))
                return sum(len(b["index"]) for b in loader)

            return run

        def dataloader(batch: int) -> Callable[[int], Any]:
            def run(r: int) -> int:
                g = torch.Generator().manual_seed(r)
                dl = DataLoader(ds, batch_size=batch, sampler=RandomSampler(ds, generator=g), num_workers=0)
                return sum(len(b["index"]) for b in dl)

            return run

        for batch in cfg.e2e_batch:
            log(f"e2e batch_size={batch}")
            fns = {
                "Loader(Prefetcher(Mapper(EpisodeSamplerNode, get_batch)))": ours(batch, ds.get_batch),
                "Loader(Prefetcher(Mapper(EpisodeSamplerNode, __getitems__ + default_collate)))": ours(
                    batch, lambda idx: default_collate(ds.__getitems__(idx))
                ),
                "DataLoader(batch_size, RandomSampler, num_workers=0)": dataloader(batch),
                E2E_BLOCKS: ours(batch, ds.get_batch, blocks),
            }
            times = time_round_robin(fns, cfg.reps)
            for name, ts in times.items():
                rows.append(
                    {
                        "batch_size": batch,
                        "frames": n,
                        "method": name,
                        "median_s": med(ts),
                        "samples_per_s": n / med(ts),
                        "times_s": ts,
                    }
                )
    return {"rows": rows}
