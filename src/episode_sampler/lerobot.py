"""LeRobot v3 datasets on disk, read with pyarrow: the episode table and a map-style frame dataset.

Layout (``codebase_version`` ``v3.x``)::

    root/meta/info.json
    root/meta/episodes/chunk-*/file-*.parquet   one row per episode
    root/data/chunk-*/file-*.parquet            one row per frame, whole episodes, sorted by ``index``
"""

from __future__ import annotations

import json
import operator
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import Dataset

from ._validate import int_array
from .episodes import EpisodeIndex

__all__ = ["LeRobotFrames", "read_episode_index", "read_info"]

_FROM, _TO = "dataset_from_index", "dataset_to_index"


# ---------------------------------------------------------------------------------------------- metadata
def read_info(root: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse ``root/meta/info.json`` of a LeRobot v3 dataset.

    Warns (``UserWarning``) when ``codebase_version`` is missing or not ``v3.x``.

    Raises:
        FileNotFoundError: ``root`` or ``meta/info.json`` does not exist.
        ValueError: invalid JSON, not a JSON object, or a v1/v2 dataset (convert it to v3 with LeRobot).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"LeRobot dataset root {str(root)!r} is not a directory")
    path = root / "meta" / "info.json"
    if not path.is_file():
        raise FileNotFoundError(f"LeRobot dataset {str(root)!r} has no {str(path)!r}")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{str(path)!r} is not valid JSON: {exc}") from None
    if not isinstance(info, dict):
        raise ValueError(f"{str(path)!r} must hold a JSON object, got {type(info).__name__}")
    version = info.get("codebase_version")
    if isinstance(version, str) and version.startswith(("v1", "v2")):
        raise ValueError(
            f"{str(path)!r} has codebase_version {version!r}: LeRobot {version} datasets store one file "
            "per episode and are not supported; convert the dataset to v3.0 with LeRobot's converter"
        )
    if not (isinstance(version, str) and version.startswith("v3")):
        warnings.warn(
            f"{str(path)!r} has codebase_version {version!r}, expected 'v3.x'; reading it as v3",
            UserWarning,
            stacklevel=2,
        )
    return info


def read_episode_index(root: str | os.PathLike[str]) -> EpisodeIndex:
    """Episodes of a LeRobot v3 dataset from ``meta/episodes/chunk-*/file-*.parquet``.

    All metadata files are read (sorted by path), concatenated and sorted by ``episode_index``.
    Frame ranges come from ``dataset_from_index``/``dataset_to_index`` when present, else from the
    cumulative ``length`` starting at frame 0. Episode ids are kept (:attr:`EpisodeIndex.episode_ids`).
    Unknown columns are ignored.

    Raises:
        FileNotFoundError: missing root, ``meta/info.json``, ``meta/episodes`` or metadata files.
        ValueError: a missing or null column (named with its file), duplicate episode ids, ``length``
            disagreeing with the bounds, ``total_frames``/``total_episodes`` of ``info.json``
            disagreeing with the table, or bounds that overlap/are unsorted.
    """
    root = Path(root)
    return _read_episodes(root, read_info(root))


def _read_episodes(root: Path, info: dict[str, Any]) -> EpisodeIndex:
    ep_dir = root / "meta" / "episodes"
    if not ep_dir.is_dir():
        raise FileNotFoundError(f"LeRobot dataset {str(root)!r} has no {str(ep_dir)!r} directory")
    files = sorted(ep_dir.glob("chunk-*/file-*.parquet"))
    if not files:
        pattern = ep_dir / "chunk-*/file-*.parquet"
        raise FileNotFoundError(f"no episode metadata files matching {str(pattern)!r}")

    cols: dict[str, list[np.ndarray]] = {"episode_index": [], "length": [], _FROM: [], _TO: []}
    with_bounds: list[bool] = []
    for path in files:
        names = set(pq.read_schema(path, memory_map=True).names)
        has_bounds = _FROM in names or _TO in names
        if has_bounds:
            need = ["episode_index", _FROM, _TO] + (["length"] if "length" in names else [])
        else:
            need = ["episode_index", "length"]
        for name in need:
            if name not in names:
                raise ValueError(f"episode metadata file {str(path)!r} has no column {name!r}")
        table = pq.read_table(path, columns=need, memory_map=True)
        for name in need:
            cols[name].append(_int_column(table, name, path))
        with_bounds.append(has_bounds)
        if has_bounds and "length" not in names:
            cols["length"].append(cols[_TO][-1] - cols[_FROM][-1])

    if any(with_bounds) and not all(with_bounds):
        bad = files[with_bounds.index(False)]
        raise ValueError(
            f"episode metadata file {str(bad)!r} lacks {_FROM!r}/{_TO!r}, present in other files"
        )
    ids = np.concatenate(cols["episode_index"])
    lengths = np.concatenate(cols["length"])
    order = np.argsort(ids, kind="stable")
    ids, lengths = ids[order], lengths[order]
    if ids.size > 1 and (dup := np.flatnonzero(ids[1:] == ids[:-1])).size:
        raise ValueError(f"episode_index {int(ids[dup[0]])} appears twice in {str(ep_dir)!r}")
    if lengths.size and lengths.min() < 0:
        bad = int(np.flatnonzero(lengths < 0)[0])
        raise ValueError(f"episode {int(ids[bad])} has negative length {int(lengths[bad])}")
    if all(with_bounds):
        starts = np.concatenate(cols[_FROM])[order]
        ends = np.concatenate(cols[_TO])[order]
        if (bad_len := np.flatnonzero(ends - starts != lengths)).size:
            b = int(bad_len[0])
            raise ValueError(
                f"episode {int(ids[b])}: length {int(lengths[b])} disagrees with "
                f"{_FROM}={int(starts[b])}, {_TO}={int(ends[b])}"
            )
    else:
        ends = np.cumsum(lengths)
        starts = ends - lengths
    try:
        episodes = EpisodeIndex(starts, ends, episode_ids=ids)
    except ValueError as exc:
        raise ValueError(f"invalid episode table in {str(ep_dir)!r}: {exc}") from exc
    _check_total(info, "total_episodes", episodes.num_episodes, root)
    _check_total(info, "total_frames", episodes.num_frames, root)
    return episodes


def _int_column(table: pa.Table, name: str, path: Path) -> np.ndarray:
    col = table.column(name)
    if not (pa.types.is_integer(col.type)):
        raise ValueError(f"column {name!r} of {str(path)!r} must hold integers, got {col.type}")
    if col.null_count:
        raise ValueError(f"column {name!r} of {str(path)!r} holds {col.null_count} null value(s)")
    return col.to_numpy().astype(np.int64, copy=False)


def _check_total(info: dict[str, Any], key: str, actual: int, root: Path) -> None:
    if key not in info:
        return
    value = info[key]
    if isinstance(value, bool) or not isinstance(value, int) or value != actual:
        raise ValueError(
            f"meta/info.json of {str(root)!r} says {key}={value!r} but meta/episodes lists {actual}"
        )


# ---------------------------------------------------------------------------------------------- columns
@dataclass(frozen=True)
class _Column:
    """How a data column converts: ``kind`` in scalar | fixed | list | string; ``shape`` per row."""

    name: str
    kind: str
    arrow_type: pa.DataType
    shape: tuple[int, ...] = ()


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)


def _is_string(t: pa.DataType) -> bool:
    is_view = getattr(pa.types, "is_string_view", lambda _: False)
    return pa.types.is_string(t) or pa.types.is_large_string(t) or is_view(t)


def _describe(name: str, t: pa.DataType) -> _Column | None:
    """Column conversion for an Arrow type, ``None`` if unsupported (images, structs, ...)."""
    if _is_number(t):
        return _Column(name, "scalar", t)
    if _is_string(t):
        return _Column(name, "string", t)
    if pa.types.is_fixed_size_list(t):
        shape, inner = [], t
        while pa.types.is_fixed_size_list(inner):
            shape.append(inner.list_size)
            inner = inner.value_type
        return _Column(name, "fixed", t, tuple(shape)) if _is_number(inner) else None
    if (pa.types.is_list(t) or pa.types.is_large_list(t)) and _is_number(t.value_type):
        return _Column(name, "list", t)
    return None


def _leaf(t: pa.DataType) -> pa.DataType:
    """Element type of (nested) list types, ``t`` itself otherwise."""
    while hasattr(t, "value_type"):
        t = t.value_type
    return t


def _signature(col: _Column | None) -> tuple[Any, ...] | None:
    """What must agree between files for a column: kind, row shape and element type."""
    return None if col is None else (col.kind, col.shape, _leaf(col.arrow_type))


def _to_numpy(col: _Column, data: pa.ChunkedArray, path: Path) -> np.ndarray:
    """Rows of one column as a numpy array ``[n, *shape]`` (object array of str for strings)."""
    if data.null_count:
        raise ValueError(f"column {col.name!r} of {str(path)!r} holds null values")
    if col.kind == "scalar":
        return data.to_numpy()
    if col.kind == "string":
        return data.to_numpy(zero_copy_only=False)
    arr = data.combine_chunks() if data.num_chunks != 1 else data.chunk(0)
    n = len(arr)
    if col.kind == "fixed":
        for _ in col.shape:
            arr = arr.flatten()
            if arr.null_count:
                raise ValueError(f"column {col.name!r} of {str(path)!r} holds null values")
        return arr.to_numpy(zero_copy_only=False).reshape(n, *col.shape)
    offsets = arr.offsets.to_numpy()
    sizes = np.diff(offsets)
    if sizes.size and (sizes != sizes[0]).any():
        raise ValueError(
            f"column {col.name!r} of {str(path)!r} holds lists of different lengths "
            f"({int(sizes.min())} and {int(sizes.max())}); they cannot be stacked"
        )
    values = arr.flatten()
    if values.null_count:
        raise ValueError(f"column {col.name!r} of {str(path)!r} holds null values")
    return values.to_numpy(zero_copy_only=False).reshape(n, int(sizes[0]) if sizes.size else 0)


# ---------------------------------------------------------------------------------------------- dataset
class LeRobotFrames(Dataset):
    """Map-style torch dataset over the frames of a LeRobot v3 dataset, read memory-mapped with pyarrow.

    Item ``i`` is the ``i``-th frame in global ``index`` order, that is
    ``episodes.frame_at(i)``; for the usual datasets whose ``index`` runs ``0 .. total_frames - 1``
    item ``i`` is the frame with ``index == i``. An item is a dict: numeric scalar columns as 0-d
    tensors, fixed-size (or equal-length) list columns as 1-d tensors (dtype kept from the file),
    strings as ``str``.

    ``delta_indices`` follows LeRobot's convention: for key ``k`` with offsets ``d`` the item holds
    ``k`` as the frames ``i + d`` clamped to the frame's episode, stacked to ``[len(d), ...]``, and
    ``k + "_is_pad"``, a bool tensor True where ``i + d`` fell outside the episode. A windowed key
    replaces the plain column of the same name.

    Data files are opened lazily (memory-mapped) in each process and are not pickled, so instances
    can be sent to DataLoader workers or process pools cheaply.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        columns: Sequence[str] | None = None,
        delta_indices: Mapping[str, Sequence[int]] | None = None,
    ) -> None:
        """Open the dataset at ``root``.

        Args:
            root: dataset directory (holding ``meta/`` and ``data/``).
            columns: data columns returned per item, in this order; ``None`` means every column of a
                supported type (numbers, strings, numeric lists). Keys of ``delta_indices`` are added.
            delta_indices: per key, integer frame offsets (e.g. ``{"action": range(16)}``).

        Raises:
            FileNotFoundError: missing metadata or data files.
            ValueError: unknown or unsupported columns (available ones are listed), empty or duplicate
                entries, or data files that disagree with the episode table.
            TypeError: non-string column names or non-integer offsets.
        """
        self.root = Path(root)
        self.info = read_info(self.root)
        self.episodes = _read_episodes(self.root, self.info)
        files = sorted((self.root / "data").glob("chunk-*/file-*.parquet"))
        if not files:
            raise FileNotFoundError(
                f"no data files matching {str(self.root / 'data' / 'chunk-*/file-*.parquet')!r}"
            )
        schema = pq.read_schema(files[0], memory_map=True)
        available = {n: _describe(n, schema.field(n).type) for n in schema.names}
        self._deltas = _check_deltas(delta_indices, available)
        self._plain = _check_columns(columns, available, self._deltas)
        self._specs = {n: available[n] for n in (*self._plain, *self._deltas)}
        self._files, self._first, self._rows_index = self._scan(files)
        self._tables: list[dict[str, np.ndarray] | None] = [None] * len(self._files)
        starts, ends = self.episodes.starts, self.episodes.ends
        # positions are frame indices when episodes tile 0 .. num_frames - 1 (the usual case)
        self._identity = bool(starts.size == 0 or (starts[0] == 0 and np.array_equal(starts[1:], ends[:-1])))

    # ------------------------------------------------------------------ public API
    @property
    def columns(self) -> tuple[str, ...]:
        """Names of the plain (non-windowed) columns of each item."""
        return self._plain

    @property
    def delta_indices(self) -> dict[str, tuple[int, ...]]:
        """Window offsets per key."""
        return {k: tuple(v.tolist()) for k, v in self._deltas.items()}

    @property
    def files(self) -> tuple[Path, ...]:
        """Data files, sorted by their first frame index."""
        return tuple(self._files)

    def __len__(self) -> int:
        return self.episodes.num_frames

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Frame ``index`` as a dict of tensors (and strings).

        Raises:
            TypeError: ``index`` is not an int.
            IndexError: ``index`` outside ``[0, len(self))``.
        """
        try:
            if isinstance(index, (bool, np.bool_)):
                raise TypeError
            position = operator.index(index)
        except TypeError:
            raise TypeError(
                f"LeRobotFrames index must be an int, got {type(index).__name__} {index!r}"
            ) from None
        return self.__getitems__([position])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """Several frames at once (used by torch's DataLoader): one vectorized gather per file touched.

        Raises:
            TypeError: non-integer indices.
            IndexError: an index outside ``[0, len(self))``.
        """
        pos = int_array("indices", indices)
        batch = self.get_batch(pos)
        n = pos.size
        split = {k: (v.unbind(0) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
        return [{k: v[j] for k, v in split.items()} for j in range(n)]

    def get_batch(self, indices: Sequence[int]) -> dict[str, Any]:
        """Several frames already collated: tensors stacked on a new first dim, strings as lists.

        Windowed keys have shape ``[len(indices), len(offsets), ...]`` with ``<key>_is_pad`` of shape
        ``[len(indices), len(offsets)]``.

        Raises:
            TypeError: non-integer indices.
            IndexError: an index outside ``[0, len(self))``.
        """
        pos = int_array("indices", indices)
        n = len(self)
        if pos.size and (pos.min() < 0 or pos.max() >= n):
            bad = int(pos[(pos < 0) | (pos >= n)][0])
            raise IndexError(f"index {bad} is out of range for LeRobotFrames of length {n}")
        frames = pos if self._identity else self.episodes.frame_at(pos)
        groups: list[tuple[np.ndarray, tuple[str, ...]]] = [(frames, self._plain)]
        pads: dict[str, np.ndarray] = {}
        if self._deltas:
            ep = self.episodes.episode_of(frames) if frames.size else np.zeros(0, np.int64)
            lo = self.episodes.starts[ep][:, None]
            hi = self.episodes.ends[ep][:, None] - 1
            for key, offs in self._deltas.items():
                query = frames[:, None] + offs[None, :]
                pads[key] = (query < lo) | (query > hi)
                groups.append((np.clip(query, lo, hi).reshape(-1), (key,)))
        values = self._fetch(groups)
        out: dict[str, Any] = {}
        for name in self._plain:
            out[name] = _as_output(values[0][name])
        for g, (key, offs) in enumerate(self._deltas.items(), start=1):
            arr = values[g][key]
            out[key] = _as_output(arr.reshape(pos.size, offs.size, *arr.shape[1:]))
            out[f"{key}_is_pad"] = torch.from_numpy(pads[key])
        return out

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_tables"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._tables = [None] * len(self._files)

    def __repr__(self) -> str:
        return (
            f"LeRobotFrames(root={str(self.root)!r}, frames={len(self)}, "
            f"episodes={self.episodes.num_episodes}, files={len(self._files)}, "
            f"columns={list(self._plain)}, delta_indices={self.delta_indices})"
        )

    # ------------------------------------------------------------------ internals
    def _scan(self, files: list[Path]) -> tuple[list[Path], np.ndarray, list[np.ndarray | None]]:
        """Check every data file against the episode table; return files sorted by first index,
        their first indices, and per-file ``index`` arrays for files whose index is not contiguous."""
        eps = self.episodes
        counts = np.zeros(eps.num_episodes, dtype=np.int64)
        found: list[tuple[int, int, Path, np.ndarray | None]] = []
        for path in files:
            names = pq.read_schema(path, memory_map=True)
            for name in ("index", "episode_index", *self._specs):
                if name not in names.names:
                    raise ValueError(f"data file {str(path)!r} has no column {name!r}")
            for name, spec in self._specs.items():
                t = names.field(name).type
                if _signature(_describe(name, t)) != _signature(spec):
                    raise ValueError(
                        f"column {name!r} of data file {str(path)!r} has type {t}, "
                        f"other files {spec.arrow_type}"
                    )
            table = pq.read_table(path, columns=["index", "episode_index"], memory_map=True)
            idx = _int_column(table, "index", path)
            if idx.size == 0:
                continue
            epi = _int_column(table, "episode_index", path)
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
        first = np.array([f[0] for f in found], dtype=np.int64)
        return [f[2] for f in found], first, [f[3] for f in found]

    def _columns(self, k: int) -> dict[str, np.ndarray]:
        """File ``k``'s needed columns, read once per process (memory-mapped) and kept as numpy arrays."""
        if self._tables is None:
            self._tables = [None] * len(self._files)
        cols = self._tables[k]
        if cols is None:
            table = pq.read_table(self._files[k], columns=list(self._specs), memory_map=True)
            cols = {n: _to_numpy(self._specs[n], table.column(n), self._files[k]) for n in self._specs}
            self._tables[k] = cols
        return cols

    def _take_rows(self, k: int, rows: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
        """The one vectorized gather per file touched by a request: ``{column: values at rows}``."""
        cols = self._columns(k)
        return {n: cols[n][rows] for n in names}

    def _locate(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """File number and row of each global frame index (frames known to exist)."""
        k = np.searchsorted(self._first, frames, side="right") - 1
        rows = frames - self._first[k]
        if all(idx is None for idx in self._rows_index):
            return k, rows
        for f in np.unique(k).tolist():
            idx = self._rows_index[f]
            if idx is not None:
                sel = k == f
                rows[sel] = np.searchsorted(idx, frames[sel])
        return k, rows

    def _fetch(self, groups: list[tuple[np.ndarray, tuple[str, ...]]]) -> list[dict[str, np.ndarray]]:
        """Values of each group's columns at its frames, with one gather per file touched."""
        sizes = [g[0].size for g in groups]
        names = list(dict.fromkeys(n for g in groups for n in g[1]))
        frames = np.concatenate([g[0] for g in groups]) if groups else np.zeros(0, np.int64)
        if frames.size == 0:
            merged = {n: self._merge(n, []) for n in names}
        else:
            file_of, rows = self._locate(frames)
            merged = {}
            if file_of[0] == file_of[-1] and (file_of == file_of[0]).all():
                parts = [np.arange(frames.size)]
            else:
                order = np.argsort(file_of, kind="stable")
                parts = np.split(order, np.flatnonzero(np.diff(file_of[order])) + 1)
            for sel in parts:
                k = int(file_of[sel[0]])
                taken = self._take_rows(k, rows[sel], names)
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

    def _merge(self, name: str, pieces: list[np.ndarray]) -> np.ndarray:
        if not pieces:
            spec = self._specs[name]
            if spec.kind == "string":
                return np.zeros(0, dtype=object)
            width = spec.shape if spec.kind != "list" else (0,)
            return np.zeros((0, *width), dtype=_leaf(spec.arrow_type).to_pandas_dtype())
        if len(pieces) > 1 and len({p.shape[1:] for p in pieces}) > 1:
            shapes = sorted({p.shape[1:] for p in pieces})
            raise ValueError(f"column {name!r} holds lists of different lengths across files: {shapes}")
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


def _as_output(arr: np.ndarray) -> torch.Tensor | list[Any]:
    if arr.dtype == object:
        return arr.tolist()
    return torch.from_numpy(np.ascontiguousarray(arr))


def _check_deltas(
    delta_indices: Mapping[str, Sequence[int]] | None, available: dict[str, _Column | None]
) -> dict[str, np.ndarray]:
    if delta_indices is None:
        return {}
    if not isinstance(delta_indices, Mapping):
        raise TypeError(
            f"delta_indices must be a mapping of column -> offsets, got {type(delta_indices).__name__}"
        )
    out: dict[str, np.ndarray] = {}
    for key, offsets in delta_indices.items():
        _check_name("delta_indices", key, available)
        offs = int_array(f"delta_indices[{key!r}]", offsets)
        if offs.size == 0:
            raise ValueError(f"delta_indices[{key!r}] must hold at least one offset")
        out[key] = offs
    return out


def _check_columns(
    columns: Sequence[str] | None, available: dict[str, _Column | None], deltas: dict[str, np.ndarray]
) -> tuple[str, ...]:
    if columns is None:
        names = [n for n, spec in available.items() if spec is not None]
    else:
        if isinstance(columns, str) or not isinstance(columns, Sequence):
            raise TypeError(f"columns must be a sequence of column names, got {type(columns).__name__}")
        names = list(columns)
        for name in names:
            _check_name("columns", name, available)
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise ValueError(f"columns lists {dup!r} twice")
    return tuple(n for n in names if n not in deltas)


def _check_name(what: str, name: Any, available: dict[str, _Column | None]) -> None:
    if not isinstance(name, str):
        raise TypeError(f"{what} must name columns with str, got {type(name).__name__} {name!r}")
    usable = sorted(n for n, spec in available.items() if spec is not None)
    if name not in available:
        raise ValueError(f"{what}: unknown column {name!r}; available columns: {usable}")
    if available[name] is None:
        raise ValueError(
            f"{what}: column {name!r} has unsupported type for LeRobotFrames; supported columns: {usable}"
        )
