"""Frame reads from the Parquet data files (``data/chunk-*/file-*.parquet``): which file and row holds a
frame, a bounded per-process column cache, and one vectorized gather per file touched by a request.

Which file holds which frames comes from the episode table when it says so (LeRobot's
``data/chunk_index``/``data/file_index`` columns, :meth:`DataFiles.from_table`): opening a dataset
then reads no data file, and each file is checked against the table the first time it is read (same
checks, same messages). Without those columns (hand-made datasets) every file is scanned at
construction (:meth:`DataFiles.scan`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from ..core.layout import EpisodeIndex
from .column_cache import DEFAULT_COLUMN_CACHE_BYTES, ColumnCache
from .columns import Column, describe, leaf, signature, to_numpy
from .episode_table import int_column
from .parquet_io import columns_uncompressed_bytes, parquet_file, read_metadata, read_row_groups, read_table
from .storage import Store

__all__ = ["DataFiles"]


class DataFiles:
    """The data files of a dataset, checked against its episode table, and reads of their columns.

    ``specs`` are the columns to read. A file's columns are decoded to numpy (memory-mapped reads)
    when first needed and kept in a :class:`ColumnCache` bounded by ``cache_bytes`` per process,
    least recently used files evicted first. A file whose columns alone exceed the bound (their
    uncompressed size in the Parquet metadata) is never cached: each request reads just the row
    groups holding its rows (LeRobot writes one row group per episode). The cache is not pickled, so
    instances travel to worker processes cheaply and reopen files lazily there.
    """

    def __init__(
        self,
        store: Store,
        files: Sequence[str],
        first: np.ndarray,
        rows_index: list[np.ndarray | None],
        episodes: EpisodeIndex,
        specs: dict[str, Column],
        cache_bytes: int | None = DEFAULT_COLUMN_CACHE_BYTES,
        *,
        episode_file: np.ndarray | None = None,
    ) -> None:
        """Files ``files`` (names relative to ``store``, sorted by first frame index ``first``; per
        file the sorted ``index`` values when not contiguous). ``episode_file`` (file number of each
        episode, -1 for an empty one) marks files not yet checked against the table: each is checked
        on first read. Use :meth:`scan` or :meth:`from_table`."""
        self.store = store
        self.specs = specs
        self.episodes = episodes
        self.cache = ColumnCache(cache_bytes)
        self.files = list(files)
        self.first = first
        self.rows_index = rows_index
        self._episode_file = episode_file
        self._checked: set[int] = set(range(len(self.files))) if episode_file is None else set()
        self._layout: dict[int, tuple[np.ndarray, int]] = {}  # file -> (row group starts, column bytes)
        self.partial_reads = 0

    @classmethod
    def scan(
        cls,
        store: Store,
        files: Sequence[str],
        episodes: EpisodeIndex,
        specs: dict[str, Column],
        cache_bytes: int | None = DEFAULT_COLUMN_CACHE_BYTES,
    ) -> DataFiles:
        """Read every file's ``index`` and ``episode_index`` now and check them against ``episodes``."""
        found = _scan(store, files, episodes, specs)
        return cls(store, *found, episodes, specs, cache_bytes)

    @classmethod
    def from_table(
        cls,
        store: Store,
        template: str,
        chunk_index: np.ndarray,
        file_index: np.ndarray,
        episodes: EpisodeIndex,
        specs: dict[str, Column],
        cache_bytes: int | None = DEFAULT_COLUMN_CACHE_BYTES,
    ) -> DataFiles:
        """Files named by ``template`` (``info.json``'s ``data_path``) at each episode's
        ``chunk_index``/``file_index`` (episode-table order); no file is read now.

        Raises:
            FileNotFoundError: a local file the table names does not exist.
            ValueError: two files would hold the same frame index.
        """
        pairs, inverse = np.unique(np.stack([chunk_index, file_index], axis=1), axis=0, return_inverse=True)
        inverse = inverse.reshape(-1).astype(np.int64)
        starts, ends = episodes.starts, episodes.ends
        empty = ends == starts
        inverse[empty] = -1  # an empty episode holds no row of any file
        names = [template.format(chunk_index=int(c), file_index=int(f)) for c, f in pairs.tolist()]
        rows: list[tuple[int, int, str, np.ndarray | None, int]] = []
        for j, rel in enumerate(names):
            eps = np.flatnonzero(inverse == j)
            if eps.size == 0:
                continue
            lo, hi = int(starts[eps[0]]), int(ends[eps[-1]])
            held = int((ends[eps] - starts[eps]).sum())
            idx = None
            if held != hi - lo:
                idx = np.concatenate([np.arange(starts[e], ends[e], dtype=np.int64) for e in eps.tolist()])
            rows.append((lo, hi - 1, rel, idx, j))
        rows.sort(key=lambda r: r[0])
        for (_, last, rel, _, _), (first, _, nxt, _, _) in zip(rows, rows[1:]):
            if first <= last:
                raise ValueError(
                    f"data files {store.name(rel)!r} and {store.name(nxt)!r} both hold frame index {first} "
                    "(from meta/episodes' data/chunk_index and data/file_index)"
                )
        if store.local:
            for r in rows:
                if not store.exists(r[2]):
                    raise FileNotFoundError(
                        f"data file {store.name(r[2])!r} named by meta/episodes does not exist"
                    )
        renumber = np.full(len(names) + 1, -1, dtype=np.int64)  # name number -> sorted file number
        for k, r in enumerate(rows):
            renumber[r[4]] = k
        episode_file = renumber[inverse]  # -1 stays -1 (renumber[-1] is the spare slot)
        firsts = np.array([r[0] for r in rows], dtype=np.int64)
        return cls(
            store,
            [r[2] for r in rows],
            firsts,
            [r[3] for r in rows],
            episodes,
            specs,
            cache_bytes,
            episode_file=episode_file,
        )

    def name(self, k: int) -> str:
        """Path or URL of file ``k``."""
        return self.store.name(self.files[k])

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.partial_reads = 0

    # ------------------------------------------------------------------ reads
    def fetch(self, groups: list[tuple[np.ndarray, tuple[str, ...]]]) -> list[dict[str, np.ndarray]]:
        """Values of each group's columns at its frames, with one gather per file touched."""
        sizes = [g[0].size for g in groups]
        names = list(dict.fromkeys(n for g in groups for n in g[1]))
        frames = np.concatenate([g[0] for g in groups]) if groups else np.zeros(0, np.int64)
        if frames.size == 0:
            merged = {n: self._empty(n) for n in names}
        else:
            file_of, rows = self.locate(frames)
            merged = {}
            if file_of[0] == file_of[-1] and (file_of == file_of[0]).all():
                parts = [np.arange(frames.size)]
            else:
                order = np.argsort(file_of, kind="stable")
                parts = np.split(order, np.flatnonzero(np.diff(file_of[order])) + 1)
            for sel in parts:
                k = int(file_of[sel[0]])
                taken = self.take_rows(k, rows[sel], names)
                for n in names:
                    arr = taken[n]
                    out = merged.get(n)
                    if out is None:
                        if len(parts) == 1:
                            merged[n] = arr
                            continue
                        out = merged[n] = np.empty((frames.size, *arr.shape[1:]), dtype=arr.dtype)
                    elif out.shape[1:] != arr.shape[1:]:
                        shapes = sorted({out.shape[1:], arr.shape[1:]})
                        raise ValueError(
                            f"column {n!r} holds lists of different lengths across files: {shapes}"
                        )
                    out[sel] = arr
        result, start = [], 0
        for (_, cols), size in zip(groups, sizes):
            result.append({n: merged[n][start : start + size] for n in cols})
            start += size
        return result

    def locate(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """File number and row of each global frame index (frames known to exist)."""
        k = np.searchsorted(self.first, frames, side="right") - 1
        rows = frames - self.first[k]
        if all(idx is None for idx in self.rows_index):
            return k, rows
        for f in np.unique(k).tolist():
            idx = self.rows_index[f]
            if idx is not None:
                sel = k == f
                rows[sel] = np.searchsorted(idx, frames[sel])
        return k, rows

    def take_rows(self, k: int, rows: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
        """The one vectorized gather per file touched by a request: ``{column: values at rows}``.
        A file not yet checked against the episode table is checked first (:meth:`check`)."""
        limit = self.cache.max_bytes
        if limit is not None and not self.cache.holds(k) and self._layout_of(k)[1] > limit:
            self.check(k)
            return self._read_rows(k, rows, names)
        cols = self.columns(k)
        return {n: cols[n][rows] for n in names}

    def _layout_of(self, k: int) -> tuple[np.ndarray, int]:
        """File ``k``'s row group start rows (plus the end) and its needed columns' uncompressed bytes."""
        got = self._layout.get(k)
        if got is None:
            meta = read_metadata(self.store, self.files[k])
            sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
            starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
            got = self._layout[k] = (starts, columns_uncompressed_bytes(meta, list(self.specs)))
        return got

    def _read_rows(self, k: int, rows: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
        """``rows`` of file ``k`` from only the row groups that hold them (not cached)."""
        starts, _ = self._layout_of(k)
        group = np.searchsorted(starts, rows, side="right") - 1
        needed = np.unique(group)
        sizes = starts[needed + 1] - starts[needed]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        local = rows - starts[group] + offsets[np.searchsorted(needed, group)]
        table = read_row_groups(self.store, self.files[k], needed.tolist(), names)
        self.partial_reads += 1
        return {n: to_numpy(self.specs[n], table.column(n), self.name(k))[local] for n in names}

    def columns(self, k: int) -> dict[str, np.ndarray]:
        """File ``k``'s needed columns as numpy arrays, from the cache or read (memory-mapped)."""
        return self.cache.get(k, lambda: self._read(k))

    def _read(self, k: int) -> dict[str, np.ndarray]:
        if k in self._checked:
            table = read_table(self.store, self.files[k], list(self.specs))
        else:  # checked from the same read: the index columns come with the data columns
            with parquet_file(self.store, self.files[k]) as pf:
                _check_schema(self.name(k), pf.schema_arrow, self.specs)
                table = pf.read(columns=list(dict.fromkeys(["index", "episode_index", *self.specs])))
            name = self.name(k)
            self._check_rows(k, int_column(table, "index", name), int_column(table, "episode_index", name))
        return {n: to_numpy(self.specs[n], table.column(n), self.name(k)) for n in self.specs}

    def _empty(self, name: str) -> np.ndarray:
        spec = self.specs[name]
        if spec.kind == "string":
            return np.zeros(0, dtype=object)
        width = spec.shape if spec.kind != "list" else (0,)
        return np.zeros((0, *width), dtype=leaf(spec.arrow_type).to_pandas_dtype())

    # ------------------------------------------------------------------ validation
    def check(self, k: int) -> None:
        """Check file ``k`` against the episode table (once per process): its columns, and that its
        ``index``/``episode_index`` rows are exactly the frames of the episodes the table places in it.

        Raises:
            ValueError: naming the file, with the messages of :meth:`scan`.
        """
        if k in self._checked:
            return
        self._check_rows(k, *_read_index(self.store, self.files[k], self.specs))

    def _check_rows(self, k: int, idx: np.ndarray, epi: np.ndarray) -> None:
        """:meth:`check` of file ``k`` whose ``index`` and ``episode_index`` columns are given."""
        placed = self._episode_file
        assert placed is not None
        eps = self.episodes
        name = self.name(k)
        ep = _episodes_of(name, idx, epi, eps)
        mine = placed == k
        elsewhere = np.flatnonzero(~mine[ep])
        if elsewhere.size:
            row = int(elsewhere[0])
            other = int(placed[ep[row]])
            where = self.store.name(self.files[other]) if other >= 0 else "no data file"
            raise ValueError(
                f"data file {name!r} row {row} (index {int(idx[row])}) belongs to episode "
                f"{int(eps.episode_ids[ep[row]])}, which meta/episodes places in {where!r}"
            )
        counts = np.bincount(ep, minlength=eps.num_episodes)
        lengths = eps.lengths
        if (bad := np.flatnonzero(mine & (counts != lengths))).size:
            b = int(bad[0])
            raise ValueError(
                f"episode {int(eps.episode_ids[b])} has length {int(lengths[b])} in meta/episodes "
                f"but {int(counts[b])} rows in data/ (data file {name!r}, where meta/episodes places it)"
            )
        self._checked.add(k)


def _read_index(store: Store, rel: str, specs: dict[str, Column]) -> tuple[np.ndarray, np.ndarray]:
    """A data file's ``index`` and ``episode_index``, after checking it has the ``specs`` columns."""
    name = store.name(rel)
    with parquet_file(store, rel) as pf:
        _check_schema(name, pf.schema_arrow, specs)
        table = pf.read(columns=["index", "episode_index"])
    return int_column(table, "index", name), int_column(table, "episode_index", name)


def _check_schema(name: str, schema: pa.Schema, specs: dict[str, Column]) -> None:
    """The data file ``name`` has ``index``, ``episode_index`` and the ``specs`` columns, of their types."""
    for col in ("index", "episode_index", *specs):
        if col not in schema.names:
            raise ValueError(f"data file {name!r} has no column {col!r}")
    for col, spec in specs.items():
        t = schema.field(col).type
        if signature(describe(col, t)) != signature(spec):
            raise ValueError(
                f"column {col!r} of data file {name!r} has type {t}, other files {spec.arrow_type}"
            )


def _episodes_of(name: str, idx: np.ndarray, epi: np.ndarray, eps: EpisodeIndex) -> np.ndarray:
    """Episode position of each row, checking the rows are sorted, lie in episodes and carry their
    episode's ``episode_index``."""
    steps = np.diff(idx)
    if (steps <= 0).any():
        row = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise ValueError(
            f"data file {name!r} must be sorted by a unique 'index': row {row} has index "
            f"{int(idx[row])} after {int(idx[row - 1])}"
        )
    try:
        ep = eps.episode_of(idx)
    except ValueError:
        ep = np.searchsorted(eps.starts, idx, side="right") - 1
        ok = (ep >= 0) & (idx < eps.ends[np.maximum(ep, 0)])
        row = int(np.flatnonzero(~ok)[0])
        raise ValueError(
            f"data file {name!r} row {row} has index {int(idx[row])}, "
            "which lies in no episode of meta/episodes"
        ) from None
    wrong = np.flatnonzero(eps.episode_ids[ep] != epi)
    if wrong.size:
        row = int(wrong[0])
        raise ValueError(
            f"data file {name!r} row {row} (index {int(idx[row])}) has episode_index "
            f"{int(epi[row])}, but meta/episodes places that frame in episode "
            f"{int(eps.episode_ids[ep[row]])}"
        )
    return ep


def _scan(
    store: Store, files: Sequence[str], eps: EpisodeIndex, specs: dict[str, Column]
) -> tuple[list[str], np.ndarray, list[np.ndarray | None]]:
    """Check every data file against the episode table; return files sorted by first index, their
    first indices, and per-file ``index`` arrays for files whose index is not contiguous."""
    counts = np.zeros(eps.num_episodes, dtype=np.int64)
    found: list[tuple[int, int, str, np.ndarray | None]] = []
    for rel in files:
        name = store.name(rel)
        idx, epi = _read_index(store, rel, specs)
        if idx.size == 0:
            continue
        ep = _episodes_of(name, idx, epi, eps)
        counts += np.bincount(ep, minlength=eps.num_episodes)
        contiguous = int(idx[-1] - idx[0]) + 1 == idx.size
        found.append((int(idx[0]), int(idx[-1]), rel, None if contiguous else idx))
    found.sort(key=lambda f: f[0])
    for (_, last, rel, _), (first, _, nxt, _) in zip(found, found[1:]):
        if first <= last:
            raise ValueError(
                f"data files {store.name(rel)!r} and {store.name(nxt)!r} both hold frame index {first}"
            )
    lengths = eps.lengths
    if (bad := np.flatnonzero(counts != lengths)).size:
        b = int(bad[0])
        raise ValueError(
            f"data files hold {int(counts.sum())} rows but meta/episodes lists {eps.num_frames} frames; "
            f"episode {int(eps.episode_ids[b])} has length {int(lengths[b])} in meta/episodes "
            f"but {int(counts[b])} rows in data/"
        )
    firsts = np.array([f[0] for f in found], dtype=np.int64)
    return [f[2] for f in found], firsts, [f[3] for f in found]
