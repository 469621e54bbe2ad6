"""``EpisodeAwareSampler``: a LeRobot-compatible, sharded, seekable ``torch.utils.data.Sampler``."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from torch.utils.data import Sampler

from ._validate import ArgumentTypeError, check_int
from .cursor import EpochPass, ShardedOrder, check_epoch
from .episodes import EpisodeIndex
from .order import EpochOrder


class EpisodeAwareSampler(Sampler[int]):
    """Episode-aware sampler over the valid frames of a dataset; a drop-in for LeRobot's.

    The order of an epoch is a pure function of (layout, seed, epoch): with ``shuffle=True`` and
    ``permutation="randperm"`` it is exactly LeRobot's order. Each ``iter()`` runs epoch ``epoch``
    from ``start_index`` (as set by :meth:`set_epoch` / :meth:`load_state_dict`) and advances the
    epoch when that pass is first pulled from (generator semantics), so consecutive passes differ
    without ``set_epoch`` while an iterator created and dropped unused (as ``DataLoader`` iterators
    with workers do) skips nothing.

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
        drop_n_first_frames = check_int("drop_n_first_frames", drop_n_first_frames, maximum=2**62)
        drop_n_last_frames = check_int("drop_n_last_frames", drop_n_last_frames, maximum=2**62)
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

        It yields item numbers of :class:`LeRobotFrames` over the same ``root``: these are the frame
        indices when the dataset's ``index`` column runs from 0 without gaps (the usual case); when
        episodes leave gaps, frame indices are mapped to item numbers (``absolute_to_relative_idx``,
        unless you pass your own), so ``LeRobotFrames[i]`` always reads the sampled frame.

        Raises:
            FileNotFoundError: missing metadata; ValueError/TypeError: as the constructor.
        """
        index = EpisodeIndex.from_lerobot(root)
        starts, ends = index.starts, index.ends
        contiguous = starts.size == 0 or (starts[0] == 0 and np.array_equal(starts[1:], ends[:-1]))
        if not contiguous and kwargs.get("absolute_to_relative_idx") is None:
            relative = np.full(int(ends.max()), -1, dtype=np.int64)
            frames = index.frame_at(np.arange(index.num_frames, dtype=np.int64))
            relative[frames] = np.arange(index.num_frames, dtype=np.int64)
            kwargs["absolute_to_relative_idx"] = relative
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

    def __iter__(self) -> SamplerIterator:
        """One pass over the sampler's epoch from its ``start_index``; see :class:`SamplerIterator`.

        Like a generator, the pass binds its epoch at its first ``next()`` (even one that raises
        ``StopIteration``) and only then moves the sampler on to the next epoch: an iterator created
        and dropped unused (``DataLoader`` iterators with workers, or with ``batch_size=None``, call
        ``iter()`` twice) skips nothing. :meth:`state_dict` follows the latest pass.
        """
        self._active = None  # the next sample comes from the new pass: report ``self._next``
        handle = _PassHandle()
        it = SamplerIterator.from_iterable(self._chunks(handle))
        it._handle = handle
        return it

    def _chunks(self, handle: _PassHandle) -> Iterator[Iterator[int]]:
        handle.pulled = True
        if handle.exhausted:  # restored as an already exhausted pass: nothing; its epoch stays next
            return
        epoch, start, global_start = self._next
        run = EpochPass(self._sharded, epoch, start, global_start)
        handle.run = run
        self._active = run
        self._next = (epoch + 1, 0, 0)
        yield from run.chunks()

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


class _PassHandle:
    """What a :class:`SamplerIterator` knows of its pass (shared with the generator that feeds it)."""

    __slots__ = ("run", "pulled", "exhausted")

    def __init__(self) -> None:
        self.run: EpochPass | None = None
        self.pulled = False
        self.exhausted = False


class SamplerIterator(itertools.chain):  # type: ignore[type-arg]
    """The iterator of one :class:`EpisodeAwareSampler` pass: ``next()`` runs at C speed (no Python per item).

    It is *Stateful* (``state_dict``/``load_state_dict``) for torchdata's ``StatefulDataLoader``, whose
    batch sampler saves both the sampler's state and its iterator's. The sampler's state after the
    last sample of an epoch is ``(epoch + 1, 0)``; the iterator's state adds whether *this* pass is
    exhausted, so a loader restored from a state taken right after an epoch's last batch first ends
    that (empty) pass, as the uninterrupted loader would, instead of running the next epoch inside it.
    The position itself always comes from the sampler's state.
    """

    __slots__ = ("_handle",)
    _handle: _PassHandle

    def state_dict(self) -> dict[str, bool]:
        """``{"exhausted": bool}``: whether this pass has handed out its last sample."""
        handle = self._handle
        run = handle.run
        return {"exhausted": bool(handle.exhausted or (run is not None and run.position >= run.total))}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Mark this fresh (never pulled) pass exhausted when ``state["exhausted"]`` is true.

        Raises:
            TypeError: ``state`` is not a dict with a bool ``"exhausted"``.
            ValueError: the pass was already pulled from.
        """
        if not isinstance(state, Mapping) or not isinstance(state.get("exhausted"), (bool, np.bool_)):
            raise ArgumentTypeError(f"iterator state must be {{'exhausted': bool}}, got {state!r}")
        if self._handle.pulled:
            raise ValueError("load_state_dict on a sampler iterator that was already pulled from")
        self._handle.exhausted = bool(state["exhausted"])


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
