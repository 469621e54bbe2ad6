"""Shuffle quality: how far each method's epoch order is from a uniform random permutation.

For an order ``v`` of ``[0, n)`` (position ``i`` yields ``v[i]``):

* **position correlation**: Pearson correlation of ``i`` and ``v[i]`` (both ranks: Spearman's rho);
  about ``±1/sqrt(n)`` for a uniform permutation.
* **gap KS distance**: Kolmogorov-Smirnov distance between the distribution of the jumps
  ``|v[i+1] - v[i]|`` and the jump distribution of a uniform permutation (``P(gap <= x) = 1 - (1 - x/n)^2``
  in the continuum limit); a local shuffle (shards, windows) has too many small jumps.
* **first 1 % chi²**: where the first 1 % of the epoch lands, in 20 equal bins of ``[0, n)``: the chi²
  statistic against a uniform spread (19 degrees of freedom; about 19 ± 6 when uniform) and its
  p-value (Wilson-Hilferty approximation).

``numpy.random.permutation`` is the reference row: what a true uniform shuffle scores at this ``n``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..config import Config
from ..peers import grain_peer, litdata_peer, mosaic_peer
from ..timing import Log

BINS = 20


def position_correlation(v: np.ndarray) -> float:
    i = np.arange(v.size, dtype=np.float64)
    return float(np.corrcoef(i, v.astype(np.float64))[0, 1])


def gap_ks(v: np.ndarray) -> float:
    n = v.size
    gaps = np.sort(np.abs(np.diff(v)).astype(np.float64))
    m = gaps.size
    ref = 1.0 - (1.0 - gaps / n) ** 2  # continuous uniform-difference CDF at each observed gap
    above = np.arange(1, m + 1) / m - ref
    below = ref - np.arange(0, m) / m
    return float(max(above.max(), below.max()))


def first_percent_chi2(v: np.ndarray) -> tuple[float, float]:
    n = v.size
    head = v[: max(BINS * 5, n // 100)]
    counts = np.bincount(head * BINS // n, minlength=BINS)
    expected = head.size / BINS
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    k = BINS - 1
    z = ((chi2 / k) ** (1 / 3) - (1 - 2 / (9 * k))) / math.sqrt(2 / (9 * k))
    return chi2, 0.5 * math.erfc(z / math.sqrt(2))


def _orders(n: int, notes: dict[str, str]) -> dict[str, Callable[[], np.ndarray]]:
    import torch

    from episode_sampler import EpisodeAwareSampler, EpisodeIndex

    def ours(permutation: str) -> np.ndarray:
        # one episode without gaps: position -> frame is the identity, so this is the permutation itself
        index = EpisodeIndex(np.array([0]), np.array([n]))
        sampler = EpisodeAwareSampler.from_index(index, shuffle=True, seed=0, permutation=permutation)
        return sampler.frame_indices(1)

    fns: dict[str, Callable[[], np.ndarray]] = {
        "numpy.random.permutation (reference)": lambda: np.random.default_rng(1).permutation(n),
        "ours feistel": lambda: ours("feistel"),
        "ours randperm (LeRobot's torch.randperm)": lambda: ours("randperm"),
        "torch.randperm (RandomSampler, DistributedSampler)": lambda: torch.randperm(
            n, generator=torch.Generator().manual_seed(1)
        ).numpy(),
    }
    for name, mod, label in (
        ("Grain", grain_peer, "Grain index_shuffle"),
        ("Mosaic py1e", mosaic_peer, "Mosaic py1e (shards of 8,192)"),
        ("litdata FullShuffle", litdata_peer, "litdata FullShuffle (chunks of 8,192)"),
    ):
        note = mod.available()
        if note is None:
            fns[label] = lambda mod=mod: mod.epoch_order(n, 0, 1)
        else:
            notes[name] = note
    return fns


def bench_quality(cfg: Config, log: Log) -> dict[str, Any]:
    n = cfg.quality_n
    log(f"shuffle quality n={n:,}")
    notes: dict[str, str] = {}
    rows = []
    for name, fn in _orders(n, notes).items():
        v = np.asarray(fn(), dtype=np.int64)
        if not np.array_equal(np.sort(v), np.arange(n)):
            raise AssertionError(f"{name} is not a permutation of [0, {n})")
        chi2, p = first_percent_chi2(v)
        rows.append(
            {
                "method": name,
                "n": n,
                "position_correlation": position_correlation(v),
                "gap_ks": gap_ks(v),
                "first_percent_chi2": chi2,
                "first_percent_p": p,
            }
        )
    return {"rows": rows, "n": n, "skipped": notes}
