"""Epoch-start and restore latency (load state + first sample) against position and N."""

from __future__ import annotations

import gc
import time
from typing import Any

from ..config import Config
from ..layouts import build_sampler, make_layout
from ..timing import Log, med


def _restore_case(n: int, e: int, permutation: str, fracs: list[float], reps: int) -> list[dict[str, Any]]:
    from episode_sampler import EpisodeSamplerNode

    index = make_layout(n, min(e, n))
    s = build_sampler(index, permutation)
    node = EpisodeSamplerNode.from_sampler(s)
    next(iter(s))  # builds the layout's lookup once, as any run does
    template = s.state_dict()
    total = len(s)
    out = []
    gc.collect()
    gc.disable()  # latencies of a warm process: no collection pauses inside the timed calls
    try:
        for frac in fracs:
            out.append(_restore_frac(s, node, template, total, frac, reps))
    finally:
        gc.enable()
    for row in out:
        row.update({"N": n, "E": min(e, n), "permutation": permutation})
    return out


def _restore_frac(s, node, template, total: int, frac: float, reps: int) -> dict[str, Any]:
    """Median latency of ``load_state_dict`` + first sample at ``frac`` of the epoch (sampler and node)."""
    pos = min(total - 1, int(frac * total))
    lat_s, lat_n, lat_start = [], [], []
    for r in range(reps):
        # a new epoch for every timed call (sampler and node share the order's per-epoch cache)
        base = 3 * (r + 1) + int(frac * 1e6) * 3 * (reps + 1)
        state = dict(template, epoch=base, start_index=pos)
        t0 = time.perf_counter()
        s.load_state_dict(state)
        next(iter(s))
        lat_s.append(time.perf_counter() - t0)
        state = dict(template, epoch=base + 1, start_index=pos)
        t0 = time.perf_counter()
        node.reset(state)
        node.next()
        lat_n.append(time.perf_counter() - t0)
        if frac == 0.0:  # a fresh epoch's first sample, without a state
            t0 = time.perf_counter()
            s.set_epoch(base + 2)
            next(iter(s))
            lat_start.append(time.perf_counter() - t0)
    row = {
        "fraction": frac,
        "position": pos,
        "sampler_restore_s": med(lat_s),
        "node_restore_s": med(lat_n),
        "sampler_restore_all_s": lat_s,
    }
    if lat_start:
        row["epoch_start_s"] = med(lat_start)
    return row


def bench_restore(cfg: Config, log: Log) -> dict[str, Any]:
    """Latency of load state + first sample, against position and N (and a fresh epoch's first sample)."""
    rows = []
    for n in cfg.restore_n:
        log(f"restore N={n:.0e}")
        rows += _restore_case(n, cfg.restore_e, "feistel", cfg.restore_fracs, cfg.latency_reps)
        if n <= 10**6:  # randperm materializes the epoch: O(N), for contrast only
            rows += _restore_case(
                n, cfg.restore_e, "randperm", cfg.restore_fracs, max(3, cfg.latency_reps // 3)
            )
    return {"rows": rows}
