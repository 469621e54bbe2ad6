"""The episode table of a LeRobot v3 dataset (``meta/episodes/chunk-*/file-*.parquet``) as an
:class:`~episode_sampler.core.layout.EpisodeIndex`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from ..core.layout import EpisodeIndex
from .columns import numeric_numpy
from .meta import read_info
from .parquet_io import parquet_file
from .storage import LocalStore, Store, as_store

__all__ = [
    "EPISODES_DIR",
    "episode_files",
    "int_column",
    "lerobot_layout",
    "read_episode_index",
    "read_episode_table",
    "read_episodes",
]

_FROM, _TO = "dataset_from_index", "dataset_to_index"
EPISODES_DIR = "meta/episodes"
_PATTERN = "chunk-*/file-*.parquet"
_EPISODES_PATH = EPISODES_DIR + "/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"


def read_episode_index(root: str | os.PathLike[str] | Store) -> EpisodeIndex:
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
    store = as_store(root)
    return read_episodes(store, read_info(store))


def lerobot_layout(
    root: str | os.PathLike[str] | Store | EpisodeIndex, options: dict[str, Any]
) -> tuple[EpisodeIndex, dict[str, Any]]:
    """A dataset's episodes, and sampler ``options`` that yield its item numbers.

    Item ``i`` of :class:`~episode_sampler.LeRobotFrames` is the ``i``-th frame in table order.
    When the ``index`` column runs from 0 without gaps (the usual case) these are the frame indices
    themselves; otherwise the returned options gain an ``absolute_to_relative_idx`` table mapping
    frame indices to item numbers (unless ``options`` already has one). ``options`` is not modified.
    ``root`` may be the dataset's already read episodes (``LeRobotFrames(...).episodes``): then
    nothing is read.

    Raises:
        FileNotFoundError, ValueError: as :func:`read_episode_index`.
    """
    index = root if isinstance(root, EpisodeIndex) else read_episode_index(root)
    starts, ends = index.starts, index.ends
    contiguous = starts.size == 0 or (starts[0] == 0 and np.array_equal(starts[1:], ends[:-1]))
    options = dict(options)
    if not contiguous and options.get("absolute_to_relative_idx") is None:
        relative = np.full(int(ends.max()), -1, dtype=np.int64)
        frames = index.frame_at(np.arange(index.num_frames, dtype=np.int64))
        relative[frames] = np.arange(index.num_frames, dtype=np.int64)
        options["absolute_to_relative_idx"] = relative
    return index, options


def read_episodes(root: str | os.PathLike[str] | Store, info: dict[str, Any]) -> EpisodeIndex:
    """:func:`read_episode_index` for an already parsed ``info.json`` (checked against its totals)."""
    return read_episode_table(as_store(root), info)[0]


def episode_files(store: Store, info: dict[str, Any]) -> list[str]:
    """The episode-table files ``meta/episodes/chunk-*/file-*.parquet``, sorted. A store that cannot
    list (plain HTTP) is probed in LeRobot's order (``update_chunk_file_indices``: ``file-(f+1)``, or
    ``chunk-(c+1)/file-000`` after ``chunks_size`` files) from ``chunk-000/file-000`` until a file is
    missing.

    Raises:
        FileNotFoundError: no such file (or a local dataset without ``meta/episodes``).
    """
    if isinstance(store, LocalStore) and not store.is_dir(EPISODES_DIR):
        raise FileNotFoundError(
            f"LeRobot dataset {store.root_name!r} has no {store.name(EPISODES_DIR)!r} directory"
        )
    files = store.list(EPISODES_DIR, _PATTERN)
    if files is None:
        size = info.get("chunks_size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            size = 1000  # LeRobot's DEFAULT_CHUNK_SIZE
        files = []
        at: tuple[int, int] | None = (0, 0)
        while at is not None:
            files.append(_EPISODES_PATH.format(chunk_index=at[0], file_index=at[1]))
            c, f = at
            nxt = (c + 1, 0) if f >= size - 1 else (c, f + 1)
            at = None
            for cand in dict.fromkeys([nxt, (c + 1, 0)]):
                if store.exists(_EPISODES_PATH.format(chunk_index=cand[0], file_index=cand[1])):
                    at = cand
                    break
        if not store.exists(files[0]):
            files = []
    if not files:
        pattern = store.name(f"{EPISODES_DIR}/{_PATTERN}")
        raise FileNotFoundError(f"no episode metadata files matching {pattern!r}")
    return files


def read_episode_table(
    store: Store, info: dict[str, Any], extra: Mapping[str, str] | None = None
) -> tuple[EpisodeIndex, dict[str, np.ndarray], dict[str, str]]:
    """The episode index and, in its order, the ``extra`` columns (name -> ``"int"`` or ``"number"``)
    that every episode-table file holds, read in one pass over the files. Returns the index, those
    columns (int64 / float64) and, for each extra column some file lacks, the name of that file.

    Raises:
        FileNotFoundError, ValueError: as :func:`read_episode_index`; an extra column with nulls or of
            the wrong type (named with its file).
    """
    extra = dict(extra or {})
    files = episode_files(store, info)
    ep_dir = store.name(EPISODES_DIR)
    cols: dict[str, list[np.ndarray]] = {"episode_index": [], "length": [], _FROM: [], _TO: []}
    extras: dict[str, list[np.ndarray]] = {n: [] for n in extra}
    lacking: dict[str, str] = {}
    with_bounds: list[bool] = []
    for rel in files:
        path = store.name(rel)
        with parquet_file(store, rel) as pf:
            names = set(pf.schema_arrow.names)
            has_bounds = _FROM in names or _TO in names
            if has_bounds:
                need = ["episode_index", _FROM, _TO] + (["length"] if "length" in names else [])
            else:
                need = ["episode_index", "length"]
            for name in need:
                if name not in names:
                    raise ValueError(f"episode metadata file {path!r} has no column {name!r}")
            for name in extra:
                if name not in names:
                    lacking.setdefault(name, path)
            wanted = [n for n in extra if n not in lacking]
            table = pf.read(columns=need + wanted)
        for name in need:
            cols[name].append(int_column(table, name, path))
        for name in wanted:
            extras[name].append(_extra_column(table, name, extra[name], path))
        with_bounds.append(has_bounds)
        if has_bounds and "length" not in names:
            cols["length"].append(cols[_TO][-1] - cols[_FROM][-1])

    if any(with_bounds) and not all(with_bounds):
        bad = store.name(files[with_bounds.index(False)])
        raise ValueError(f"episode metadata file {bad!r} lacks {_FROM!r}/{_TO!r}, present in other files")
    ids = np.concatenate(cols["episode_index"])
    lengths = np.concatenate(cols["length"])
    order = np.argsort(ids, kind="stable")
    ids, lengths = ids[order], lengths[order]
    if ids.size > 1 and (dup := np.flatnonzero(ids[1:] == ids[:-1])).size:
        raise ValueError(f"episode_index {int(ids[dup[0]])} appears twice in {ep_dir!r}")
    if lengths.size and lengths.min() < 0:
        neg = int(np.flatnonzero(lengths < 0)[0])
        raise ValueError(f"episode {int(ids[neg])} has negative length {int(lengths[neg])}")
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
        raise ValueError(f"invalid episode table in {ep_dir!r}: {exc}") from exc
    _check_total(info, "total_episodes", episodes.num_episodes, store.root_name)
    _check_total(info, "total_frames", episodes.num_frames, store.root_name)
    out = {n: np.concatenate(parts)[order] for n, parts in extras.items() if n not in lacking}
    return episodes, out, lacking


def _extra_column(table: pa.Table, name: str, kind: str, path: str) -> np.ndarray:
    col = table.column(name)
    if col.null_count:
        raise ValueError(f"column {name!r} of {path!r} holds null values")
    if kind == "int" and not pa.types.is_integer(col.type):
        raise ValueError(f"column {name!r} of {path!r} must hold integers, got {col.type}")
    if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)):
        raise ValueError(f"column {name!r} of {path!r} must hold numbers, got {col.type}")
    return numeric_numpy(col).astype(np.int64 if kind == "int" else np.float64)


def int_column(table: pa.Table, name: str, path: str) -> np.ndarray:
    col = table.column(name)
    if not (pa.types.is_integer(col.type)):
        raise ValueError(f"column {name!r} of {path!r} must hold integers, got {col.type}")
    if col.null_count:
        raise ValueError(f"column {name!r} of {path!r} holds {col.null_count} null value(s)")
    return numeric_numpy(col).astype(np.int64, copy=False)


def _check_total(info: dict[str, Any], key: str, actual: int, root: str) -> None:
    if key not in info:
        return
    value = info[key]
    if isinstance(value, bool) or not isinstance(value, int) or value != actual:
        raise ValueError(f"meta/info.json of {root!r} says {key}={value!r} but meta/episodes lists {actual}")
