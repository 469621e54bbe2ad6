"""Frame reads from the Parquet data files (``data/chunk-*/file-*.parquet``): which file and row holds a
frame, a bounded per-process column cache, and one vectorized gather per file touched by a request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..core.layout import EpisodeIndex
from .column_cache import DEFAULT_COLUMN_CACHE_BYTES, ColumnCache
from .columns import Column, describe, leaf, signature, to_numpy
from .episode_table import int_column
from .parquet_io import read_metadata, read_row_groups, read_schema, read_table

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
        files: list[Path],
        episodes: EpisodeIndex,
        specs: dict[str, Column],
        cache_bytes: int | None = DEFAULT_COLUMN_CACHE_BYTES,
    ) -> None:
        self.specs = specs
        self.episodes = episodes
        self.cache = ColumnCache(cache_bytes)
        self.files, self.first, self.rows_index = self._scan(files)
        self._layout: dict[int, tuple[np.ndarray, int]] = {}  # file -> (row group starts, column bytes)
        self.partial_reads = 0

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
        """The one vectorized gather per file touched by a request: ``{column: values at rows}``."""
        limit = self.cache.max_bytes
        if limit is not None and not self.cache.holds(k) and self._layout_of(k)[1] > limit:
            return self._read_rows(k, rows, names)
        cols = self.columns(k)
        return {n: cols[n][rows] for n in names}

    def _layout_of(self, k: int) -> tuple[np.ndarray, int]:
        """File ``k``'s row group start rows (plus the end) and its needed columns' uncompressed bytes."""
        got = self._layout.get(k)
        if got is None:
            meta = read_metadata(self.files[k])
            sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
            starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
            nbytes = 0
            for g in range(meta.num_row_groups):
                rg = meta.row_group(g)
                for c in range(rg.num_columns):
                    col = rg.column(c)
                    path = col.path_in_schema
                    if any(path == n or path.startswith(n + ".") for n in self.specs):
                        nbytes += col.total_uncompressed_size
            got = self._layout[k] = (starts, int(nbytes))
        return got

    def _read_rows(self, k: int, rows: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
        """``rows`` of file ``k`` from only the row groups that hold them (not cached)."""
        starts, _ = self._layout_of(k)
        group = np.searchsorted(starts, rows, side="right") - 1
        needed = np.unique(group)
        sizes = starts[needed + 1] - starts[needed]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        local = rows - starts[group] + offsets[np.searchsorted(needed, group)]
        table = read_row_groups(self.files[k], needed.tolist(), names)
        self.partial_reads += 1
        return {n: to_numpy(self.specs[n], table.column(n), self.files[k])[local] for n in names}

    def columns(self, k: int) -> dict[str, np.ndarray]:
        """File ``k``'s needed columns as numpy arrays, from the cache or read (memory-mapped)."""
        return self.cache.get(k, lambda: self._read(k))

    def _read(self, k: int) -> dict[str, np.ndarray]:
        table = read_table(self.files[k], list(self.specs))
        return {n: to_numpy(self.specs[n], table.column(n), self.files[k]) for n in self.specs}

    def _empty(self, name: str) -> np.ndarray:
        spec = self.specs[name]
        if spec.kind == "string":
            return np.zeros(0, dtype=object)
        width = spec.shape if spec.kind != "list" else (0,)
        return np.zeros((0, *width), dtype=leaf(spec.arrow_type).to_pandas_dtype())

    # ------------------------------------------------------------------ validation
    def _scan(self, files: list[Path]) -> tuple[list[Path], np.ndarray, list[np.ndarray | None]]:
        """Check every data file against the episode table; return files sorted by first index,
        their first indices, and per-file ``index`` arrays for files whose index is not contiguous."""
        eps = self.episodes
        counts = np.zeros(eps.num_episodes, dtype=np.int64)
        found: list[tuple[int, int, Path, np.ndarray | None]] = []
        for path in files:
            names = read_schema(path)
            for name in ("index", "episode_index", *self.specs):
                if name not in names.names:
                    raise ValueError(f"data file {str(path)!r} has no column {name!r}")
            for name, spec in self.specs.items():
                t = names.field(name).type
                if signature(describe(name, t)) != signature(spec):
                    raise ValueError(
                        f"column {name!r} of data file {str(path)!r} has type {t}, "
                        f"other files {spec.arrow_type}"
                    )
            table = read_table(path, ["index", "episode_index"])
            idx = int_column(table, "index", path)
            if idx.size == 0:
                continue
            epi = int_column(table, "episode_index", path)
            steps = np.diff(idx)
            if (steps <= 0).any():
                row = int(np.flatnonzero(steps <= 0)[0]) + 1
                raise ValueError(
                    f"data file {str(path)!r} must be sorted by a unique 'index': row {row} has index "
                    f"{int(idx[row])} after {int(idx[row - 1])}"
                )
            try:
                ep = eps.episode_of(idx)
            except ValueError:
                ep = np.searchsorted(eps.starts, idx, side="right") - 1
                ok = (ep >= 0) & (idx < eps.ends[np.maximum(ep, 0)])
                row = int(np.flatnonzero(~ok)[0])
                raise ValueError(
                    f"data file {str(path)!r} row {row} has index {int(idx[row])}, "
                    "which lies in no episode of meta/episodes"
                ) from None
            wrong = np.flatnonzero(eps.episode_ids[ep] != epi)
            if wrong.size:
                row = int(wrong[0])
                raise ValueError(
                    f"data file {str(path)!r} row {row} (index {int(idx[row])}) has episode_index "
                    f"{int(epi[row])}, but meta/episodes places that frame in episode "
                    f"{int(eps.episode_ids[ep[row]])}"
                )
            counts += np.bincount(ep, minlength=eps.num_episodes)
            contiguous = int(idx[-1] - idx[0]) + 1 == idx.size
            found.append((int(idx[0]), int(idx[-1]), path, None if contiguous else idx))
        found.sort(key=lambda f: f[0])
        for (_, last, path, _), (first, _, nxt, _) in zip(found, found[1:]):
            if first <= last:
                raise ValueError(f"data files {str(path)!r} and {str(nxt)!r} both hold frame index {first}")
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
