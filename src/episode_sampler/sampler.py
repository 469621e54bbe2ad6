"""``EpisodeAwareSampler``: a LeRobot-compatible, sharded, seekable ``torch.utils.data.Sampler``."""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast

import numpy as np
from torch.utils.data import Sampler

from .core.cursor import EpochPass, OrderView, ShardedOrder, check_epoch
from .core.layout import EpisodeIndex
from .core.spec import SamplerSpec, non_empty, select_frames
from .core.state import MAX_EPOCH, samples_per_rank
from .core.steps import compute_sampler_state
from .core.validation import ArgumentTypeError, check_choice, check_int
from .lerobot.episode_table import lerobot_layout
from .lerobot.frames import LeRobotFrames

__all__ = ["EpisodeAwareSampler", "SamplerIterator", "compute_sampler_state"]

logger = logging.getLogger(__name__)


class EpisodeAwareSampler(OrderView, Sampler[int]):
    """Episode-aware sampler over the valid frames of a dataset; a drop-in for LeRobot's.

    The order of an epoch is a pure function of (layout, seed, epoch): with ``shuffle=True`` and
    ``permutation="randperm"`` it is exactly LeRobot's order. Each ``iter()`` runs epoch ``epoch``
    from ``start_index`` (as set by :meth:`set_epoch` / :meth:`load_state_dict`) and advances the
    epoch when that pass is first pulled from (generator semantics), so consecutive passes differ
    without ``set_epoch`` while an iterator created and dropped unused (as ``DataLoader`` iterators
    with workers do) skips nothing.

    ``set_epoch(e)`` sets the epoch and keeps the position, as LeRobot's does. After a restore
    (:meth:`load_state_dict`), a ``set_epoch`` that would move the epoch *backwards* is ignored with a
    logged warning (``set_epoch_policy="keep_resumed"``, the default): frameworks call ``set_epoch`` with a
    per-process pass counter that restarts at 0 in a resumed process (accelerate's ``DataLoaderShard``
    does, every pass), which would otherwise replay epoch 0 from the restored position. See
    ``docs/lerobot-migration.md``.

    Args:
        dataset_from_indices: first frame of each episode.
        dataset_to_indices: one past the last frame of each episode.
        episode_indices_to_use: episodes (row positions) to keep; ``None`` keeps all.
        drop_n_first_frames: frames dropped at the start of each episode.
        drop_n_last_frames: frames dropped at the end of each episode.
        shuffle: shuffle the units of each epoch.
        seed: shuffle seed, an int in ``[0, 2**64)``.
        absolute_to_relative_idx: mapping or sequence applied to every yielded frame index.
        set_epoch_policy: ``"keep_resumed"`` (default): after a restore, ``set_epoch`` never moves the
            epoch backwards (ignored with a warning); ``"follow"``: ``set_epoch`` always sets the
            epoch, exactly as LeRobot's sampler.
        **options: the other keyword arguments of :class:`~episode_sampler.core.spec.SamplerSpec`:
            ``permutation`` (``"randperm"``, exact and LeRobot-compatible, O(frames) per epoch, or
            ``"feistel"``, O(1) memory and seek), ``order`` (``"frames"``, ``"episodes"`` or
            ``"blocks"``), ``block_size`` (frames per block for ``order="blocks"``), ``rank`` and
            ``world_size`` (rank ``r`` of ``W`` yields global positions ``r, r + W, ...``) and
            ``drop_last`` (``False`` pads the epoch by wrapping to its start so every rank yields
            ``ceil(n / W)`` samples; ``True`` yields ``floor(n / W)``).

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
        set_epoch_policy: str = "keep_resumed",
        **options: Any,
    ) -> None:
        index = select_frames(
            dataset_from_indices,
            dataset_to_indices,
            episode_indices_to_use,
            drop_n_first_frames,
            drop_n_last_frames,
        )
        spec = SamplerSpec(
            shuffle=shuffle, seed=seed, absolute_to_relative_idx=absolute_to_relative_idx, **options
        )
        self._start(index, spec, set_epoch_policy)

    def _start(self, index: EpisodeIndex, spec: SamplerSpec, set_epoch_policy: str) -> None:
        self.episode_index = index
        self.spec = spec
        self._sharded = spec.build(index)
        self.shuffle = self._sharded.order.shuffle
        self.seed = self._sharded.order.seed
        self.set_epoch_policy = check_choice("set_epoch_policy", set_epoch_policy, SET_EPOCH_POLICIES)
        self._next = (0, 0, 0)  # (epoch, start_index, global_start) of the next pass
        self._active: EpochPass | None = None
        self._restored = False  # a load_state_dict happened: set_epoch may not move backwards
        self._warned = False
        self._set_epoch_log_level = logging.WARNING

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_index(
        cls, index: EpisodeIndex, *, set_epoch_policy: str = "keep_resumed", **options: Any
    ) -> EpisodeAwareSampler:
        """A sampler over every frame of ``index`` (use ``index.select(...)`` to subset/trim first).

        ``options`` are the keyword arguments of :class:`~episode_sampler.core.spec.SamplerSpec`
        (``shuffle``, ``seed``, ``permutation``, ``order``, ``block_size``, ``rank``, ``world_size``,
        ``drop_last``, ``absolute_to_relative_idx``), as for the constructor.

        Raises:
            TypeError, ValueError: as the constructor.
        """
        self = cls.__new__(cls)
        self._start(non_empty(index), SamplerSpec(**options), set_epoch_policy)
        return self

    @classmethod
    def from_lerobot(
        cls,
        root: str | os.PathLike[str] | LeRobotFrames,
        episode_indices_to_use: Sequence[int] | None = None,
        drop_n_first_frames: int = 0,
        drop_n_last_frames: int = 0,
        *,
        set_epoch_policy: str = "keep_resumed",
        **options: Any,
    ) -> EpisodeAwareSampler:
        """A sampler over a LeRobot v3 dataset on disk (keyword arguments as the constructor).

        It yields item numbers of :class:`~episode_sampler.LeRobotFrames` over the same ``root``:
        these are the frame indices when the dataset's ``index`` column runs from 0 without gaps (the
        usual case); when episodes leave gaps, frame indices are mapped to item numbers
        (``absolute_to_relative_idx``, unless you pass your own), so ``LeRobotFrames[i]`` always reads
        the sampled frame.

        ``root`` may be the :class:`~episode_sampler.LeRobotFrames` the sampler feeds: its episodes,
        already read, are used, and no file is read again (the dataset's set-up is the whole cost).

        Raises:
            FileNotFoundError: missing metadata; ValueError/TypeError: as the constructor.
        """
        index, options = lerobot_layout(root.episodes if isinstance(root, LeRobotFrames) else root, options)
        return cls(
            index.starts,
            index.ends,
            episode_indices_to_use,
            drop_n_first_frames,
            drop_n_last_frames,
            set_epoch_policy=set_epoch_policy,
            **options,
        )

    # ------------------------------------------------------------------ properties
    @property
    def epoch(self) -> int:
        """The epoch the sampler is in: the running pass's, or the next pass's when none runs."""
        return self.state_dict()["epoch"]

    @property
    def _starts(self) -> np.ndarray:
        """LeRobot's private ``_starts`` (first valid frame of each kept episode), for its tests."""
        return self.episode_index.starts

    @property
    def _cum_lengths(self) -> np.ndarray:
        """LeRobot's private ``_cum_lengths`` (cumulative valid frames per kept episode), for its tests."""
        return np.cumsum(self.episode_index.lengths)

    @property
    def sharded_order(self) -> ShardedOrder:
        """The (immutable) core order this sampler iterates; a node built ``from_sampler`` shares it."""
        return self._sharded

    @property
    def indices(self) -> list[int]:
        """All valid frame indices in unshuffled order (relabelled); O(frames), built on each call."""
        frames = self.episode_index.frame_at(np.arange(self.num_frames, dtype=np.int64))
        return self._sharded.relabel(frames).tolist()

    @property
    def set_epoch_log_level(self) -> int:
        """The ``logging`` level of the message about an ignored ``set_epoch`` (default ``WARNING``).

        Set it to ``logging.INFO`` where that call is expected, as the ``episode-sampler lerobot-train``
        launcher does (accelerate's pass counter restarting at 0 in a resumed process).

        Raises:
            TypeError, ValueError: (on assignment) not an int in ``[0, 50]`` (``logging.CRITICAL``).
        """
        return self._set_epoch_log_level

    @set_epoch_log_level.setter
    def set_epoch_log_level(self, level: int) -> None:
        self._set_epoch_log_level = check_int(
            "set_epoch_log_level", level, minimum=0, maximum=logging.CRITICAL
        )

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
        handle = _PassHandle(self)
        # chain.from_iterable builds an instance of the subclass; typeshed types it as plain ``chain``
        it = cast(SamplerIterator, SamplerIterator.from_iterable(self._chunks(handle)))
        it._handle = handle
        return it

    def _bind(self, handle: _PassHandle) -> None:
        """The pass of ``handle`` takes the sampler's next (epoch, position) and the sampler moves on."""
        handle.pulled = True
        if handle.exhausted:  # restored as an already exhausted pass: nothing; its epoch stays next
            return
        epoch, start, global_start = self._next
        if epoch >= MAX_EPOCH:
            raise ValueError(
                f"epoch {epoch} is beyond the last epoch this sampler runs ({MAX_EPOCH - 1}); "
                "set_epoch() or load_state_dict() a smaller epoch"
            )
        run = EpochPass(self._sharded, epoch, start, global_start)
        handle.run = run
        self._active = run
        self._next = (epoch + 1, 0, 0)

    def _chunks(self, handle: _PassHandle) -> Iterator[Iterator[int]]:
        if not handle.pulled:
            self._bind(handle)
        if handle.run is not None:
            yield from handle.run.chunks()

    def set_epoch(self, epoch: int) -> None:
        """Make the next ``iter()`` run epoch ``epoch``, keeping the position (LeRobot's semantics).

        The resume position (``start_index``, set by :meth:`load_state_dict`) is kept, so a script that
        restores a state and then calls ``set_epoch`` with the state's epoch resumes exactly; after a
        pass has started the position is 0, so ``set_epoch`` then starts ``epoch`` from its beginning.

        With ``set_epoch_policy="keep_resumed"`` (default), once a state was loaded a call that would
        move the epoch backwards (below the epoch the next ``iter()`` would run) is ignored with a
        warning (logged once, at :attr:`set_epoch_log_level`): that is a framework's pass counter
        restarting at 0 in a resumed process (accelerate's ``DataLoaderShard`` calls
        ``set_epoch(iteration)`` every pass), not a request to replay epochs.
        ``set_epoch_policy="follow"`` always obeys, as LeRobot's sampler does.

        Raises:
            TypeError, ValueError: ``epoch`` is not an int in ``[0, 2**62)``.
        """
        epoch = check_int("epoch", epoch, minimum=0, maximum=MAX_EPOCH - 1)
        current, start, global_start = self._next
        if epoch < current and self._restored and self.set_epoch_policy == "keep_resumed":
            if not self._warned:
                self._warned = True
                logger.log(
                    self._set_epoch_log_level,
                    "EpisodeAwareSampler: ignoring set_epoch(%d) after a restore: the sampler resumed at "
                    "epoch %d and does not move backwards (a framework's pass counter restarting at 0, "
                    "e.g. accelerate's DataLoaderShard, would replay epochs). Pass "
                    "set_epoch_policy='follow' to obey every set_epoch. Logged once per sampler.",
                    epoch,
                    current,
                )
            return
        self._next = (epoch, start, global_start)
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

        O(1) for ``permutation="feistel"``: nothing is replayed. The sampler reads ``epoch`` and
        ``start_index`` with LeRobot's meaning and ignores a node state's pass bits (``exhausted``,
        ``pulled``; its iterator's state carries its own). A state whose ``start_index`` is its rank's
        sample count (``{"epoch": e, "start_index": len(sampler)}``) gives one pass that yields nothing,
        then epoch ``e + 1``, as LeRobot's sampler does.

        Raises:
            TypeError: not a dict, or fields of the wrong type.
            ValueError: missing/unknown keys, unknown version, a state from another layout, seed,
                shuffle, permutation or order (the message names the field), a bad position.
        """
        r = self._sharded.restore_state(state)
        nxt = (r.epoch, r.start_index, r.global_start)
        epoch, start = int(state["epoch"]), int(state["start_index"])
        if len(state) == 2:  # a bare LeRobot state: this world, from the epoch's start
            left = self._sharded.count(0)
        else:
            left = samples_per_rank(
                self.num_frames,
                int(state["global_start"]),
                int(state["world_size"]),
                bool(state["drop_last"]),
            )
        if start == left:  # "the next sample is the start_index-th" of a finished epoch (LeRobot's reading)
            nxt = (epoch, self._sharded.count(0), 0)  # one pass that yields nothing, then the next epoch
        self._next = nxt
        self._active = None
        self._restored = True

    def __repr__(self) -> str:
        return (
            f"EpisodeAwareSampler(num_frames={self.num_frames}, shuffle={self.shuffle}, seed={self.seed}, "
            f"permutation={self.permutation!r}, order={self.order!r}, rank={self.rank}, "
            f"world_size={self.world_size})"
        )


SET_EPOCH_POLICIES = ("keep_resumed", "follow")


class _PassHandle:
    """What a :class:`SamplerIterator` knows of its pass (shared with the generator that feeds it)."""

    __slots__ = ("sampler", "run", "pulled", "exhausted")

    def __init__(self, sampler: EpisodeAwareSampler) -> None:
        self.sampler = sampler
        self.run: EpochPass | None = None
        self.pulled = False
        self.exhausted = False


class SamplerIterator(itertools.chain[int]):
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
        """``{"exhausted": bool, "pulled": bool}``: whether this pass handed out its last sample, and
        whether it was pulled from (then it holds its epoch and the sampler has moved on)."""
        handle = self._handle
        run = handle.run
        return {
            "exhausted": bool(handle.exhausted or (run is not None and run.position >= run.total)),
            "pulled": handle.pulled,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a fresh (never pulled) pass: exhausted, and/or already started.

        Call it right after ``sampler.load_state_dict(...)`` and ``iter(sampler)``. ``"exhausted"``: the
        pass yields nothing (it ended before the save). ``"pulled"`` (optional, default false; states
        of 0.1.0 lack it): the pass had started, so it takes the restored position now and the
        sampler moves on to the next epoch at once, as the original had.

        Raises:
            TypeError: ``state`` is not a dict with a bool ``"exhausted"`` (and a bool ``"pulled"`` if any).
            ValueError: the pass was already pulled from.
        """
        if (
            not isinstance(state, Mapping)
            or not isinstance(state.get("exhausted"), (bool, np.bool_))
            or not isinstance(state.get("pulled", False), (bool, np.bool_))
            or set(state) - {"exhausted", "pulled"}
        ):
            raise ArgumentTypeError(
                f"iterator state must be {{'exhausted': bool, 'pulled': bool}}, got {state!r}"
            )
        if self._handle.pulled:
            raise ValueError("load_state_dict on a sampler iterator that was already pulled from")
        self._handle.exhausted = bool(state["exhausted"])
        if state.get("pulled", False):
            self._handle.sampler._bind(self._handle)
