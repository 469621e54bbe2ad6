"""Full epoch: a whole epoch of frame indices as one array, per (N, E), against the baselines."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..config import ORDERS, Config
from ..layouts import Sized, build_sampler, make_layout
from ..peers import grain_peer, litdata_peer, mosaic_peer
from ..peers.lerobot_loop import lerobot_estimate
from ..peers.torch_samplers import loader_random_estimate
from ..timing import Estimate, Log, med, time_round_robin


def _fullepoch_case(cfg: Config, n: int, e: int, per_n: bool) -> list[dict[str, Any]]:
    """All methods for one (N, E); ``per_n`` adds the baselines that ignore the episode layout."""
    import torch
    from torch.utils.data import DistributedSampler

    index = make_layout(n, e)
    frames = index.frame_at(np.arange(n, dtype=np.int64))  # precomputed, as LeRobot's `indices`
    fns: dict[str, Callable[[int], Any]] = {}
    notes: dict[str, str] = {}
    orders = ORDERS if (n, e) in cfg.all_orders else ORDERS[:1]
    for perm in ("feistel", "randperm") if (n, e) not in cfg.no_randperm else ("feistel",):
        for order, k in orders:
            s = build_sampler(index, perm, order, k)
            fns[f"{perm}/{order}"] = lambda r, s=s: s.frame_indices(r + 1)
    fns["materialized"] = lambda r: frames[np.random.default_rng(r).permutation(n)]
    notes["materialized"] = "frames[np.random.default_rng(s).permutation(N)], frame array precomputed"
    layout_free = set()
    if per_n:
        fns["torch.randperm"] = lambda r: torch.randperm(n, generator=torch.Generator().manual_seed(r))
        notes["torch.randperm"] = "permutation of positions only (no frame mapping)"
        layout_free.add("torch.randperm")
        if n <= cfg.list_baselines_max_n:
            ds = DistributedSampler(Sized(n), num_replicas=1, rank=0, shuffle=True, seed=0)

            def dist_list(r: int) -> list[int]:
                ds.set_epoch(r)
                return list(ds)

            def loader_random(r: int) -> Any:
                est = loader_random_estimate(n, cfg.loader_prefix, r)
                return est if est is not None else 0

            name = "Loader(SamplerWrapper(RandomSampler))"
            fns["DistributedSampler list"] = dist_list
            notes["DistributedSampler list"] = "list(DistributedSampler(num_replicas=1, shuffle=True))"
            fns[name] = loader_random
            notes[name] = (
                f"extrapolated from the first {cfg.loader_prefix:,} items"
                if n > cfg.loader_prefix
                else "whole epoch"
            )
            layout_free |= {"DistributedSampler list", name}
        fns["LeRobot-style per-item"] = lambda r: lerobot_estimate(index, n, cfg.lerobot_prefix, r)
        notes["LeRobot-style per-item"] = (
            f"randperm + np.searchsorted per item, extrapolated from {min(cfg.lerobot_prefix, n):,} items"
        )
        layout_free.add("LeRobot-style per-item")
        if grain_peer.available() is None:
            g = grain_peer.index_sampler(n)
            m = min(cfg.lerobot_prefix, n)

            def grain(r: int) -> Estimate:
                t0 = time.perf_counter()
                grain_peer.iterate(g, n, r + 1, m)
                return Estimate((time.perf_counter() - t0) * n / m)

            fns["Grain IndexSampler"] = grain
            notes["Grain IndexSampler"] = f"sampler[i] per position, extrapolated from {m:,} items"
            layout_free.add("Grain IndexSampler")
        if n <= cfg.list_baselines_max_n:
            for name, mod in (("Mosaic py1e", mosaic_peer), ("litdata FullShuffle", litdata_peer)):
                if mod.available() is None:
                    fns[name] = lambda r, mod=mod: mod.epoch_order(n, 0, r + 1)
                    notes[name] = f"{mod.__name__.rsplit('.', 1)[-1]}.epoch_order: the epoch's positions"
                    layout_free.add(name)
    times = time_round_robin(fns, cfg.reps, cfg.collect)
    return [
        {
            "N": n,
            "E": None if name in layout_free else e,
            "method": name,
            "median_s": med(ts),
            "times_s": ts,
            "estimated": "extrapolated" in notes.get(name, ""),
            "note": notes.get(name, ""),
        }
        for name, ts in times.items()
    ]


def bench_fullepoch(cfg: Config, log: Log) -> dict[str, Any]:
    """A whole epoch of frame indices as one array, per (N, E)."""
    rows: list[dict[str, Any]] = []
    per_n_done: set[int] = set()
    for n, e in cfg.fullepoch:
        log(f"fullepoch N={n:.0e} E={e:.0e}")
        rows += _fullepoch_case(cfg, n, e, per_n=n not in per_n_done)
        per_n_done.add(n)
        gc.collect()
    return {"rows": rows, "list_baselines_max_n": cfg.list_baselines_max_n}
