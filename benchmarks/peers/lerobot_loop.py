"""LeRobot's per-item sampler loop, written out (LeRobot needs Python >= 3.12: not installable here)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np

from ..layouts import layout_arrays
from ..timing import Estimate, consume


def lerobot_style_iter(cum_end: np.ndarray, offset: np.ndarray, perm: list[int]) -> Iterator[int]:
    """The LeRobot-style per-item loop: each shuffled position is mapped to its frame on its own.

    ``np.searchsorted`` over the cumulative episode lengths per position, then the episode's offset,
    as a sampler does it when it does not materialize the frame list.
    """
    for i in perm:
        ep = int(np.searchsorted(cum_end, i, side="right"))
        yield i + int(offset[ep])


def lerobot_estimate(index, n: int, prefix: int, seed: int) -> Estimate:
    """Whole-epoch time of the LeRobot-style loop: randperm + ``prefix`` items, extrapolated to ``n``."""
    import torch

    cum_end, offset = layout_arrays(index)
    t0 = time.perf_counter()
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    t_perm = time.perf_counter() - t0
    m = min(prefix, n)
    head = perm[:m].tolist()
    t0 = time.perf_counter()
    consume(lerobot_style_iter(cum_end, offset, head), m)
    t_items = time.perf_counter() - t0
    return Estimate(t_perm + t_items * n / m)
