"""``EpisodeAwareSampler``: a LeRobot-compatible, sharded, seekable ``torch.utils.data.Sampler``."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from torch.utils.data import Sampler

from ._validate import check_int
from .cursor import EpochPass, ShardedOrder, check_epoch
from .episodes import EpisodeIndex
from .order import EpochOrder


class EpisodeAwareSampler(Sampler[int]):
    """Episode-aware sampler over the valid frames of a dataset; a drop-in for LeRobot's.

    The order of an epoch is a pure function of (layout, seed, epoch): with ``shuffle=True`` and
    ``permutation="randperm"`` it is exactly LeRobot's order. Each ``iter()`` runs epoch ``epoch``
    from ``start_index`` (as set by :meth:`set_epoch` / :meth:`load_state_dict`) and advances the
    epoch at once, so consecutive passes differ without ``set_epoch``.

    Args:
        dataset_from_indices: first frame of each episode.
        dataset_to_indices: one past the last frame of each episode.
        episode_indices_to_use: episodes (row positions) to keep; ``None`` keeps all.
        drop_n_first_frames: frames dropped at the start of each episode.
        drop_n_last_frames: frames dropped at the end of each episode.
        shuffle: shuffle the units of each epoch.
        seed: shuffle seed, an int in ``[0, 2**64)``.
        absolute_to_relative_idx: mapping or sequence applied to every yielded frame index.
        permutation: ``"randperm"`` (exact, LeRobot-compatible, O(frames) per epoch) or
            ``"feistel"`` (O(1) memory and seek).
        order: ``"frames"``, ``"episodes"`` or ``"blocks"`` (then ``block_size`` is required).
        block_size: frames per block for ``order="blocks"``.
        rank: this process's shard in ``[0, world_size)``.
        world_size: number of shards; rank ``r`` yields global positions ``r, r + W, ...``.
        drop_last: ``False`` pads the epoch by wrapping to its start so every rank yields
            ``ceil(n / W)`` samples; ``True`` yields ``floor(n / W)``.

    Raises:
        ValueError: ``drop_n_first_frames must be >= 0``, ``drop_n_last_frames must be >= 0``,
            ``No valid frames remain ...``, invalid layout or arguments (naming the argument).
        TypeError: arguments of the wrong type (these also subclass ValueError).
    """

    def __init__(
        self,
        dataset_from_indices: Sequence[int] | np.ndarray,
        dataset_to_indices: Sequence[int] | np.ndarray,
        episode_indices_to_use: Sequence[int] | np.ndarray | None = None,
        drop_n_first_frames: int = 0,
        drop_n_last_frames: int = 0,
        shuffle: bool = False,
        seed: int = 0,
        absolute_to_relative_idx: Mapping[int, int] | Sequence[int] | np.ndarray | None = None,
        *,
        permutation: str = "randperm",
        order: str = "frames",
        block_size: int | None = None,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        drop_n_first_frames = check_int("drop_n_first_frames", drop_n_first_frames)
        drop_n_last_frames = check_int("drop_n_last_frames", drop_n_last_frames)
        if drop_n_first_frames < 0:
            raise ValueError(f"drop_n_first_frames must be >= 0, got {drop_n_first_frames}")
        if drop_n_last_frames < 0:
            raise ValueError(f"drop_n_last_frames must be >= 0, got {drop_n_last_frames}")
        layout = EpisodeIndex.from_bounds(dataset_from_indices, dataset_to_indices)
        self._init(
            layout.select(episode_indices_to_use, drop_n_first_frames, drop_n_last_frames),
            shuffle=shuffle,
            seed=seed,
            absolute_to_relative_idx=absolute_to_relative_idx,
            permutation=permutation,
            order=order,
            block_size=block_size,
            rank=rank,
            world_size=world_size,
            drop_last=drop_last,
        )

    def _init(self, index: EpisodeIndex, **kw: Any) -> None:
        if index.num_frames == 0:
            raise ValueError(
                "No valid frames remain after applying drop_n_first_frames and drop_n_last_frames. "
                "All episodes were either filtered out or had too few frames."
            )
        self.episode_index = index
        self.shuffle = kw["shuffle"]
        self.seed = kw["seed"]
        self._order = EpochOrder(
            index,
            order=kw["order"],
            block_size=kw["block_size"],
            permutation=kw["permutation"],
            seed=kw["seed"],
            shuffle=kw["shuffle"],
        )
        self._sharded = ShardedOrder(
            self._order,
            rank=kw["rank"],
            world_size=kw["world_size"],
            drop_last=kw["drop_last"],
            absolute_to_relative_idx=kw["absolute_to_relative_idx"],
        )
        self.seed = self._order.seed
        self._next = (0, 0, 0)  # (epoch, start_index, global_start) of the next pass
        self._active: EpochPass | None = None

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_index(
        cls,
        index: EpisodeIndex,
        *,
        shuffle: bool = False,
        seed: int = 0,
        absolute_to_relative_idx: Mapping[int, int] | Sequence[int] | np.ndarray | None = None,
        permutation: str = "randperm",
        order: str = "frames",
        block_size: int | None = None,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> EpisodeAwareSampler:
        """A sampler over every frame of ``index`` (use ``index.select(...)`` to subset/trim first).

        Raises:
            TypeError, ValueError: as the constructor.
        """
        if not isinstance(index, EpisodeIndex):
            raise TypeError(f"index must be an EpisodeIndex, got {type(index).__name__}")
        self = cls.__new__(cls)
        self._init(
            index,
            shuffle=shuffle,
            seed=seed,
            absolute_to_relative_idx=absolute_to_relative_idx,
            permutation=permutation,
            order=order,
            block_size=block_size,
            rank=rank,
            world_size=world_size,
            drop_last=drop_last,
        )
        return self

    @classmethod
    def from_lerobot(
        cls,
        root: str | os.PathLike[str],
        episode_indices_to_use: Sequence[int] | None = None,
        drop_n_first_frames: int = 0,
        drop_n_last_frames: int = 0,
        **kwargs: Any,
    ) -> EpisodeAwareSampler:
        """A sampler over a LeRobot v3 dataset on disk (keyword arguments as the constructor).

        Raises:
            FileNotFoundError: missing metadata; ValueError/TypeError: as the constructor.
        """
        index = EpisodeIndex.from_lerobot(root)
        return cls(
            index.starts,
            index.ends,
            episode_indices_to_use,
            drop_n_first_frames,
            drop_n_last_frames,
            **kwargs,
        )

    # ------------------------------------------------------------------ properties
    @property
    def num_frames(self) -> int:
        """Valid frames in one epoch (all ranks together)."""
        return self._order.num_frames

    @property
    def rank(self) -> int:
        return self._sharded.rank

    @property
    def world_size(self) -> int:
        return self._sharded.world_size

    @property
    def drop_last(self) -> bool:
        return self._sharded.drop_last

    @property
    def permutation(self) -> str:
        return self._order.permutation

    @property
    def order(self) -> str:
        return self._order.order

    @property
    def block_size(self) -> int | None:
        return self._order.block_size

    @property
    def fingerprint(self) -> str:
        """Fingerprint of the valid frame ranges (see :attr:`EpisodeIndex.fingerprint`)."""
        return self.episode_index.fingerprint

    @property
    def epoch(self) -> int:
        """The epoch the sampler is in: the running pass's, or the next pass's when none runs."""
        return self.state_dict()["epoch"]

    @property
    def indices(self) -> list[int]:
        """All valid frame indices in unshuffled order (relabelled); O(frames), built on each call."""
        n = self.num_frames
        out = EpochOrder(self.episode_index, shuffle=False).frames(0, np.arange(n, dtype=np.int64))
        relabel = self._sharded._relabel
        return (relabel(out) if relabel is not None else out).tolist()

    # ------------------------------------------------------------------ sampler protocol
    def __len__(self) -> int:
        """Samples this rank yields in a full epoch (``list(sampler)`` preallocates this many)."""
        return self._sharded.count(0)

    def __iter__(self) -> Iterator[int]:
        epoch, start, global_start = self._next
        self._next = (epoch + 1, 0, 0)
        run = EpochPass(self._sharded, epoch, start, global_start)
        self._active = run
        return iter(run)

    def set_epoch(self, epoch: int) -> None:
        """Make the next ``iter()`` run epoch ``epoch`` from its start.

        Raises:
            TypeError, ValueError: ``epoch`` is not a non-negative int.
        """
        self._next = (check_epoch(epoch), 0, 0)
        self._active = None

    def frame_indices(self, epoch: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        """This rank's samples ``[start, stop)`` of epoch ``epoch`` as one int64 array.

        Positions count from the start of the epoch with this world size (no resume offset).

        Raises:
            TypeError, ValueError: invalid epoch, start or stop.
        """
        epoch = check_epoch(epoch)
        total = len(self)
        start = check_int("start", start, minimum=0, maximum=total)
        stop = total if stop is None else check_int("stop", stop, minimum=start, maximum=total)
        return self._sharded.frames(epoch, 0, start, stop)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Where this rank is: a small JSON-serializable dict (see ``docs/state-format.md``).

        ``epoch``/``start_index`` have LeRobot's meaning: the next sample this rank yields is its
        ``start_index``-th of epoch ``epoch``; after an epoch's last sample it is ``(epoch + 1, 0)``.
        """
        run = self._active
        if run is not None:
            pos = run.position
            if pos < run.total:
                return self._sharded.state(run.epoch, pos, run.global_start)
            return self._sharded.state(run.epoch + 1, 0, 0)
        return self._sharded.state(*self._next)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume from a state of this sampler (any rank, any world size) or a bare LeRobot state.

        O(1) for ``permutation="feistel"``: nothing is replayed.

        Raises:
            TypeError: not a dict, or fields of the wrong type.
            ValueError: missing/unknown keys, unknown version, a state from another layout, seed,
                shuffle, permutation or order (the message names the field), a bad position.
        """
        self._next = self._sharded.restore(state)
        self._active = None

    def __repr__(self) -> str:
        return (
            f"EpisodeAwareSampler(num_frames={self.num_frames}, shuffle={self.shuffle}, seed={self.seed}, "
            f"permutation={self.permutation!r}, order={self.order!r}, rank={self.rank}, "
            f"world_size={self.world_size})"
        )


def compute_sampler_state(step: int, num_frames: int, batch_size: int, num_processes: int) -> dict[str, int]:
    """LeRobot's sampler state after ``step`` optimizer steps under accelerate's batch sharding.

    ``batches_per_epoch = ceil(ceil(num_frames / batch_size) / num_processes)``,
    ``epoch, into = divmod(step, batches_per_epoch)``,
    ``start_index = min(into * batch_size * num_processes, num_frames)``.

    Raises:
        TypeError, ValueError: non-int arguments, negative ``step``, non-positive others.
    """
    step = check_int("step", step, minimum=0)
    num_frames = check_int("num_frames", num_frames, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    num_processes = check_int("num_processes", num_processes, minimum=1)
    batches = (num_frames + batch_size - 1) // batch_size  # integer ceils: exact at any size
    batches_per_epoch = (batches + num_processes - 1) // num_processes
    epoch, into = divmod(step, batches_per_epoch)
    return {"epoch": epoch, "start_index": min(into * batch_size * num_processes, num_frames)}
