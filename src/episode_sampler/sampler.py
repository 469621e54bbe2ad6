"""``EpisodeAwareSampler``: a LeRobot-compatible, sharded, seekable ``torch.utils.data.Sampler``."""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from torch.utils.data import Sampler

from ._validate import ArgumentTypeError, check_bool, check_choice, check_int
from .cursor import MAX_EPOCH, EpochPass, ShardedOrder, check_epoch
from .episodes import EpisodeIndex
from .order import EpochOrder
from .state import samples_per_rank

logger = logging.getLogger(__name__)


class EpisodeAwareSampler(Sampler[int]):
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
        permutation: ``"randperm"`` (exact, LeRobot-compatible, O(frames) per epoch) or
            ``"feistel"`` (O(1) memory and seek).
        order: ``"frames"``, ``"episodes"`` or ``"blocks"`` (then ``block_size`` is required).
        block_size: frames per block for ``order="blocks"``.
        rank: this process's shard in ``[0, world_size)``.
        world_size: number of shards; rank ``r`` yields global positions ``r, r + W, ...``.
        drop_last: ``False`` pads the epoch by wrapping to its start so every rank yields
            ``ceil(n / W)`` samples; ``True`` yields ``floor(n / W)``.
        set_epoch_policy: ``"keep_resumed"`` (default): after a restore, ``set_epoch`` never moves the
            epoch backwards (ignored with a warning); ``"follow"``: ``set_epoch`` always sets the
            epoch, exactly as LeRobot's sampler.

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
        set_epoch_policy: str = "keep_resumed",
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
            set_epoch_policy=set_epoch_policy,
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
        self.set_epoch_policy = check_choice("set_epoch_policy", kw["set_epoch_policy"], SET_EPOCH_POLICIES)
        self._next = (0, 0, 0)  # (epoch, start_index, global_start) of the next pass
        self._active: EpochPass | None = None
        self._restored = False  # a load_state_dict happened: set_epoch may not move backwards
        self._warned = False

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
        set_epoch_policy: str = "keep_resumed",
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
            set_epoch_policy=set_epoch_policy,
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
    def _starts(self) -> np.ndarray:
        """LeRobot's private ``_starts`` (first valid frame of each kept episode), for its tests."""
        return self.episode_index.starts

    @property
    def _cum_lengths(self) -> np.ndarray:
        """LeRobot's private ``_cum_lengths`` (cumulative valid frames per kept episode), for its tests."""
        return np.cumsum(self.episode_index.lengths)

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
        handle = _PassHandle(self)
        it = SamplerIterator.from_iterable(self._chunks(handle))
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
        warning: that is a framework's pass counter restarting at 0 in a resumed process (accelerate's
        ``DataLoaderShard`` calls ``set_epoch(iteration)`` every pass), not a request to replay epochs.
        ``set_epoch_policy="follow"`` always obeys, as LeRobot's sampler does.

        Raises:
            TypeError, ValueError: ``epoch`` is not an int in ``[0, 2**62)``.
        """
        epoch = check_int("epoch", epoch, minimum=0, maximum=MAX_EPOCH - 1)
        current, start, global_start = self._next
        if epoch < current and self._restored and self.set_epoch_policy == "keep_resumed":
            if not self._warned:
                self._warned = True
                logger.warning(
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
        nxt = self._sharded.restore(state)
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


def compute_sampler_state(
    step: int,
    num_frames: int,
    batch_size: int,
    num_processes: int,
    *,
    split_batches: bool = False,
    even_batches: bool = True,
    drop_last: bool = False,
    process_index: int | None = None,
    origin: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """The sampler state after ``step`` optimizer steps of a run under accelerate's batch sharding.

    With accelerate's defaults (``split_batches=False``, ``even_batches=True``) this is LeRobot's
    formula: one step consumes ``batch_size * num_processes`` positions and every process sees
    ``ceil(ceil(num_frames / batch_size) / num_processes)`` batches per epoch (the last round padded)::

        epoch, into = divmod(step, batches_per_epoch)
        start_index = min(into * batch_size * num_processes, num_frames)

    The keyword arguments describe the checkpointed run's other modes (pass what it used):

    - ``split_batches=True``: ``batch_size`` is the global batch, split across processes; a step
      consumes ``batch_size`` positions and an epoch has ``ceil(num_frames / batch_size)`` steps.
    - ``even_batches=False``: no padding; processes get different numbers of batches per epoch, so
      their epochs drift apart and each process has its own state: ``process_index`` is required.
    - ``drop_last=True`` (the ``DataLoader``'s): short batches and incomplete rounds are dropped.

    Every process keeps a world-size-1 sampler; the state is the same on every process except with
    ``even_batches=False``. ``len(sampler)`` is ``num_frames``.

    ``origin`` (``{"step", "epoch", "start_index"}``): where this mapping starts, for runs resumed with
    another ``num_processes`` or ``batch_size``: at step ``origin["step"]`` the sampler was at
    ``(epoch, start_index)`` and every later step used this ``batch_size`` and ``num_processes``.
    Default: step 0 at ``(0, 0)``.

    Raises:
        TypeError, ValueError: non-int arguments, negative ``step``, non-positive others, a
            ``batch_size`` not divisible by ``num_processes`` with ``split_batches``, a missing or
            out-of-range ``process_index`` with ``even_batches=False``.
    """
    step = check_int("step", step, minimum=0)
    num_frames = check_int("num_frames", num_frames, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    num_processes = check_int("num_processes", num_processes, minimum=1)
    split_batches = check_bool("split_batches", split_batches)
    even_batches = check_bool("even_batches", even_batches)
    drop_last = check_bool("drop_last", drop_last)
    rank = 0
    if process_index is not None:
        rank = check_int("process_index", process_index, minimum=0, maximum=num_processes - 1)
    elif not even_batches and not drop_last and num_processes > 1:
        raise ValueError(
            "process_index is required with even_batches=False: the processes get different numbers of "
            "batches per epoch, so each one resumes at its own epoch and position"
        )
    args = (batch_size, num_processes, split_batches, even_batches, drop_last, rank)
    per_step, per_epoch = _accelerate_steps(num_frames, *args)
    if per_epoch == 0:
        raise ValueError(
            f"process {rank} gets no batch in an epoch of num_frames={num_frames} with batch_size="
            f"{batch_size}, num_processes={num_processes}, split_batches={split_batches}, "
            f"even_batches={even_batches}, drop_last={drop_last}: a training loop would never get a step"
        )
    epoch = 0
    if origin is not None:
        step, epoch, start = _check_origin(origin, step, num_frames)
        if start > 0:  # the pass that resumed at ``start`` is a pass over the rest of that epoch
            partial = _accelerate_steps(num_frames - start, *args)[1]
            if step < partial:
                return {"epoch": epoch, "start_index": min(start + step * per_step, num_frames)}
            step, epoch = step - partial, epoch + 1
    epochs, into = divmod(step, per_epoch)
    return {"epoch": epoch + epochs, "start_index": min(into * per_step, num_frames)}


def _check_origin(origin: Any, step: int, num_frames: int) -> tuple[int, int, int]:
    """(steps since the origin, its epoch, its start_index), validated."""
    if not isinstance(origin, Mapping) or set(origin) != {"step", "epoch", "start_index"}:
        raise ArgumentTypeError(
            f"origin must be a dict with keys 'step', 'epoch', 'start_index', got {origin!r}"
        )
    since = check_int("origin['step']", origin["step"], minimum=0, maximum=step)
    epoch = check_int("origin['epoch']", origin["epoch"], minimum=0, maximum=MAX_EPOCH)
    start = check_int("origin['start_index']", origin["start_index"], minimum=0, maximum=num_frames)
    return step - since, epoch, start


def _accelerate_steps(
    n: int, batch: int, procs: int, split: bool, even: bool, drop_last: bool, rank: int
) -> tuple[int, int]:
    """(positions one step consumes, steps process ``rank`` takes per epoch) under accelerate's sharding.

    Mirrors accelerate's ``BatchSamplerShard`` over ``BatchSampler(sampler, batch, drop_last)``.
    """
    batches = n // batch if drop_last else -(-n // batch)  # integer ceils: exact at any size
    if split:
        if batch % procs:
            raise ValueError(
                f"batch_size={batch} must be a multiple of num_processes={procs} with split_batches=True "
                "(accelerate refuses it too)"
            )
        if even or drop_last or n % batch == 0:
            return batch, batches
        # the short last batch goes only to the processes whose slice of it is not empty
        return batch, n // batch + (1 if n % batch > (batch // procs) * rank else 0)
    if drop_last:
        return batch * procs, batches // procs
    if even:
        return batch * procs, -(-batches // procs)
    return batch * procs, -(-(batches - rank) // procs)
