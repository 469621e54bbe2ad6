"""Python iteration throughput: ``for i in sampler`` and ``Loader(node)`` against torch's samplers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..config import Config
from ..layouts import Sized, build_sampler, layout_arrays, make_layout
from ..peers import grain_peer
from ..peers.lerobot_loop import lerobot_style_iter
from ..timing import Estimate, Log, consume, med, time_round_robin


def _iteration_rows(n: int, times: dict[str, list[float]], notes: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "N": n,
            "method": name,
            "median_s": med(ts),
            "items_per_s": n / med(ts),
            "times_s": ts,
            "estimated": name in notes,
            "note": notes.get(name, ""),
        }
        for name, ts in times.items()
    ]


def _iteration_case(cfg: Config, n: int) -> list[dict[str, Any]]:
    import torch
    from torch.utils.data import DistributedSampler, RandomSampler

    index = make_layout(n, min(10**4, max(1, n // 10)))
    s_feistel = build_sampler(index, "feistel")
    s_randperm = build_sampler(index, "randperm")
    cum_end, offset = layout_arrays(index)
    prefix = min(cfg.lerobot_prefix, n)

    def lerobot(r: int) -> Estimate:
        t0 = time.perf_counter()
        perm_t = torch.randperm(n, generator=torch.Generator().manual_seed(r))
        t_perm = time.perf_counter() - t0
        head = perm_t[:prefix].tolist()
        t0 = time.perf_counter()
        consume(lerobot_style_iter(cum_end, offset, head), prefix)
        return Estimate(t_perm + (time.perf_counter() - t0) * n / prefix)

    fns: dict[str, Callable[[int], Any]] = {
        "for i in sampler (feistel)": lambda r: consume(iter(s_feistel)),
        "for i in sampler (randperm)": lambda r: consume(iter(s_randperm)),
        "for i in RandomSampler": lambda r: consume(
            iter(RandomSampler(Sized(n), generator=torch.Generator().manual_seed(r)))
        ),
        "for i in DistributedSampler": lambda r: consume(
            iter(DistributedSampler(Sized(n), num_replicas=1, rank=0, shuffle=True, seed=r))
        ),
        "LeRobot-style per-item": lerobot,
    }
    notes = {"LeRobot-style per-item": f"randperm + per-item loop extrapolated from {prefix:,} items"}
    from torchdata.stateful_dataloader.sampler import StatefulDistributedSampler

    fns["for i in StatefulDistributedSampler"] = lambda r: consume(
        iter(StatefulDistributedSampler(Sized(n), num_replicas=1, rank=0, shuffle=True, seed=r))
    )
    if grain_peer.available() is None:
        g = grain_peer.index_sampler(n)

        def grain(r: int) -> Estimate:
            t0 = time.perf_counter()
            grain_peer.iterate(g, n, r + 1, prefix)
            return Estimate((time.perf_counter() - t0) * n / prefix)

        fns["Grain IndexSampler[i]"] = grain
        notes["Grain IndexSampler[i]"] = f"sampler[i].record_key per item, extrapolated from {prefix:,} items"
    return _iteration_rows(n, time_round_robin(fns, cfg.reps, cfg.collect), notes)


def _loader_case(cfg: Config, n: int) -> list[dict[str, Any]]:
    import torch
    from torch.utils.data import RandomSampler
    from torchdata.nodes import Loader, SamplerWrapper

    from episode_sampler import EpisodeSamplerNode

    s = build_sampler(make_layout(n, min(10**4, max(1, n // 10))), "feistel")

    def ours(r: int) -> int:
        return consume(iter(Loader(EpisodeSamplerNode.from_sampler(s))))

    def theirs(r: int) -> int:
        g = torch.Generator().manual_seed(r)
        return consume(iter(Loader(SamplerWrapper(RandomSampler(Sized(n), generator=g)))))

    fns = {"Loader(EpisodeSamplerNode) (feistel)": ours, "Loader(SamplerWrapper(RandomSampler))": theirs}
    return _iteration_rows(n, time_round_robin(fns, cfg.reps, cfg.collect), {})


def bench_iteration(cfg: Config, log: Log) -> dict[str, Any]:
    """Python iteration throughput over whole epochs (index generation included)."""
    rows = []
    for n in cfg.iter_n:
        log(f"iteration N={n:.0e}")
        rows += _iteration_case(cfg, n)
    log(f"iteration Loader N={cfg.loader_n:.0e}")
    rows += _loader_case(cfg, cfg.loader_n)
    return {"rows": rows}
