"""litdata's ``FullShuffle`` (``litdata.streaming.shuffle``), for one process and one worker.

litdata shuffles chunks, then items inside each chunk: the chunk order is its
``FullShuffle._global_assign`` (``RandomState([seed, epoch]).permutation``), the items of a chunk its
``FullShuffle.__call__`` (blocks of 256 items shuffled, then shuffled inside). We call both on chunks of
``CHUNK_SAMPLES`` samples. A resume replays the chunk assignment and reshuffles the current chunk.
"""

from __future__ import annotations

from typing import Any

import numpy as np

CHUNK_SAMPLES = 8192


def available() -> str | None:
    try:
        import litdata.streaming.shuffle  # noqa: F401
    except Exception as exc:
        return f"litdata not importable ({type(exc).__name__}: {exc})"
    return None


class _Cache:
    """Stands in for litdata's chunk cache: only the chunk intervals are asked for."""

    def __init__(self, n: int) -> None:
        from litdata.streaming.item_loader import Interval

        starts = range(0, n, CHUNK_SAMPLES)
        self.intervals = [
            Interval(s, s, min(n, s + CHUNK_SAMPLES), min(n, s + CHUNK_SAMPLES)) for s in starts
        ]

    def get_chunk_intervals(self) -> list[Any]:
        return self.intervals


def _plan(n: int, seed: int, epoch: int) -> tuple[Any, list[int], list[Any]]:
    from litdata.streaming.shuffle import FullShuffle
    from litdata.utilities.env import _DistributedEnv

    cache = _Cache(n)
    shuffler = FullShuffle(cache, seed, drop_last=False)
    chunks, intervals = shuffler._global_assign(
        _DistributedEnv(1, 0, 1), cache.intervals, num_workers=1, batch_size=1, seed_shift=epoch
    )
    return shuffler, [int(c) for c in chunks[0]], list(intervals[0])


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    shuffler, chunks, intervals = _plan(n, seed, epoch)
    parts = [
        shuffler(np.arange(iv[1], iv[2]), len(chunks), epoch, chunk) for chunk, iv in zip(chunks, intervals)
    ]
    return np.concatenate([np.asarray(p, dtype=np.int64) for p in parts])


def restore_first(n: int, seed: int, epoch: int, position: int) -> int:
    shuffler, chunks, intervals = _plan(n, seed, epoch)
    at = 0
    for chunk, iv in zip(chunks, intervals):
        size = iv[2] - iv[1]
        if position < at + size:
            return int(shuffler(np.arange(iv[1], iv[2]), len(chunks), epoch, chunk)[position - at])
        at += size
    raise IndexError(position)
