"""Grain (``grain.python.IndexSampler``, ``index_shuffle``): a stateless, seekable global shuffle.

Grain's sampler state is the index of the next record; restoring is building an ``IndexSampler``
and asking for ``sampler[index]``, which runs ``index_shuffle`` (a 4-round cipher in C++) and
builds the record's ``np.random.Generator(Philox)``. It maps positions to record keys only: no
episode layout. Seeds are 32-bit; the epoch is folded into the index (``epoch * n + position``).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def available() -> str | None:
    try:
        import grain.python  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install
        return f"grain not importable ({type(exc).__name__}: {exc}); `pip install grain`"
    return None


def index_sampler(n: int, seed: int = 0) -> Any:
    import grain.python as gp

    return gp.IndexSampler(num_records=n, shuffle=True, seed=seed % 2**32, num_epochs=None)


def record_key(sampler: Any, n: int, epoch: int, position: int) -> int:
    """The record Grain yields at ``position`` of ``epoch`` (what a restore's first item is)."""
    return int(sampler[epoch * n + position].record_key)


def construct_and_first(n: int, seed: int, epoch: int, position: int) -> int:
    """Build the sampler from nothing and take the record at the restored position."""
    return record_key(index_sampler(n, seed), n, epoch, position)


def iterate(sampler: Any, n: int, epoch: int, count: int) -> int:
    """``count`` records of ``epoch`` one by one, as Grain's data loader asks for them."""
    last = 0
    base = epoch * n
    for i in range(base, base + count):
        last = sampler[i].record_key
    return int(last)


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The whole epoch's positions through ``index_shuffle`` (for the quality table; O(n) calls)."""
    from grain._src.python.experimental.index_shuffle.python.index_shuffle_module import index_shuffle

    s = (seed + epoch) % 2**32
    return np.fromiter((index_shuffle(i, max_index=n - 1, seed=s, rounds=4) for i in range(n)), np.int64, n)
