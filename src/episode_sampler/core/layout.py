"""Episode layout: per-episode frame boundaries, O(episodes) memory, vectorized position lookup."""

from __future__ import annotations

import hashlib
import logging
import sys
from typing import Any

import numpy as np

from .validation import check_int, int_array

logger = logging.getLogger(__name__)

_FINGERPRINT_TAG = b"episode-sampler/layout/v1\0"
_LITTLE_ENDIAN = sys.byteorder == "little"
MAX_FRAME = 2**62  # frame indices and positions stay far from int64 overflow in every computation
_BLOCK = 1 << 16  # positions per vectorized block in PositionLookup (cache-sized temporaries)
_INT64_MAX = int(np.iinfo(np.int64).max)
_CHECK_BLOCK = 1 << 16  # episodes per block when validating bounds
_MAX_STEPS = 2  # correction steps after the bucket table before falling back to a binary search


class EpisodeIndex:
    """Immutable table of episodes, each a half-open frame range ``[start, end)``.

    Only per-episode boundaries are stored (numpy int64), never a list of frames. The *positions*
    ``0 .. num_frames - 1`` enumerate the frames of all episodes in table order; ``frame_at`` maps
    positions to frame indices and ``episode_of`` maps frame indices back to episodes.

    Episodes must be sorted and must not overlap; gaps between episodes are allowed (for example
    after :meth:`select` with ``drop_first``/``drop_last``). Empty episodes are allowed and hold no
    position.
    """

    __slots__ = ("_starts", "_ends", "_ids", "_num_frames", "_all_nonempty", "_lookup", "_fingerprint")

    def __init__(self, starts: Any, ends: Any, episode_ids: Any = None) -> None:
        """Build from episode starts and (exclusive) ends; prefer the ``from_*`` constructors.

        Raises:
            TypeError: non-integer input.
            ValueError: lengths differ, ``start > end``, negative indices, unsorted or overlapping
                episodes (the message names the first bad episode).
        """
        starts = int_array("from_indices", starts)
        ends = int_array("to_indices", ends)
        if starts.shape != ends.shape:
            raise ValueError(
                f"from_indices and to_indices must have the same length, got {starts.size} and {ends.size}"
            )
        ids = None  # None: 0 .. num_episodes - 1, built only when asked for
        if episode_ids is not None:
            ids = int_array("episode_ids", episode_ids)
            if ids.shape != starts.shape:
                raise ValueError(
                    f"episode_ids must have one entry per episode, got {ids.size} for {starts.size} episodes"
                )
            ids.flags.writeable = False
        num_frames, all_nonempty = _checked_bounds(starts, ends)
        starts.flags.writeable = False
        ends.flags.writeable = False
        self._starts = starts
        self._ends = ends
        self._ids = ids
        self._num_frames = num_frames
        self._all_nonempty = all_nonempty  # no empty episode: select() and fingerprint take short paths
        self._lookup: PositionLookup | None = None
        self._fingerprint: str | None = None

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_bounds(cls, from_indices: Any, to_indices: Any) -> EpisodeIndex:
        """Episodes from half-open bounds (LeRobot's ``dataset_from_index`` / ``dataset_to_index``).

        Raises:
            TypeError, ValueError: see :class:`EpisodeIndex`.
        """
        return cls(from_indices, to_indices)

    @classmethod
    def from_lengths(cls, lengths: Any, offset: int = 0) -> EpisodeIndex:
        """Contiguous episodes of the given lengths, the first starting at frame ``offset``.

        Raises:
            TypeError: non-integer lengths or offset.
            ValueError: a negative length or offset.
        """
        lengths = int_array("lengths", lengths)
        offset = check_int("offset", offset, minimum=0, maximum=2**62)
        if lengths.size and lengths.min() < 0:
            bad = int(np.flatnonzero(lengths < 0)[0])
            raise ValueError(f"lengths must be >= 0, episode {bad} has length {int(lengths[bad])}")
        if offset + float(lengths.sum(dtype=np.float64)) >= 2**62:
            raise ValueError(f"lengths add up to more than 2**62 frames (offset={offset})")
        ends = np.cumsum(lengths) + offset
        starts = ends - lengths
        return cls(starts, ends)

    @classmethod
    def from_episode_column(cls, episode_ids: Any) -> EpisodeIndex:
        """Episodes from a per-frame episode-id column whose ids form contiguous runs.

        Frame ``i`` is row ``i``; episodes are ordered by first appearance and keep their ids
        (see :attr:`episode_ids`).

        Raises:
            TypeError: non-integer ids.
            ValueError: an id that appears in two separate runs.
        """
        col = int_array("episode_ids", episode_ids)
        if col.size == 0:
            return cls(np.zeros(0, np.int64), np.zeros(0, np.int64))
        change = np.flatnonzero(col[1:] != col[:-1]) + 1
        starts = np.concatenate(([0], change)).astype(np.int64)
        ends = np.concatenate((change, [col.size])).astype(np.int64)
        ids = col[starts]
        uniq, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            dup = int(uniq[counts > 1][0])
            runs = np.flatnonzero(ids == dup)
            raise ValueError(
                f"episode_ids must form contiguous runs: episode {dup} appears in separate runs "
                f"starting at rows {int(starts[runs[0]])} and {int(starts[runs[1]])}"
            )
        return cls(starts, ends, ids)

    # ------------------------------------------------------------------ properties
    @property
    def starts(self) -> np.ndarray:
        """First frame of each episode (read-only int64)."""
        return self._starts

    @property
    def ends(self) -> np.ndarray:
        """One past the last frame of each episode (read-only int64)."""
        return self._ends

    @property
    def lengths(self) -> np.ndarray:
        """Number of frames of each episode (int64)."""
        return self._ends - self._starts

    @property
    def episode_ids(self) -> np.ndarray:
        """Original episode id of each row (``arange`` unless given, kept through :meth:`select`)."""
        if self._ids is None:
            ids = np.arange(self._starts.size, dtype=np.int64)
            ids.flags.writeable = False
            return ids
        return self._ids

    @property
    def num_frames(self) -> int:
        """Total number of frames (positions)."""
        return self._num_frames

    @property
    def num_episodes(self) -> int:
        """Number of episodes in the table (empty ones included)."""
        return int(self._starts.size)

    @property
    def fingerprint(self) -> str:
        """Stable hex digest (BLAKE2b-128) of the non-empty frame ranges, identical on every platform."""
        if self._fingerprint is None:
            h = hashlib.blake2b(_FINGERPRINT_TAG, digest_size=16)
            if self._all_nonempty and _LITTLE_ENDIAN:  # the arrays as they are (native int64 is "<i8")
                h.update(memoryview(self._starts))  # (blake2b streams: the same digest as in pieces)
                h.update(memoryview(self._ends))
                self._fingerprint = h.hexdigest()
                return self._fingerprint
            step = 1 << 16  # hash in pieces: no O(episodes) temporary copies
            for arr in (self._starts, self._ends):
                for lo in range(0, arr.size, step):
                    a, b = self._starts[lo : lo + step], self._ends[lo : lo + step]
                    piece = arr[lo : lo + step]
                    keep = b > a
                    if not keep.all():
                        piece = piece[keep]
                    h.update(np.ascontiguousarray(piece, dtype="<i8").tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    # ------------------------------------------------------------------ operations
    def select(self, episodes: Any = None, drop_first: int = 0, drop_last: int = 0) -> EpisodeIndex:
        """A new index of the chosen episodes with frames trimmed at both ends.

        Args:
            episodes: row positions of the episodes to keep (any order, duplicates ignored; the
                table order is kept, as LeRobot's ``episode_indices_to_use``). ``None`` keeps all.
            drop_first: frames removed from the start of each episode.
            drop_last: frames removed from the end of each episode.

        Episodes left with no frame are removed, each with a logged warning.

        Raises:
            TypeError: non-integer arguments.
            ValueError: negative drops, episode positions out of range.
        """
        drop_first = check_int("drop_n_first_frames", drop_first, maximum=2**62)
        drop_last = check_int("drop_n_last_frames", drop_last, maximum=2**62)
        if drop_first < 0:
            raise ValueError(f"drop_n_first_frames must be >= 0, got {drop_first}")
        if drop_last < 0:
            raise ValueError(f"drop_n_last_frames must be >= 0, got {drop_last}")
        if episodes is None and drop_first == 0 and drop_last == 0 and self._all_nonempty:
            return self  # immutable: nothing to select, trim or remove
        used = np.ones(self.num_episodes, dtype=bool)
        if episodes is not None:
            chosen = int_array("episode_indices_to_use", episodes)
            if chosen.size and (chosen.min() < 0 or chosen.max() >= self.num_episodes):
                bad = chosen[(chosen < 0) | (chosen >= self.num_episodes)][0]
                raise ValueError(
                    f"episode_indices_to_use holds episode {int(bad)}, "
                    f"outside [0, {self.num_episodes}) episodes"
                )
            used = np.zeros(self.num_episodes, dtype=bool)
            used[chosen] = True
        starts = self._starts + drop_first
        ends = self._ends - drop_last
        empty = used & (ends <= starts)
        ids = self.episode_ids
        for ep in np.flatnonzero(empty)[:1000].tolist():
            logger.warning(
                "Episode %d has %d frames but drop_n_first_frames=%d and "
                "drop_n_last_frames=%d removes all frames. Skipping.",
                int(ids[ep]),
                int(self._ends[ep] - self._starts[ep]),
                drop_first,
                drop_last,
            )
        if int(empty.sum()) > 1000:
            logger.warning("%d more episodes had all frames removed.", int(empty.sum()) - 1000)
        used &= ~empty
        return EpisodeIndex(starts[used], ends[used], ids[used])

    def frame_at(self, positions: Any) -> np.ndarray:
        """Frame index of each position in ``[0, num_frames)``.

        Vectorized like numpy: an array of any shape gives an int64 array of that shape, a scalar an
        ``np.int64``.

        Raises:
            TypeError: non-integer positions.
            ValueError: a position outside ``[0, num_frames)``.
        """
        pos, shape = _flat_ints("positions", positions)
        if pos.size and (pos.min() < 0 or pos.max() >= self._num_frames):
            bad = pos[(pos < 0) | (pos >= self._num_frames)][0]
            raise ValueError(f"positions must be in [0, {self._num_frames}), got {int(bad)}")
        return self.lookup.frame(pos).reshape(shape)[()]

    def episode_of(self, frames: Any) -> np.ndarray:
        """Row position of the episode holding each frame index (same shape as ``frames``).

        Raises:
            TypeError: non-integer frames.
            ValueError: a frame that belongs to no episode.
        """
        f, shape = _flat_ints("frames", frames)
        return self._episode_of(f).reshape(shape)[()]

    def _episode_of(self, f: np.ndarray) -> np.ndarray:
        ep = np.searchsorted(self._starts, f, side="right") - 1
        ok = ep >= 0
        ok[ok] = f[ok] < self._ends[ep[ok]]
        if not ok.all():
            raise ValueError(f"frame {int(f[~ok][0])} belongs to no episode")
        return ep.astype(np.int64)

    def position_of(self, frames: Any) -> np.ndarray:
        """Inverse of :meth:`frame_at`: the position of each frame index (same shape as ``frames``).

        Raises:
            ValueError: a frame that belongs to no episode.
        """
        f, shape = _flat_ints("frames", frames)
        ep = self._episode_of(f)
        return (f - self.lookup.offset(ep)).reshape(shape)[()]

    @property
    def lookup(self) -> PositionLookup:
        """The position -> frame search structure (built on first use; unchecked, vectorized)."""
        if self._lookup is None:
            self._lookup = PositionLookup(self._starts, self._ends)
        return self._lookup

    # ------------------------------------------------------------------ dunder methods

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EpisodeIndex):
            return NotImplemented
        return (
            np.array_equal(self._starts, other._starts)
            and np.array_equal(self._ends, other._ends)
            and np.array_equal(self.episode_ids, other.episode_ids)
        )

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __repr__(self) -> str:
        return (
            f"EpisodeIndex(num_episodes={self.num_episodes}, num_frames={self._num_frames}, "
            f"fingerprint={self.fingerprint!r})"
        )

    def __reduce__(self) -> tuple[type[EpisodeIndex], tuple[Any, ...]]:
        return (EpisodeIndex, (self._starts, self._ends, self._ids))


class PositionLookup:
    """Position -> episode search structure: cumulative ends plus a coarse bucket table.

    ``table[b]`` is the first episode whose cumulative end exceeds ``b << shift``; a position in
    bucket ``b`` lies in that episode or at most ``steps`` after it (counted when the table is
    built), so a lookup is one gather plus ``steps`` vectorized correction steps, each a gather,
    a compare and an add. When some bucket holds more than ``_MAX_STEPS`` episode ends, the few
    positions still unresolved after ``_MAX_STEPS`` steps fall back to a binary search.

    ``_cum`` is ``cum_end`` plus one sentinel entry past the last episode, so stepping needs no
    clipping. A layout without gaps (every ``offset`` equal, the usual case) maps positions to
    frames with one add and never builds the table.
    """

    __slots__ = ("cum_end", "shift", "table", "steps", "exact", "_cum", "_base", "_ends", "_nonempty")

    def __init__(self, starts: np.ndarray, ends: np.ndarray) -> None:
        e = int(starts.size)
        cum = np.empty(e + 1, dtype=np.int64)
        np.subtract(ends, starts, out=cum[:e])
        self._nonempty = int(np.count_nonzero(cum[:e]))
        np.add.accumulate(cum[:e], out=cum[:e])  # cumsum in place (the ufunc call is the cheapest)
        cum[e] = _INT64_MAX  # sentinel: never <= a position
        self._cum = cum
        self.cum_end = cum[:e]
        # frame = position + offset[episode] with offset = ends - cum_end, computed where it is used
        # (the layout's own ``ends`` are kept, not an O(episodes) copy); one shared base when no gaps
        self._ends = ends
        self._base: int | None = None
        # ends[i] - cum[i] is the same for every i exactly when each episode starts where the
        # previous one ends (the difference of consecutive offsets is starts[i] - ends[i - 1])
        if e and (
            e == 1
            or (
                starts[1] == ends[0]
                and all(
                    bool((starts[lo + 1 : lo + 1 + _BLOCK] == ends[lo : min(e - 1, lo + _BLOCK)]).all())
                    for lo in range(0, e - 1, _BLOCK)
                )
            )
        ):
            self._base = int(ends[0] - cum[0])
        self.table: np.ndarray | None = None
        self.shift = 0
        self.steps = 0
        self.exact = True

    def offset(self, ep: np.ndarray) -> np.ndarray:
        """``frame - position`` inside each episode of ``ep`` (``ends - cum_end``)."""
        if self._base is not None:
            return np.full(np.shape(ep), self._base, dtype=np.int64)
        return self._ends[ep] - self.cum_end[ep]

    def _build_table(self) -> np.ndarray:
        cum_end = self.cum_end
        e = int(cum_end.size)
        n = int(cum_end[-1]) if e else 0
        mean = max(1, n // max(1, self._nonempty))
        shift = max(0, mean.bit_length() - 1)  # bucket width <= mean episode length
        nb = (n >> shift) + 1
        table = np.empty(nb, dtype=np.int32 if e < 2**31 - 1 else np.int64)
        block = 1 << 18  # bounded temporaries while building
        for lo in range(0, nb, block):
            marks = np.arange(lo, min(nb, lo + block), dtype=np.int64)
            marks <<= shift
            table[lo : lo + block] = np.searchsorted(cum_end, marks, side="right")
        # ends inside bucket b: at most table[b + 1] - table[b]; the last bucket reaches episode e - 1
        steps = e - 1 - int(table[-1])
        for lo in range(0, nb - 1, block):
            hi = min(nb - 1, lo + block)
            steps = max(steps, int((table[lo + 1 : hi + 1] - table[lo:hi]).max()))
        self.shift = shift
        self.steps = min(max(steps, 0), _MAX_STEPS)
        self.exact = steps <= _MAX_STEPS
        self.table = table
        return table

    def _episode(self, pos: np.ndarray) -> np.ndarray:
        table = self.table if self.table is not None else self._build_table()
        cum = self._cum
        ep = table[pos >> self.shift].astype(np.int64, copy=False)
        for _ in range(self.steps):
            ep += cum[ep] <= pos
        if not self.exact:
            bad = np.flatnonzero(cum[ep] <= pos)
            if bad.size:
                ep[bad] = np.searchsorted(self.cum_end, pos[bad], side="right")
        return ep

    def episode(self, pos: np.ndarray) -> np.ndarray:
        """Episode (row) of each position in ``[0, num_frames)`` (int64, same shape)."""
        pos = np.asarray(pos, dtype=np.int64)
        flat = pos.ravel()
        if flat.size <= _BLOCK:
            return self._episode(flat).reshape(pos.shape)
        out = np.empty(flat.size, dtype=np.int64)
        for lo in range(0, flat.size, _BLOCK):
            out[lo : lo + _BLOCK] = self._episode(flat[lo : lo + _BLOCK])
        return out.reshape(pos.shape)

    def frame_one(self, pos: int) -> int:
        """Frame index of one position (Python ints): the value :meth:`frame` gives for it."""
        if self._base is not None:
            return pos + self._base
        ep = int(self.cum_end.searchsorted(pos, side="right"))
        return pos + int(self._ends[ep] - self.cum_end[ep])

    def frame(self, pos: np.ndarray) -> np.ndarray:
        """Frame index of each position in ``[0, num_frames)`` (int64, same shape), block by block."""
        pos = np.asarray(pos, dtype=np.int64)
        if self._base is not None:
            return pos + self._base
        flat = pos.ravel()
        out = np.empty(flat.size, dtype=np.int64)
        ends, cum = self._ends, self._cum
        for lo in range(0, flat.size, _BLOCK):
            p = flat[lo : lo + _BLOCK]
            ep = self._episode(p)
            o = out[lo : lo + _BLOCK]
            np.add(p, ends[ep], out=o)
            o -= cum[ep]
        return out.reshape(pos.shape)


def _flat_ints(name: str, values: Any) -> tuple[np.ndarray, tuple[int, ...]]:
    """``values`` (scalar or array of any shape) as a flat int64 array, plus its shape."""
    if isinstance(values, (str, bytes)):
        int_array(name, values)  # raises the usual TypeError
    arr = values.detach().cpu().numpy() if hasattr(values, "detach") else np.asarray(values)
    return int_array(name, arr.reshape(-1)), arr.shape


def _checked_bounds(starts: np.ndarray, ends: np.ndarray) -> tuple[int, bool]:
    """``(total frames, no episode is empty)`` of valid bounds; ValueError naming the first bad episode.

    Valid bounds form one chain ``0 <= s0 <= e0 <= s1 <= e1 <= ... <= e_last <= 2**62``. Checking
    ``s_i <= e_i`` and ``e_i <= s_(i+1)`` by comparison (no subtraction that could overflow int64)
    plus both ends of the chain proves every other condition (in range, sorted); when one fails,
    :func:`_check_bounds` runs the detailed checks in their documented order for the message.
    Large layouts are checked block by block: the temporaries stay cache-sized (no fresh
    O(episodes) arrays, whose page faults would dominate at 10^6 episodes).
    """
    e = int(starts.size)
    if not e:
        return 0, True
    if not (int(starts[0]) >= 0 and int(ends[-1]) <= MAX_FRAME):
        _check_bounds(starts, ends)  # raises: one of its conditions fails
    total, all_nonempty = 0, True
    for lo in range(0, e, _CHECK_BLOCK):
        hi = min(e, lo + _CHECK_BLOCK)
        s, t = starts[lo:hi], ends[lo:hi]
        if all_nonempty and np.count_nonzero(s >= t):
            all_nonempty = False
        if (not all_nonempty and np.count_nonzero(s > t)) or np.count_nonzero(
            starts[lo + 1 : hi + 1] < ends[lo : min(hi, e - 1)]  # episode i + 1 starts before i ends
        ):
            _check_bounds(starts, ends)  # raises
        # every value so far lies on the checked chain from s0 >= 0: the subtraction cannot overflow
        total += int(np.add.reduce(t - s))
    return total, all_nonempty


def _check_bounds(starts: np.ndarray, ends: np.ndarray) -> None:
    if starts.size == 0:
        return
    if starts.min() < 0:
        bad = int(np.flatnonzero(starts < 0)[0])
        raise ValueError(f"from_indices must be >= 0, episode {bad} starts at {int(starts[bad])}")
    if ends.max() > MAX_FRAME:
        bad = int(np.flatnonzero(ends > MAX_FRAME)[0])
        raise ValueError(f"to_indices must be <= 2**62, episode {bad} ends at {int(ends[bad])}")
    rev = starts > ends
    if rev.any():
        bad = int(np.flatnonzero(rev)[0])
        raise ValueError(f"episode {bad} has from_index {int(starts[bad])} > to_index {int(ends[bad])}")
    if starts.size > 1:
        unsorted = starts[1:] < starts[:-1]
        if unsorted.any():
            bad = int(np.flatnonzero(unsorted)[0]) + 1
            raise ValueError(
                f"episodes must be sorted by start: episode {bad} starts at {int(starts[bad])}, "
                f"before episode {bad - 1} at {int(starts[bad - 1])}"
            )
        overlap = starts[1:] < ends[:-1]
        if overlap.any():
            bad = int(np.flatnonzero(overlap)[0]) + 1
            raise ValueError(
                f"episodes must not overlap: episode {bad} starts at {int(starts[bad])}, "
                f"inside episode {bad - 1} [{int(starts[bad - 1])}, {int(ends[bad - 1])})"
            )
