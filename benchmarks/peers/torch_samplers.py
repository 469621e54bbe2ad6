"""torch / torchdata samplers as baselines: ``Loader(SamplerWrapper(RandomSampler))`` and friends."""

from __future__ import annotations

import time

from ..layouts import Sized
from ..timing import Estimate, consume


def loader_random_estimate(n: int, prefix: int, seed: int) -> Estimate | None:
    """``Loader(SamplerWrapper(RandomSampler))`` over a whole epoch; extrapolated past ``prefix`` items."""
    import torch
    from torch.utils.data import RandomSampler
    from torchdata.nodes import Loader, SamplerWrapper

    g = torch.Generator().manual_seed(seed)
    loader = Loader(SamplerWrapper(RandomSampler(Sized(n), generator=g)))
    t0 = time.perf_counter()
    it = iter(loader)
    next(it)  # includes the sampler's randperm(n)
    t_first = time.perf_counter() - t0
    m = min(prefix, n) - 1
    t0 = time.perf_counter()
    consume(it, m)
    t_rest = time.perf_counter() - t0
    if m + 1 >= n:
        return None  # measured end to end: report the wall time
    return Estimate(t_first + t_rest * (n - 1) / max(1, m))
