"""``EpisodeSamplerNode``: the episode-aware sampler as a resumable ``torchdata.nodes.BaseNode``.

The node is a thin cursor over the same :class:`~episode_sampler.core.cursor.ShardedOrder` /
:class:`~episode_sampler.core.cursor.EpochPass` core as :class:`~episode_sampler.sampler.EpisodeAwareSampler`:
it yields exactly the sampler's stream and its ``get_state()`` is the sampler's ``state_dict()`` format.
See ``docs/torchdata.md`` for composing it into a ``torchdata.nodes`` graph.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from torchdata.nodes import BaseNode

from .core.cursor import FIRST_CHUNK, MAX_CHUNK, EpochPass, OrderView, ShardedOrder, check_epoch
from .core.layout import EpisodeIndex
from .core.seeding import sample_seed
from .core.spec import SamplerSpec, non_empty, select_frames
from .core.state import Resume
from .core.validation import check_bool, check_int
from .distributed import get_rank_and_world_size
from .lerobot.episode_table import lerobot_layout
from .lerobot.frames import LeRobotFrames
from .sampler import EpisodeAwareSampler

__all__ = ["EpisodeSamplerNode"]


def _with_rank(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with ``rank``/``world_size`` filled in (``None`` or absent) from the initialized
    default ``torch.distributed`` group, else 0 / 1."""
    options = dict(options)
    if options.get("rank") is None or options.get("world_size") is None:
        dist_rank, dist_world = get_rank_and_world_size()
        if options.get("rank") is None:
            options["rank"] = dist_rank
        if options.get("world_size") is None:
            options["world_size"] = dist_world
    return options


class EpisodeSamplerNode(OrderView, BaseNode[Any]):
    """Frame indices of an :class:`EpisodeAwareSampler`, as a resumable torchdata source node.

    Yields the same ints, in the same epochs, as the equivalent sampler. The first ``reset(None)``
    starts epoch 0 (or the epoch given to :meth:`set_epoch`, or where ``from_sampler``'s sampler
    stood); every further ``reset(None)`` starts the next epoch, but only if the current one was
    pulled from (a ``next()`` happened, even one that raised ``StopIteration``), so repeated resets
    never skip an epoch. ``reset(state)`` seeks in O(1) for ``permutation="feistel"``.

    ``get_state()`` is O(1), thread-safe against a concurrent ``next()``, and returns a fresh dict in
    the sampler's state format (the position is always counted in samples, also in batch mode).

    Args:
        dataset_from_indices: first frame of each episode (as for :class:`EpisodeAwareSampler`).
        dataset_to_indices: one past the last frame of each episode.
        episode_indices_to_use: episodes (row positions) to keep; ``None`` keeps all.
        drop_n_first_frames: frames dropped at the start of each episode.
        drop_n_last_frames: frames dropped at the end of each episode.
        batch_size: yield lists of up to ``batch_size`` indices (never mixing epochs) instead of ints.
        drop_last_batch: drop an epoch's last batch when it is shorter than ``batch_size``.
        emit_seed: yield ``(index, seed)`` pairs (``([indices], [seeds])`` in batch mode), with
            ``seed = episode_sampler.sample_seed(sampler_seed, epoch, index)``.
        **options: the keyword arguments of :class:`~episode_sampler.core.spec.SamplerSpec`, as for
            :class:`EpisodeAwareSampler` (``shuffle``, ``seed``, ``permutation``, ``order``,
            ``block_size``, ``rank``, ``world_size``, ``drop_last``, ``absolute_to_relative_idx``);
            ``rank`` and ``world_size`` default to the initialized ``torch.distributed`` group, else
            0 and 1.

    Raises:
        TypeError, ValueError: invalid arguments (naming the argument), as the sampler's.
    """

    def __init__(
        self,
        dataset_from_indices: Sequence[int] | np.ndarray,
        dataset_to_indices: Sequence[int] | np.ndarray,
        episode_indices_to_use: Sequence[int] | np.ndarray | None = None,
        drop_n_first_frames: int = 0,
        drop_n_last_frames: int = 0,
        *,
        batch_size: int | None = None,
        drop_last_batch: bool = False,
        emit_seed: bool = False,
        **options: Any,
    ) -> None:
        super().__init__()
        index = select_frames(
            dataset_from_indices,
            dataset_to_indices,
            episode_indices_to_use,
            drop_n_first_frames,
            drop_n_last_frames,
        )
        sharded = SamplerSpec(**_with_rank(options)).build(index)
        self._setup(sharded, Resume(0, 0, 0), batch_size, drop_last_batch, emit_seed)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_index(
        cls,
        index: EpisodeIndex,
        *,
        batch_size: int | None = None,
        drop_last_batch: bool = False,
        emit_seed: bool = False,
        **options: Any,
    ) -> EpisodeSamplerNode:
        """A node over every frame of ``index``; keyword arguments as the constructor.

        Raises:
            TypeError, ValueError: as the constructor.
        """
        sharded = SamplerSpec(**_with_rank(options)).build(non_empty(index))
        return cls._create(sharded, Resume(0, 0, 0), batch_size, drop_last_batch, emit_seed)

    @classmethod
    def from_sampler(
        cls,
        sampler: EpisodeAwareSampler,
        *,
        batch_size: int | None = None,
        drop_last_batch: bool = False,
        emit_seed: bool = False,
    ) -> EpisodeSamplerNode:
        """A node over ``sampler``'s order, rank and world size, starting where ``sampler`` stands.

        The node shares the sampler's (immutable) order but keeps its own position: iterating one
        does not move the other.

        Raises:
            TypeError: ``sampler`` is not an :class:`EpisodeAwareSampler`; TypeError/ValueError for
                ``batch_size``, ``drop_last_batch`` or ``emit_seed``.
        """
        if not isinstance(sampler, EpisodeAwareSampler):
            raise TypeError(f"sampler must be an EpisodeAwareSampler, got {type(sampler).__name__}")
        sharded = sampler.sharded_order
        resume = sharded.restore_state(sampler.state_dict())
        return cls._create(sharded, resume, batch_size, drop_last_batch, emit_seed)

    @classmethod
    def from_lerobot(
        cls,
        root: str | os.PathLike[str] | LeRobotFrames,
        episode_indices_to_use: Sequence[int] | None = None,
        drop_n_first_frames: int = 0,
        drop_n_last_frames: int = 0,
        **kwargs: Any,
    ) -> EpisodeSamplerNode:
        """A node over a LeRobot v3 dataset on disk, yielding :class:`~episode_sampler.LeRobotFrames`
        item numbers (see :meth:`EpisodeAwareSampler.from_lerobot`); keyword arguments as the constructor.
        ``root`` may be the :class:`~episode_sampler.LeRobotFrames` itself: its episodes are reused.

        Raises:
            FileNotFoundError: missing metadata; TypeError/ValueError: as the constructor.
        """
        index, kwargs = lerobot_layout(root.episodes if isinstance(root, LeRobotFrames) else root, kwargs)
        return cls(
            index.starts,
            index.ends,
            episode_indices_to_use,
            drop_n_first_frames,
            drop_n_last_frames,
            **kwargs,
        )

    @classmethod
    def _create(
        cls, sharded: ShardedOrder, resume: Resume, batch_size: Any, drop_last_batch: Any, emit_seed: Any
    ) -> EpisodeSamplerNode:
        self = cls.__new__(cls)
        BaseNode.__init__(self)
        self._setup(sharded, resume, batch_size, drop_last_batch, emit_seed)
        return self

    def _setup(
        self, sharded: ShardedOrder, resume: Resume, batch_size: Any, drop_last_batch: Any, emit_seed: Any
    ) -> None:
        if batch_size is not None:
            batch_size = check_int("batch_size", batch_size, minimum=1)
        self._batch_size: int | None = batch_size
        self._drop_last_batch = check_bool("drop_last_batch", drop_last_batch)
        if self._drop_last_batch and batch_size is None:
            raise ValueError("drop_last_batch=True requires batch_size")
        self._emit_seed = check_bool("emit_seed", emit_seed)
        self._sharded = sharded
        self._seed: int = sharded.order.seed
        self._lock = threading.Lock()
        self._was_reset = False  # no reset() yet: the first next() resets (as torchdata's next(node))
        self._start_pass(resume)

    # ------------------------------------------------------------------ properties
    @property
    def seed(self) -> int:
        return self._seed

    @property
    def batch_size(self) -> int | None:
        return self._batch_size

    @property
    def drop_last_batch(self) -> bool:
        return self._drop_last_batch

    @property
    def emit_seed(self) -> bool:
        return self._emit_seed

    @property
    def epoch(self) -> int:
        """The epoch of the next item (as reported by :meth:`get_state`)."""
        return self.get_state()["epoch"]

    @property
    def samples_per_epoch(self) -> int:
        """Samples this rank yields in a full epoch (before batching)."""
        return self._sharded.count(0)

    # ------------------------------------------------------------------ BaseNode protocol
    def _start_pass(self, resume: Resume) -> None:
        """Make a fresh pass at ``resume``; the caller holds the lock (or owns the node alone).

        An exhausted ``resume`` makes the finished pass of the epoch before: it yields nothing and a
        ``reset(None)`` goes on to ``resume``'s position, exactly as the node that saved the state.
        """
        if resume.exhausted:
            run = EpochPass(self._sharded, resume.epoch - 1, 0, 0)
            run.finish()  # at its end: nothing to map
            start = run.total
        else:
            epoch, start = resume.epoch, resume.start_index
            run = EpochPass(self._sharded, epoch, start, resume.global_start)
        if self._batch_size is not None:
            it: Iterator[Any] = self._batches(run, self._batch_size, self._drop_last_batch, self._emit_seed)
        elif self._emit_seed:
            it = self._seeded(run)
        else:  # flattened at C speed; the position stays exact (see EpochPass.chunks)
            it = itertools.chain.from_iterable(run.chunks())
        self._it = it
        self._pass = run
        self._pass_start = start
        self._restored_pulled = resume.pulled

    def _finished(self, run: EpochPass, position: int) -> bool:
        """Whether ``run`` has nothing left to yield from ``position`` (a short last batch is dropped)."""
        remaining = run.total - position
        return remaining <= 0 or (self._drop_last_batch and remaining < self._batch_size)  # type: ignore[operator]

    def _pulled(self, position: int) -> bool:
        """Whether the pass was pulled from since its reset (then ``reset(None)`` starts the next epoch).

        A ``next()`` that raised ``StopIteration`` counts: it moves the position to the pass's end
        (``EpochPass.next_batch``), except for a pass restored as exhausted, which is pulled anyway.
        """
        return self._restored_pulled or position != self._pass_start

    def reset(self, initial_state: dict[str, Any] | None = None) -> None:
        """Restart: from ``initial_state`` if given, else the next epoch if the current one was pulled from.

        Raises:
            TypeError, ValueError: ``initial_state`` is not a valid state of this node's order (the
                message names the field); the node is then left unchanged.
        """
        with self._lock:
            resume: Resume
            if initial_state is not None:
                resume = self._sharded.restore_state(initial_state)
            elif self._pulled(self._pass.position):
                resume = Resume(self._pass.epoch + 1, 0, 0)
            else:  # nothing consumed yet: start the same pass again
                resume = Resume(self._pass.epoch, self._pass_start, self._pass.global_start)
            super().reset(initial_state)
            self._was_reset = True
            self._start_pass(resume)

    def next(self) -> Any:
        """The next index (a list with ``batch_size``, a pair with ``emit_seed``).

        Raises:
            StopIteration: the epoch is exhausted (until the next ``reset``).
        """
        if not self._was_reset:  # pulled before any reset: initialize first, as next(node) does
            self.reset(None)
            if not self._was_reset:
                raise NotImplementedError(
                    f"{type(self).__name__}.reset() did not call EpisodeSamplerNode.reset(): the node "
                    "cannot initialize"
                )
        return next(self._it)

    def get_state(self) -> dict[str, Any]:
        """A fresh state dict (version 2, see docs/state-format.md): O(1), safe while another thread iterates.

        After the epoch's last item (before or after its ``StopIteration``) it reads
        ``epoch + 1, start_index 0, exhausted True``: a node restored from it raises ``StopIteration``
        first, and its next ``reset(None)`` starts ``epoch + 1``.
        """
        with self._lock:
            run = self._pass
            pos = run.position
            pulled = self._pulled(pos)
            if pulled and self._finished(run, pos):
                return self._sharded.state(run.epoch + 1, 0, 0, exhausted=True, pulled=True)
            # (a pass not pulled from yet that has nothing to yield -- a short last batch with
            # drop_last_batch -- is not over until its next() raises: reset(None) keeps it)
            return self._sharded.state(run.epoch, pos, run.global_start, pulled=pulled)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume at ``state``'s position as a fresh pass: the sampler-only restore.

        Unlike ``reset(state)`` (which restores the saved node exactly, including whether its pass was
        pulled from), the restored pass counts as not pulled yet, so the first ``reset(None)`` -- a new
        ``Loader``'s first ``iter()`` over a rebuilt graph -- keeps the position instead of moving on
        to the next epoch. Use it to carry only the sampler position into another graph or world
        size. An exhausted state (taken after an epoch's last item) stays exhausted: ``next()``
        raises ``StopIteration`` and ``reset(None)`` starts the following epoch, as LeRobot does
        for ``{"epoch": e, "start_index": len(sampler)}``.

        Raises:
            TypeError, ValueError: as :meth:`reset`.
        """
        with self._lock:
            resume = self._sharded.restore_state(state)
            if not resume.exhausted:
                resume = resume._replace(pulled=False)
            super().reset(state)
            self._was_reset = True
            self._start_pass(resume)

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` from its beginning now; a following ``reset(None)`` keeps it.

        Raises:
            TypeError, ValueError: ``epoch`` is not a non-negative int.
        """
        epoch = check_epoch(epoch)
        with self._lock:
            self._start_pass(Resume(epoch, 0, 0))

    # ------------------------------------------------------------------ iteration helpers
    def _batches(self, run: EpochPass, batch_size: int, drop_last: bool, emit_seed: bool) -> Iterator[Any]:
        """Batches of one pass (``(batch, seeds)`` pairs with ``emit_seed``); never cross the epoch.

        Seeds are computed vectorized for growing blocks of positions and sliced per batch (one numpy
        call per batch would cost more than the batch's items).
        """
        seed, epoch, global_start, total = self._seed, run.epoch, run.global_start, run.total
        frames = self._sharded.frames
        seeds: list[int] = []
        block_start = block_stop = 0
        size = FIRST_CHUNK
        while True:
            start = run.position
            try:
                batch = run.next_batch(batch_size, drop_last)
            except StopIteration:
                return
            if not emit_seed:
                yield batch
                continue
            stop = start + len(batch)
            if not block_start <= start < stop <= block_stop:
                block_start, block_stop = start, min(start + max(size, stop - start), total)
                seeds = sample_seed(
                    seed, epoch, frames(epoch, global_start, block_start, block_stop)
                ).tolist()
                size = min(size * 4, MAX_CHUNK)
            yield batch, seeds[start - block_start : stop - block_start]

    def _seeded(self, run: EpochPass) -> Iterator[tuple[int, int]]:
        """``(index, seed)`` pairs: each chunk of the pass zipped with its seeds, flattened at C speed.

        A chunk's seeds are computed vectorized from the chunk's own frame array
        (``EpochPass.chunks_with_frames``). ``zip`` pulls from the chunk's iterator, so the position
        stays exact per item.
        """
        return itertools.chain.from_iterable(self._seeded_chunks(run))

    def _seeded_chunks(self, run: EpochPass) -> Iterator[Iterator[tuple[int, int]]]:
        seed, epoch = self._seed, run.epoch
        for chunk, frames in run.chunks_with_frames():  # seeds from the chunk's own frames, not recomputed
            yield zip(chunk, sample_seed(seed, epoch, frames).tolist())

    # ------------------------------------------------------------------ copy / pickle
    def __getstate__(self) -> dict[str, Any]:
        """Picklable copy: the position (and whether the current pass was pulled from), not the threads."""
        with self._lock:
            run = self._pass
            state = {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_it", "_pass")}
            state["_position"] = (run.epoch, run.position, run.global_start)
            return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        epoch, position, global_start = state.pop("_position")
        pass_start = state.pop("_pass_start")
        pulled = state.pop("_restored_pulled", False)
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._start_pass(Resume(epoch, position, global_start, pulled=pulled))
        self._pass_start = pass_start  # keeps "pulled from" as it was

    def __repr__(self) -> str:
        o = self._sharded.order
        return (
            f"EpisodeSamplerNode(num_frames={self.num_frames}, shuffle={o.shuffle}, seed={self._seed}, "
            f"permutation={o.permutation!r}, order={o.order!r}, rank={self.rank}, "
            f"world_size={self.world_size}, batch_size={self._batch_size})"
        )
