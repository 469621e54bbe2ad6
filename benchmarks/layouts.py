"""Synthetic episode layouts and the samplers built over them."""

from __future__ import annotations

import numpy as np


def make_layout(n: int, e: int, seed: int = 0, gaps: bool = True):
    """``e`` episodes holding ``n`` valid frames in total, lengths uniform in about [0.5, 1.5] x mean.

    With ``gaps`` every episode is followed by one unused frame (as after ``drop_n_last_frames=1``),
    so position -> frame is a real episode lookup rather than the identity.
    """
    from episode_sampler import EpisodeIndex

    rng = np.random.default_rng(seed)
    base = n // e
    half = base // 2
    lengths = np.full(e, base, dtype=np.int64)
    if half:
        lengths += rng.integers(-half, half + 1, e)
    diff = n - int(lengths.sum())  # integer fix-up: exact at any n
    lengths += diff // e
    lengths[: diff % e] += 1
    stride = lengths + (1 if gaps else 0)
    ends = np.cumsum(stride) - (1 if gaps else 0)
    starts = ends - lengths
    index = EpisodeIndex(starts, ends)
    assert index.num_frames == n
    return index


def build_sampler(index, permutation: str = "feistel", order: str = "frames", block_size=None, seed: int = 0):
    from episode_sampler import EpisodeAwareSampler

    return EpisodeAwareSampler.from_index(
        index, shuffle=True, seed=seed, permutation=permutation, order=order, block_size=block_size
    )


class Sized:
    """A dataset stand-in with only a length, for samplers that need ``len(dataset)``."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n


def layout_arrays(index) -> tuple[np.ndarray, np.ndarray]:
    lengths = index.lengths
    cum_end = np.cumsum(lengths)
    return cum_end, index.ends - cum_end
