"""The epoch order: (layout, order, permutation, seed, epoch, global position) -> frame index.

This is the one pure function every cursor (sampler, node) wraps. An epoch's order is a sequence of
``num_frames`` global positions; position ``g`` maps to a frame through the *units* being shuffled:

* ``"frames"``   -- every valid frame is a unit: ``frame = layout.frame_at(perm(g))``.
* ``"episodes"`` -- episodes are shuffled as units, frames of an episode stay in order.
* ``"blocks"``   -- each episode is cut into blocks of ``block_size`` consecutive frames (aligned at
  its first valid frame, the last block shorter) and the blocks are shuffled as units.

For ``"episodes"`` and ``"blocks"`` a per-epoch table of O(episodes) entries locates position ``g``
without visiting the other units (the shorter blocks are the only ones that shift positions), so
seeking is exact and cheap for both permutations.
"""

from __future__ import annotations

import numpy as np

from .layout import EpisodeIndex, PositionLookup
from .permutation import PERMUTATIONS, Permutation, check_seed, make_permutation
from .validation import check_bool, check_choice, check_int

ORDERS = ("frames", "episodes", "blocks")
_FRAMES_BLOCK = 1 << 16  # positions per block when the numpy path maps a long strided run
RANDPERM_MAX_UNITS = 2**33  # 64 GiB of int64 per epoch: beyond, randperm cannot be what the user wants


class EpochOrder:
    """Maps global positions of an epoch to frame indices, for a fixed layout and shuffle setup.

    Args:
        index: the valid frames (after episode selection and drops); must hold at least one frame.
        order: ``"frames"``, ``"episodes"`` or ``"blocks"``.
        block_size: frames per block, required for (and only for) ``order="blocks"``.
        permutation: ``"randperm"`` or ``"feistel"``.
        seed: shuffle seed in ``[0, 2**64)``.
        shuffle: ``False`` keeps the units in layout order.

    Raises:
        TypeError, ValueError: invalid arguments, naming the argument.
    """

    def __init__(
        self,
        index: EpisodeIndex,
        order: str = "frames",
        block_size: int | None = None,
        permutation: str = "randperm",
        seed: int = 0,
        shuffle: bool = False,
    ) -> None:
        if not isinstance(index, EpisodeIndex):
            raise TypeError(f"index must be an EpisodeIndex, got {type(index).__name__}")
        if index.num_frames < 1:
            raise ValueError("index holds no frame")
        self.index = index
        self.order = check_choice("order", order, ORDERS)
        self.permutation = check_choice("permutation", permutation, PERMUTATIONS)
        self.seed = check_seed(seed)
        self.shuffle = check_bool("shuffle", shuffle)
        if self.order == "blocks":
            if block_size is None:
                raise ValueError("block_size is required when order='blocks'")
            k = check_int("block_size", block_size, minimum=1, maximum=2**62)
            self.block_size: int | None = k
            self._k = k  # the same as an int: set, and read, for order="blocks" only
        else:
            if block_size is not None:
                raise ValueError(f"block_size is only valid with order='blocks', got order={order!r}")
            self.block_size = None
        self.num_frames = index.num_frames
        if self.order == "frames":  # positions map through the layout's own lookup: no extra table
            self.num_units = self.num_frames
        else:
            lengths = index.lengths
            keep = lengths > 0
            self._starts = index.starts if keep.all() else index.starts[keep]
            self._lengths = lengths if keep.all() else lengths[keep]
        if self.order == "frames":
            pass
        elif self.order == "episodes":
            self.num_units = int(self._starts.size)
        else:
            k = self._k
            nblocks = -(-self._lengths // k)
            self._block_cum = np.cumsum(nblocks)
            self.num_units = int(self._block_cum[-1])
            rem = self._lengths % k
            short = np.flatnonzero(rem)
            self._short_ids = self._block_cum[short] - 1  # last block of each episode with a remainder
            self._short_len = rem[short]
            self._first_block = self._block_cum - nblocks
            # block -> episode through the layout's bucket-table search (O(1) per block, not a bisection)
            self._block_lookup = PositionLookup(self._first_block, self._block_cum)
        if self.shuffle and self.permutation == "randperm" and self.num_units > RANDPERM_MAX_UNITS:
            raise ValueError(
                f"permutation='randperm' would materialize {self.num_units} int64 per epoch "
                f"({self.num_units * 8 / 2**30:.0f} GiB); use permutation='feistel' (O(1) memory)"
            )
        self._cache: dict[int, _EpochTable] = {}

    def epoch_table(self, epoch: int) -> _EpochTable:
        """The per-epoch lookup for ``epoch``, cached for the two most recently used epochs.

        Two, so that cursors sharing this order one epoch apart (a sampler and a node built from it,
        or a pass and ``frame_indices`` of the next epoch) do not rebuild it for every chunk.
        """
        cache = self._cache
        table = cache.get(epoch)
        if table is None:
            perm = None
            if self.shuffle:
                perm = make_permutation(self.permutation, self.num_units, self.seed, epoch)
            table = _EpochTable(self, perm)
            if len(cache) >= 2:
                cache.pop(next(iter(cache)))
        else:
            del cache[epoch]
        cache[epoch] = table  # most recently used last
        return table

    def frames(self, epoch: int, positions: np.ndarray) -> np.ndarray:
        """Frame index at each global position (int64 array in ``[0, num_frames)``) of ``epoch``."""
        return self.epoch_table(epoch).frames(positions)

    def frame_one(self, epoch: int, position: int) -> int:
        """Frame index at one global position of ``epoch`` (Python ints; same value as :meth:`frames`)."""
        return self.epoch_table(epoch).frame_one(position)

    def frames_strided(self, epoch: int, first: int, step: int, count: int) -> np.ndarray:
        """Frame indices at the global positions ``(first + k * step) mod num_frames``, ``k < count``.

        What a rank's run of samples is (``step`` = world size), mapped block by block through
        :meth:`frames` so that temporaries stay cache-sized.
        """
        return self.epoch_table(epoch).frames_strided(first, step, count)


class _EpochTable:
    """Per-epoch state of :class:`EpochOrder`: the permutation plus O(episodes) seek tables."""

    def __init__(self, o: EpochOrder, perm: Permutation | None) -> None:
        self.o = o
        self.perm = perm
        if o.order == "episodes":
            slots = np.arange(o.num_units, dtype=np.int64)
            self.ep_order = perm(slots) if perm is not None else slots
            self.cum = np.cumsum(o._lengths[self.ep_order])
        elif o.order == "blocks":
            k = o._k
            ids = o._short_ids
            slots = perm.inverse(ids) if perm is not None else ids.copy()
            srt = np.argsort(slots, kind="stable")
            self.short_slots = slots[srt]
            self.short_len = o._short_len[srt]
            deficit = k - self.short_len
            self.deficit_incl = np.cumsum(deficit)
            deficit_excl = self.deficit_incl - deficit
            self.short_pos = self.short_slots * k - deficit_excl  # first position of each short block

    def frame_one(self, g: int) -> int:
        """One position, on Python ints where the order allows it (no numpy round trips for frames)."""
        o, perm = self.o, self.perm
        if o.order == "frames":
            return o.index.lookup.frame_one(perm.one(g) if perm is not None else g)
        return int(self.frames(np.array([g], dtype=np.int64))[0])

    def frames_strided(self, first: int, step: int, count: int) -> np.ndarray:
        n = self.o.num_frames
        if count <= _FRAMES_BLOCK:
            return self.frames(_strided(first, step, count, n))
        out = np.empty(count, dtype=np.int64)  # temporaries stay cache-sized; only out is large
        for lo in range(0, count, _FRAMES_BLOCK):
            m = min(count - lo, _FRAMES_BLOCK)
            out[lo : lo + m] = self.frames(_strided(first + lo * step, step, m, n))
        return out

    def frames(self, g: np.ndarray) -> np.ndarray:
        o, perm = self.o, self.perm
        if o.order == "frames":
            return o.index.lookup.frame(perm(g) if perm is not None else g)
        if o.order == "episodes":
            if g.size > 64 and int(g[-1]) - int(g[0]) == g.size - 1 and (g[1:] - g[:-1] == 1).all():
                return self._episodes_range(int(g[0]), int(g[-1]) + 1)
            slot = np.searchsorted(self.cum, g, side="right")
            ep = self.ep_order[slot]
            return o._starts[ep] + (g - (self.cum[slot] - o._lengths[ep]))
        if g.size > 2 * o._k and int(g[-1]) - int(g[0]) == g.size - 1 and (g[1:] - g[:-1] == 1).all():
            return self._blocks_range(int(g[0]), int(g[-1]) + 1)
        slot, off = self._slots(g)
        return self._block_frames(slot) + off

    def _episodes_range(self, a: int, b: int) -> np.ndarray:
        """Positions ``[a, b)`` of ``order="episodes"``: one run of consecutive frames per episode slot."""
        o = self.o
        s0, s1 = (int(s) for s in np.searchsorted(self.cum, [a, b - 1], side="right"))
        ep = self.ep_order[s0 : s1 + 1]
        first = self.cum[s0 : s1 + 1] - o._lengths[ep]  # position where each slot's episode begins
        run0 = np.maximum(first, a)  # where each run begins, clipped to the range
        lens = np.minimum(self.cum[s0 : s1 + 1], b) - run0
        return _runs(o._starts[ep] + (run0 - first), lens, b - a)

    def _slots(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Slot (position of the unit in the shuffled order) and offset inside it, for each position."""
        k = self.o._k
        j = np.searchsorted(self.short_pos, g, side="right")
        prev = j - 1
        has_prev = prev >= 0
        prev_c = np.where(has_prev, prev, 0)
        if self.short_pos.size:
            in_short = has_prev & (g < self.short_pos[prev_c] + self.short_len[prev_c])
            d = np.where(has_prev, self.deficit_incl[prev_c], 0)
        else:
            in_short = np.zeros(g.shape, dtype=bool)
            d = np.zeros(g.shape, dtype=np.int64)
        shifted = g + d
        slot = shifted // k
        off = shifted - slot * k
        if in_short.any():
            slot[in_short] = self.short_slots[prev_c[in_short]]
            off[in_short] = g[in_short] - self.short_pos[prev_c[in_short]]
        return slot, off

    def _block_frames(self, slot: np.ndarray) -> np.ndarray:
        """First frame of the block in each slot."""
        o, perm = self.o, self.perm
        block = perm(slot) if perm is not None else slot
        ep = o._block_lookup.episode(block)
        return o._starts[ep] + (block - o._first_block[ep]) * o._k

    def _blocks_range(self, a: int, b: int) -> np.ndarray:
        """Positions ``[a, b)``: each slot in the range is mapped once, then expanded to its frames.

        The same values as the per-position path (slots from the same tables), with the permutation
        and the episode search run per block instead of per frame.
        """
        k = self.o._k
        ends = np.array([a, b - 1], dtype=np.int64)
        (s0, s1), (off0, _) = self._slots(ends)
        s0, s1, off0 = int(s0), int(s1), int(off0)
        slots = np.arange(s0, s1 + 1, dtype=np.int64)
        lens = np.full(slots.size, k, dtype=np.int64)
        lo = int(np.searchsorted(self.short_slots, s0, side="left"))
        hi = int(np.searchsorted(self.short_slots, s1, side="right"))
        lens[self.short_slots[lo:hi] - s0] = self.short_len[lo:hi]
        lens[0] -= off0
        if slots.size == 1:
            lens[0] = b - a
        else:
            lens[-1] = (b - a) - int(lens[:-1].sum())
        firsts = self._block_frames(slots)
        firsts[0] += off0
        return _runs(firsts, lens, b - a)


def _strided(first: int, step: int, count: int, n: int) -> np.ndarray:
    """``(first + k * step) mod n`` for ``k < count`` (int64; ``first``, ``step`` any non-negative ints)."""
    first %= n
    step %= n
    if count and (count - 1) * step + first >= 2**63:  # beyond int64 before the reduction (not a rank's run)
        return ((np.arange(count, dtype=object) * step + first) % n).astype(np.int64)
    g = np.arange(count, dtype=np.int64)
    if step != 1:
        g *= step
    g += first
    if count and int(g[-1]) >= n:
        g %= n
    return g


def _runs(firsts: np.ndarray, lens: np.ndarray, total: int) -> np.ndarray:
    """The runs ``firsts[j], firsts[j] + 1, ...`` of ``lens[j]`` frames each, concatenated (``total``)."""
    firsts = np.ascontiguousarray(firsts, dtype=np.int64)
    lens = np.ascontiguousarray(lens, dtype=np.int64)
    starts = np.cumsum(lens) - lens  # where each run begins in the output
    out = np.repeat(firsts - starts, lens)
    out += np.arange(total, dtype=np.int64)
    return out
