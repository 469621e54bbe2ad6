"""Restore latency side by side: ours against Grain, torchdata, Mosaic, litdata and LeRobot's loop.

Two cases, each at a position in the middle of the epoch and in a new epoch at every repetition
(so nothing the previous call computed can be reused):

* ``built``: a sampler that already exists loads a state and yields its first sample;
* ``construct``: the sampler is built from the episode bounds (ours: ``EpisodeAwareSampler(starts,
  ends)``, validation included; the peers from ``N``), then restored, then the first sample.

Peers that materialize the epoch (torchdata's ``StatefulDistributedSampler``, Mosaic, litdata,
LeRobot's ``randperm``) are only run up to ``Config.restore_peer_max_n``.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

from ..config import Config
from ..layouts import Sized, build_sampler, make_layout
from ..peers import grain_peer, litdata_peer, mosaic_peer
from ..timing import Log, med, time_round_robin


def _ours(n: int, e: int) -> dict[str, Callable[[int], Any]]:
    from episode_sampler import EpisodeAwareSampler

    index = make_layout(n, e)
    starts, ends = index.starts.copy(), index.ends.copy()
    s = build_sampler(index)
    next(iter(s))  # a built sampler has run before: its layout lookup exists
    template = s.state_dict()
    pos = n // 2

    def built(r: int) -> int:
        s.load_state_dict(dict(template, epoch=1000 + r, start_index=pos))
        return next(iter(s))

    def construct(r: int) -> int:
        t = EpisodeAwareSampler(starts, ends, shuffle=True, seed=0, permutation="feistel")
        t.load_state_dict(dict(template, epoch=2000 + r, start_index=pos))
        return next(iter(t))

    return {"ours built": built, "ours construct": construct}


def _peers(cfg: Config, n: int, notes: dict[str, str]) -> dict[str, Callable[[int], Any]]:
    fns: dict[str, Callable[[int], Any]] = {}
    pos = n // 2
    note = grain_peer.available()
    if note is None:
        g = grain_peer.index_sampler(n)
        grain_peer.record_key(g, n, 0, 0)
        fns["Grain built"] = lambda r: grain_peer.record_key(g, n, 1000 + r, pos)
        fns["Grain construct"] = lambda r: grain_peer.construct_and_first(n, 0, 2000 + r, pos)
    else:
        notes["Grain"] = note
    if n > cfg.restore_peer_max_n:
        return fns
    import torch
    from torchdata.stateful_dataloader.sampler import StatefulDistributedSampler

    def stateful(r: int) -> int:
        s = StatefulDistributedSampler(Sized(n), num_replicas=1, rank=0, shuffle=True, seed=0)
        s.set_epoch(1000 + r)
        s.load_state_dict({"yielded": pos})
        return next(iter(s))

    def lerobot(r: int) -> int:  # LeRobot's sampler: randperm of the epoch, then skip start_index
        g = torch.Generator().manual_seed(1000 + r)
        return int(torch.randperm(n, generator=g)[pos])

    fns["StatefulDistributedSampler construct"] = stateful
    fns["LeRobot-style randperm construct"] = lerobot
    for name, mod in (("Mosaic py1e", mosaic_peer), ("litdata FullShuffle", litdata_peer)):
        note = mod.available()
        if note is None:
            fns[f"{name} construct"] = lambda r, mod=mod: mod.restore_first(n, 0, 1000 + r, pos)
        else:
            notes[name] = note
    return fns


def bench_restore_peers(cfg: Config, log: Log) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    notes: dict[str, str] = {}
    for n, e in cfg.restore_peers:
        log(f"restore vs peers N={n:.0e} E={e:.0e}")
        fns = {**_ours(n, e), **_peers(cfg, n, notes)}
        gc.collect()
        gc.disable()
        try:
            times = time_round_robin(fns, cfg.latency_reps, collect=False)
        finally:
            gc.enable()
        for name, ts in times.items():
            rows.append({"N": n, "E": e, "method": name, "median_s": med(ts), "times_s": ts})
    return {"rows": rows, "skipped": notes}
