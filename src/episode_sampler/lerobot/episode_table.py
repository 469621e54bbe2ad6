"""The episode table of a LeRobot v3 dataset (``meta/episodes/chunk-*/file-*.parquet``) as an
:class:`~episode_sampler.core.layout.EpisodeIndex`."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..core.layout import EpisodeIndex
from .columns import numbers
from .meta import read_info
from .parquet_io import read_chosen_columns

__all__ = ["int_column", "lerobot_layout", "read_episode_index", "read_episodes"]

_FROM, _TO = "dataset_from_index", "dataset_to_index"


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
    return read_episodes(root, read_info(root))


def lerobot_layout(
    root: str | os.PathLike[str] | EpisodeIndex, options: dict[str, Any]
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


def read_episodes(root: Path, info: dict[str, Any]) -> EpisodeIndex:
    """:func:`read_episode_index` for an already parsed ``info.json`` (checked against its totals)."""
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
        names, table = read_chosen_columns(path, partial(_needed_columns, path=path))
        has_bounds = _FROM in table.column_names
        for name in table.column_names:
            cols[name].append(int_column(table, name, path))
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
        raise ValueError(f"invalid episode table in {str(ep_dir)!r}: {exc}") from exc
    _check_total(info, "total_episodes", episodes.num_episodes, root)
    _check_total(info, "total_frames", episodes.num_frames, root)
    return episodes


def _needed_columns(names: list[str], path: Path) -> list[str]:
    """The episode-table columns read from a file with columns ``names``; ValueError if one is missing."""
    if _FROM in names or _TO in names:
        need = ["episode_index", _FROM, _TO] + (["length"] if "length" in names else [])
    else:
        need = ["episode_index", "length"]
    for name in need:
        if name not in names:
            raise ValueError(f"episode metadata file {str(path)!r} has no column {name!r}")
    return need


def int_column(table: pa.Table, name: str, path: Path) -> np.ndarray:
    col = table.column(name)
    if not (pa.types.is_integer(col.type)):
        raise ValueError(f"column {name!r} of {str(path)!r} must hold integers, got {col.type}")
    if col.null_count:
        raise ValueError(f"column {name!r} of {str(path)!r} holds {col.null_count} null value(s)")
    return numbers(col).astype(np.int64, copy=False)


def _check_total(info: dict[str, Any], key: str, actual: int, root: Path) -> None:
    if key not in info:
        return
    value = info[key]
    if isinstance(value, bool) or not isinstance(value, int) or value != actual:
        raise ValueError(
            f"meta/info.json of {str(root)!r} says {key}={value!r} but meta/episodes lists {actual}"
        )
