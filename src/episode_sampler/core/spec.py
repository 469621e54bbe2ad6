"""What a sampler or a node shuffles, and how it is sharded: the options both take, defined once.

``EpisodeAwareSampler`` and ``EpisodeSamplerNode`` are two cursors over the same core objects. Each
builds them the same way: the valid frames (:func:`select_frames`) and a :class:`SamplerSpec`, whose
:meth:`~SamplerSpec.build` gives the :class:`~episode_sampler.core.cursor.ShardedOrder` both iterate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .cursor import ShardedOrder
from .layout import EpisodeIndex
from .order import EpochOrder

__all__ = ["SamplerSpec", "select_frames"]


@dataclass(frozen=True)
class SamplerSpec:
    """The shuffle and sharding options of a sampler or node (keyword arguments of both).

    Attributes:
        shuffle: shuffle the units of each epoch.
        seed: shuffle seed, an int in ``[0, 2**64)``.
        permutation: ``"randperm"`` (LeRobot's exact order, O(units) per epoch) or ``"feistel"``
            (O(1) memory and seek).
        order: the shuffled units: ``"frames"``, ``"episodes"`` or ``"blocks"``.
        block_size: frames per block, required for (and only for) ``order="blocks"``.
        rank: this process's shard in ``[0, world_size)``.
        world_size: number of shards; rank ``r`` takes global positions ``r, r + W, ...``.
        drop_last: ``False`` pads an epoch by wrapping to its start so every rank yields
            ``ceil(n / W)`` samples; ``True`` yields ``floor(n / W)``.
        absolute_to_relative_idx: a mapping or sequence applied to every yielded frame index.

    Values are validated by :meth:`build` (TypeError/ValueError naming the argument).
    """

    shuffle: bool = False
    seed: int = 0
    permutation: str = "randperm"
    order: str = "frames"
    block_size: int | None = None
    rank: int = 0
    world_size: int = 1
    drop_last: bool = False
    absolute_to_relative_idx: Mapping[int, int] | Sequence[int] | np.ndarray | None = field(
        default=None, compare=False, repr=False
    )

    def build(self, index: EpisodeIndex) -> ShardedOrder:
        """The order over ``index``'s frames, as this spec's rank sees it.

        Raises:
            TypeError, ValueError: an invalid option, naming it.
        """
        order = EpochOrder(
            index,
            order=self.order,
            block_size=self.block_size,
            permutation=self.permutation,
            seed=self.seed,
            shuffle=self.shuffle,
        )
        return ShardedOrder(
            order,
            rank=self.rank,
            world_size=self.world_size,
            drop_last=self.drop_last,
            absolute_to_relative_idx=self.absolute_to_relative_idx,
        )


def select_frames(
    dataset_from_indices: Any,
    dataset_to_indices: Any,
    episode_indices_to_use: Any = None,
    drop_n_first_frames: int = 0,
    drop_n_last_frames: int = 0,
) -> EpisodeIndex:
    """The valid frames of LeRobot's sampler arguments: episodes chosen, both ends trimmed.

    Raises:
        TypeError, ValueError: an invalid layout or argument (named); ``No valid frames remain ...``
            when nothing is left.
    """
    layout = EpisodeIndex.from_bounds(dataset_from_indices, dataset_to_indices)
    return non_empty(layout.select(episode_indices_to_use, drop_n_first_frames, drop_n_last_frames))


def non_empty(index: EpisodeIndex) -> EpisodeIndex:
    """``index`` itself; ValueError (LeRobot's message) when it holds no frame."""
    if not isinstance(index, EpisodeIndex):
        raise TypeError(f"index must be an EpisodeIndex, got {type(index).__name__}")
    if index.num_frames == 0:
        raise ValueError(
            "No valid frames remain after applying drop_n_first_frames and drop_n_last_frames. "
            "All episodes were either filtered out or had too few frames."
        )
    return index
