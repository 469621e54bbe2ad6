"""Sharded epoch streams and the chunked cursor that the sampler and the node both wrap."""

from __future__ import annotations

import hashlib
import itertools
import operator
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .order import EpochOrder
from .state import MAX_EPOCH, Resume, build_state, restore_state, samples_per_rank
from .validation import ArgumentTypeError, check_bool, check_int, int_array

FIRST_CHUNK = 64
MAX_CHUNK = 1 << 16


class ShardedOrder:
    """An :class:`EpochOrder` seen by rank ``rank`` of ``world_size``.

    The rank's ``k``-th sample of an epoch whose world started at global position ``c`` is the
    global position ``c + rank + k * world_size``; positions past the epoch's end wrap to its start
    (``drop_last=False``, so every rank yields the same count) or are not yielded (``drop_last=True``).

    Raises:
        TypeError, ValueError: invalid ``rank``/``world_size``/``drop_last``/``absolute_to_relative_idx``.
    """

    def __init__(
        self,
        order: EpochOrder,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
        absolute_to_relative_idx: Mapping[int, int] | Sequence[int] | np.ndarray | None = None,
    ) -> None:
        self.order = order
        self.world_size = check_int("world_size", world_size, minimum=1, maximum=2**31)
        self.rank = check_int("rank", rank, minimum=0)
        if self.rank >= self.world_size:
            raise ValueError(f"rank must be in [0, world_size={self.world_size}), got {self.rank}")
        self.drop_last = check_bool("drop_last", drop_last)
        self.num_frames = order.num_frames
        if self.drop_last and self.num_frames < self.world_size:
            raise ValueError(
                f"drop_last=True with world_size={self.world_size} > {self.num_frames} valid frames "
                "leaves every rank without a sample"
            )
        self._relabel = _Relabel.make(absolute_to_relative_idx, order.index)
        self.identity = {
            "fingerprint": order.index.fingerprint,
            "num_frames": int(self.num_frames),
            "seed": order.seed,
            "shuffle": order.shuffle,
            "permutation": order.permutation,
            "order": order.order,
            "block_size": order.block_size,
            "relabel": None if self._relabel is None else self._relabel.fingerprint(order.index),
        }

    def relabel(self, frames: np.ndarray) -> np.ndarray:
        """``frames`` through the ``absolute_to_relative_idx`` table (unchanged without one)."""
        return self._relabel(frames) if self._relabel is not None else frames

    def count(self, global_start: int = 0) -> int:
        """Samples this rank yields from ``global_start`` to the end of an epoch."""
        return samples_per_rank(self.num_frames, global_start, self.world_size, self.drop_last)

    def frames(self, epoch: int, global_start: int, start: int, stop: int) -> np.ndarray:
        """This rank's samples ``[start, stop)`` of ``epoch`` (int64 frame indices, relabelled).

        The rank's ``k``-th sample sits at global position ``(global_start + rank + k * world_size)
        mod num_frames``: one strided run, mapped by :meth:`EpochOrder.frames_strided`.
        """
        first = global_start + self.rank + start * self.world_size
        out = self.order.frames_strided(epoch, first, self.world_size, max(0, stop - start))
        return self._relabel(out) if self._relabel is not None else out

    def frame_one(self, epoch: int, global_start: int, k: int) -> int:
        """This rank's ``k``-th sample of ``epoch`` (a Python int; the same value :meth:`frames` gives)."""
        g = (global_start + self.rank + k * self.world_size) % self.num_frames
        out = self.order.frame_one(epoch, g)
        return int(self._relabel(np.array([out]))[0]) if self._relabel is not None else out

    def state(
        self,
        epoch: int,
        start_index: int,
        global_start: int,
        *,
        exhausted: bool = False,
        pulled: bool = False,
    ) -> dict[str, Any]:
        """A fresh state dict for this rank at (epoch, start_index, global_start); see ``build_state``."""
        return build_state(
            self.identity,
            epoch=epoch,
            start_index=start_index,
            global_start=global_start,
            world_size=self.world_size,
            rank=self.rank,
            drop_last=self.drop_last,
            exhausted=exhausted,
            pulled=pulled,
        )

    def restore_state(self, state: Any) -> Resume:
        """Validate a state and return where and in which pass state this rank resumes."""
        return restore_state(state, self.identity, world_size=self.world_size, drop_last=self.drop_last)


class OrderView:
    """Read-only properties of the order a cursor iterates (``_sharded``): the sampler's and the node's."""

    _sharded: ShardedOrder

    @property
    def sharded_order(self) -> ShardedOrder:
        """The (immutable) core order this cursor iterates: a node built ``from_sampler`` shares its
        sampler's, and a look-ahead reads the future frames from it."""
        return self._sharded

    @property
    def num_frames(self) -> int:
        """Valid frames in one epoch (all ranks together)."""
        return self._sharded.num_frames

    @property
    def rank(self) -> int:
        """This cursor's shard in ``[0, world_size)``."""
        return self._sharded.rank

    @property
    def world_size(self) -> int:
        """Number of shards."""
        return self._sharded.world_size

    @property
    def drop_last(self) -> bool:
        """Whether an epoch's last, uneven round of positions is dropped instead of wrapped."""
        return self._sharded.drop_last

    @property
    def permutation(self) -> str:
        """``"randperm"`` or ``"feistel"``."""
        return self._sharded.order.permutation

    @property
    def order(self) -> str:
        """The shuffled units: ``"frames"``, ``"episodes"`` or ``"blocks"``."""
        return self._sharded.order.order

    @property
    def block_size(self) -> int | None:
        """Frames per block with ``order="blocks"``, else ``None``."""
        return self._sharded.order.block_size

    @property
    def fingerprint(self) -> str:
        """Fingerprint of the valid frame ranges (see :attr:`EpisodeIndex.fingerprint`)."""
        return self._sharded.order.index.fingerprint


class EpochPass:
    """One pass over an epoch from ``start``, handed out chunk by chunk as Python ints.

    ``position`` is exact at any moment and safe to read from another thread: the current chunk is
    one tuple ``(chunk_start, chunk_len, list_iterator)`` swapped atomically, and the position inside
    it is derived from the iterator's remaining length, so iteration does no per-item bookkeeping.
    """

    __slots__ = ("sharded", "epoch", "global_start", "total", "_chunk", "_buf", "_buf_size")

    def __init__(self, sharded: ShardedOrder, epoch: int, start: int, global_start: int) -> None:
        self.sharded = sharded
        self.epoch = epoch
        self.global_start = global_start
        self.total = sharded.count(global_start)
        self._chunk: tuple[int, int, Any] = (start, 0, iter(()))
        self._buf: tuple[int, list[int]] = (start, [])  # next_batch's frames for [lo, lo + len(buf))
        self._buf_size = FIRST_CHUNK

    @property
    def position(self) -> int:
        """Index (in this rank's epoch) of the next sample to be yielded."""
        base, length, it = self._chunk
        return base + length - operator.length_hint(it)

    def finish(self) -> None:
        """Move to the end of the pass: nothing is left to yield (a pass restored as exhausted)."""
        self._chunk = (self.total, 0, iter(()))

    def __iter__(self) -> Iterator[int]:
        return itertools.chain.from_iterable(self.chunks())

    def chunks(self) -> Iterator[Iterator[int]]:
        """The pass as one iterator per chunk; ``itertools.chain.from_iterable`` flattens it at C speed.

        ``position`` stays exact: each chunk is published before any of its items is handed out.
        """
        return (it for it, _ in self.chunks_with_frames())

    def chunks_with_frames(self) -> Iterator[tuple[Iterator[int], np.ndarray | list[int]]]:
        """:meth:`chunks`, each with the int64 array of its frames (for per-frame work such as seeds)."""
        total = self.total
        frames = self.sharded.frames
        base, length, _ = self._chunk
        stop = base + length
        if stop < total:  # the first sample alone, on Python ints: a restore's first item is fast
            first = self.sharded.frame_one(self.epoch, self.global_start, stop)
            it = iter((first,))
            self._chunk = (stop, 1, it)
            yield it, [first]  # a list: no numpy call on a restore's first item
        size = FIRST_CHUNK
        while True:
            base, length, _ = self._chunk
            stop = base + length
            if stop >= total:
                return
            n = min(size, total - stop)
            arr = frames(self.epoch, self.global_start, stop, stop + n)
            it = iter(arr.tolist())
            self._chunk = (stop, n, it)
            yield it, arr
            size = min(size * 4, MAX_CHUNK)

    def next_batch(self, batch_size: int, drop_last: bool) -> list[int]:
        """The next ``batch_size`` samples (fewer at the epoch's end unless ``drop_last``).

        Raises:
            StopIteration: the epoch is exhausted.
        """
        start = self.position
        stop = min(start + batch_size, self.total)
        if stop <= start or (drop_last and stop - start < batch_size):
            self._chunk = (self.total, 0, iter(()))
            raise StopIteration
        lo, buf = self._buf
        if start < lo or stop > lo + len(buf):  # sliced from growing chunks, not mapped batch by batch
            end = min(start + max(stop - start, self._buf_size), self.total)
            buf = self.sharded.frames(self.epoch, self.global_start, start, end).tolist()
            lo = start
            self._buf = (lo, buf)
            self._buf_size = min(self._buf_size * 4, MAX_CHUNK)
        batch = buf[start - lo : stop - lo]
        self._chunk = (stop, 0, iter(()))
        return batch


def check_epoch(epoch: Any) -> int:
    """Return ``epoch`` as a non-negative Python int."""
    return check_int("epoch", epoch, minimum=0, maximum=MAX_EPOCH)


class _Relabel:
    """Vectorized ``absolute_to_relative_idx`` lookup (a mapping or a sequence indexed by frame)."""

    def __init__(self, keys: np.ndarray | None, values: np.ndarray) -> None:
        self.keys = keys
        self.values = values

    @classmethod
    def make(cls, table: Any, index: Any) -> _Relabel | None:
        if table is None:
            return None
        ends = index.ends[index.lengths > 0]
        starts = index.starts[index.lengths > 0]
        if isinstance(table, Mapping):
            if len(table) == 0:
                raise ValueError("absolute_to_relative_idx is empty")
            keys = int_array("absolute_to_relative_idx keys", list(table.keys()))
            values = int_array("absolute_to_relative_idx values", list(table.values()))
            order = np.argsort(keys, kind="stable")
            keys, values = keys[order], values[order]
            have = np.searchsorted(keys, ends) - np.searchsorted(keys, starts)
            short = np.flatnonzero(have < ends - starts)
            if short.size:
                ep = int(short[0])
                raise ValueError(
                    f"absolute_to_relative_idx has no entry for some frames of [{int(starts[ep])}, "
                    f"{int(ends[ep])})"
                )
            return cls(keys, values)
        if isinstance(table, (str, bytes)) or not hasattr(table, "__len__"):
            raise ArgumentTypeError(
                f"absolute_to_relative_idx must be a mapping or a sequence, got {type(table).__name__}"
            )
        values = int_array("absolute_to_relative_idx", table)
        if int(ends.max()) > values.size:
            raise ValueError(
                f"absolute_to_relative_idx has {values.size} entries but frames reach {int(ends.max()) - 1}"
            )
        return cls(None, values)

    def fingerprint(self, index: Any) -> str:
        """BLAKE2b-128 hex digest of the relabelled valid frames in layout order.

        It fingerprints what the table *does* to this layout (a mapping and a list with the same
        effect agree; entries for frames outside the valid ranges do not count).
        """
        h = hashlib.blake2b(b"episode-sampler relabel v1", digest_size=16)
        keep = index.lengths > 0
        starts, ends = index.starts[keep], index.ends[keep]
        # a valid range's relabelled frames are one contiguous slice of the table (a mapping covers
        # every frame of it, validated in make(), and its keys are unique and sorted)
        firsts = starts if self.keys is None else np.searchsorted(self.keys, starts)
        for lo, n in zip(firsts.tolist(), (ends - starts).tolist()):
            h.update(np.ascontiguousarray(self.values[lo : lo + n], dtype="<i8").tobytes())
        return h.hexdigest()

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        if self.keys is None:
            return self.values[frames]
        return self.values[np.searchsorted(self.keys, frames)]
