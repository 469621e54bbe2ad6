"""Frames and windows of a LeRobot v3 dataset as a map-style torch dataset (:class:`LeRobotFrames`).

Reads flow one way: metadata (``info.json``, episode table) -> episode index -> frame reads from the
data files (:mod:`.data_files`) -> items and ``delta_indices`` windows, collated per batch here.
"""

from __future__ import annotations

import operator
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import Dataset, default_collate

from ..core.validation import check_bool, int_array
from .byte_ranges import frames_planner
from .column_cache import DEFAULT_COLUMN_CACHE_BYTES, check_cache_bytes
from .columns import Column, describe
from .data_files import DataFiles
from .episode_table import read_episode_table
from .meta import read_info
from .parquet_io import read_schema
from .stats import read_stats
from .storage import (
    DEFAULT_REMOTE_CACHE_BYTES,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_S,
    Store,
    open_store,
)
from .tasks import read_tasks
from .video_reader import VideoReader, depth_keys, video_columns, video_keys

__all__ = ["LeRobotFrames"]


_TASK = "task"
_DATA_FILE = {"data/chunk_index": "int", "data/file_index": "int"}  # where each episode's rows are


# ---------------------------------------------------------------------------------------------- dataset
class LeRobotFrames(Dataset):
    """Map-style torch dataset over the frames of a LeRobot v3 dataset, read memory-mapped with pyarrow.

    Item ``i`` is the ``i``-th frame in global ``index`` order, that is
    ``episodes.frame_at(i)``; for the usual datasets whose ``index`` runs ``0 .. total_frames - 1``
    item ``i`` is the frame with ``index == i``. An item is a dict: numeric scalar columns as 0-d
    tensors, fixed-size (or equal-length) list columns as 1-d tensors (dtype kept from the file),
    strings as ``str``. When the dataset has ``meta/tasks.parquet`` and a ``task_index`` column, items
    also carry ``task``, the task string of their ``task_index`` (as ``LeRobotDataset`` items do).

    ``delta_indices`` follows LeRobot's convention: for key ``k`` with offsets ``d`` the item holds
    ``k`` as the frames ``i + d`` clamped to the frame's episode, stacked to ``[len(d), ...]``, and
    ``k + "_is_pad"``, a bool tensor True where ``i + d`` fell outside the episode. A windowed key
    replaces the plain column of the same name.

    Cameras (features of ``info.json`` with dtype ``video``) are returned as LeRobot returns them: the
    frame shown at ``videos/<key>/from_timestamp + timestamp`` in the episode's video file, within
    ``tolerance_s``, as a ``[3, H, W]`` float32 tensor in ``[0, 1]`` (``uint8`` with
    ``return_uint8=True``); windows give ``[len(d), 3, H, W]``. Values equal LeRobot's PyAV decoder's.
    :meth:`get_batch` and :meth:`__getitems__` decode a batch per (camera, file): wanted times sorted,
    each run of nearby frames decoded with one seek, cameras in parallel threads, decoders kept open in a
    bounded per-process cache (see :mod:`episode_sampler.lerobot.video_decode`). Depth-map videos
    (``is_depth_map``) are not decoded: they are left out (with a warning) or refused when requested.

    ``stats`` holds the dataset's normalization statistics (``meta/stats.json``) as LeRobot's
    ``dataset.meta.stats`` does, ``info`` the parsed ``meta/info.json``.

    Data files are opened lazily (memory-mapped) in each process and are not pickled, so instances
    can be sent to DataLoader workers or process pools cheaply.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | Store,
        columns: Sequence[str] | None = None,
        delta_indices: Mapping[str, Sequence[int]] | None = None,
        *,
        column_cache_bytes: int | None = DEFAULT_COLUMN_CACHE_BYTES,
        return_uint8: bool = False,
        video_backend: str | None = None,
        tolerance_s: float = 1e-4,
        video_cache_size: int = 32,
        video_threads: int | None = None,
        filesystem: Any = None,
        cache_dir: str | os.PathLike[str] | None = None,
        cache_bytes: int = DEFAULT_REMOTE_CACHE_BYTES,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
    ) -> None:
        """Open the dataset at ``root``.

        Metadata (``info.json``, episode table, tasks, stats) is read now; data files are read when
        first needed. When the episode table says which data file holds each episode (LeRobot's
        ``data/chunk_index``/``data/file_index``), no data file is read here, and each is checked
        against the table on its first read (errors then surface at that read).

        Args:
            root: dataset directory (holding ``meta/`` and ``data/``), or a URL: ``http(s)://...``,
                ``s3://bucket/path``, ``hf://datasets/<org>/<name>``, or a path inside
                ``filesystem``. Remote files are read by byte ranges through an on-disk cache.
            columns: data columns returned per item, in this order; ``None`` means every column of a
                supported type (numbers, strings, numeric lists), the cameras (``video`` features),
                then ``task`` when the dataset has tasks. ``"task"`` may be listed like a column. Keys
                of ``delta_indices`` are added.
            delta_indices: per key, integer frame offsets (e.g. ``{"action": range(16)}``).
            column_cache_bytes: bound, per process, of the decoded Parquet columns kept between
                reads (default 512 MiB; each DataLoader worker holds its own). Files are kept whole
                and evicted least recently used first. A file whose columns alone exceed the bound is
                not kept: each read decodes just the row groups it needs (one per episode in
                LeRobot-written files). ``None`` keeps every file touched; ``0`` keeps none. Size it
                to the files a shuffled batch touches (with ``order="frames"``: all of them), or
                reads re-decode evicted files.
            return_uint8: camera frames as ``uint8`` instead of float32 in ``[0, 1]`` (LeRobot's
                ``return_uint8``; 4x less memory and inter-process traffic, normalize later).
            video_backend: ``"pyav"`` or ``"torchcodec"``; ``None`` picks torchcodec when it is
                installed and loads, else PyAV.
            tolerance_s: largest distance in seconds between a wanted frame time and the decoded
                frame's (LeRobot's ``tolerance_s``).
            video_cache_size: open video decoders kept per process, least recently used closed first.
            video_threads: threads decoding cameras (and files) of a batch in parallel; ``None`` means
                one per camera.
            filesystem: an fsspec or pyarrow file system holding ``root`` (then remote).
            cache_dir: directory of the on-disk block cache of a remote dataset (default under
                ``$XDG_CACHE_HOME/episode-sampler``), shared by workers and ranks of a node.
            cache_bytes: bound of that cache in bytes (least recently used blocks evicted).
            timeout_s: per-request timeout of a remote dataset, in seconds.
            retries: retries of a remote request on transient errors (with backoff).

        Raises:
            FileNotFoundError: missing metadata or data files.
            ValueError: unknown or unsupported columns (available ones are listed), empty or duplicate
                entries, or data files that disagree with the episode table.
            TypeError: non-string column names, non-integer offsets or ``column_cache_bytes``.
        """
        column_cache_bytes = check_cache_bytes(column_cache_bytes)
        #: where the dataset's files are (:mod:`episode_sampler.lerobot.storage`)
        self.store = store = open_store(
            root,
            filesystem=filesystem,
            cache_dir=cache_dir,
            cache_bytes=cache_bytes,
            timeout_s=timeout_s,
            retries=retries,
        )
        #: the dataset root: a ``Path`` when local, else the URL
        self.root: Path | str = Path(store.root_name) if store.local else store.root_name
        self.info = read_info(store)
        #: ``meta/stats.json`` as LeRobot loads it (``{feature: {stat: np.ndarray}}``), ``None`` if absent
        self.stats = read_stats(store)
        cameras = [k for k in video_keys(self.info) if k not in depth_keys(self.info)]
        self.episodes, table, lacking = read_episode_table(
            store, self.info, {**_DATA_FILE, **video_columns(cameras)}
        )
        template = self.info.get("data_path")
        by_table = isinstance(template, str) and not (_DATA_FILE.keys() & lacking.keys())
        nonempty = np.flatnonzero(self.episodes.lengths > 0)
        listed: list[str] | None = None
        if by_table and nonempty.size:
            assert isinstance(template, str)
            e0 = int(nonempty[0])
            first_file = template.format(
                chunk_index=int(table["data/chunk_index"][e0]), file_index=int(table["data/file_index"][e0])
            )
        else:
            by_table = False
            listed = store.list("data", "chunk-*/file-*.parquet")
            if listed is None:
                raise ValueError(
                    f"cannot list the data files of {store.root_name!r} (the server does not list "
                    "directories) and its episode table has no data/chunk_index and data/file_index "
                    "columns (or meta/info.json no data_path) to name them"
                )
            if not listed:
                raise FileNotFoundError(
                    f"no data files matching {store.name('data/chunk-*/file-*.parquet')!r}"
                )
            first_file = listed[0]
        schema = read_schema(store, first_file)
        available = {n: describe(n, schema.field(n).type) for n in schema.names}
        for key in video_keys(self.info):
            available[key] = Column(key, "video", pa.null())
        depth = depth_keys(self.info)
        for key in depth:  # LeRobot dequantizes 12-bit depth videos; not supported here (yet)
            available[key] = None
        if depth and columns is None:
            warnings.warn(
                f"LeRobotFrames leaves out the depth-map video features {depth} of {str(self.root)!r}: "
                "decoding depth videos is not supported",
                UserWarning,
                stacklevel=2,
            )
        tasks = read_tasks(store)
        index_spec = available.get("task_index")
        # "task" is looked up from task_index, as LeRobot does (unless the data holds its own "task")
        self._tasks: np.ndarray | None = None
        if (
            tasks is not None
            and "task" not in available
            and index_spec is not None
            and index_spec.kind == "scalar"
            and pa.types.is_integer(index_spec.arrow_type)
        ):
            self._tasks = np.full(max(tasks, default=-1) + 1, None, dtype=object)
            for i, t in tasks.items():
                if i >= 0:
                    self._tasks[i] = t
            available[_TASK] = Column(_TASK, "string", pa.string())
        self._deltas = _check_deltas(delta_indices, available)
        self._plain = _check_columns(columns, available, self._deltas)
        usable = {n: spec for n, spec in available.items() if spec is not None}  # the checked names
        self._videos = tuple(n for n in (*self._plain, *self._deltas) if usable[n].kind == "video")
        # data columns read for the plain group: "task" is read as its task_index, a camera as the
        # frame's timestamp (its time in the episode's video)
        read = [n for n in self._plain if n != _TASK and n not in self._videos]
        if _TASK in self._plain and "task_index" not in read:
            read.append("task_index")
        if any(n in self._videos for n in self._plain) and "timestamp" not in read:
            read.append("timestamp")
        self._read_plain = tuple(read)
        if self._videos and "timestamp" not in usable:
            raise ValueError(
                f"data files of {str(self.root)!r} have video features but no 'timestamp' column"
            )
        specs = {n: usable[n] for n in (*self._read_plain, *self._deltas) if n not in self._videos}
        if self._videos:
            specs.setdefault("timestamp", usable["timestamp"])
        if by_table:
            assert isinstance(template, str)
            self._data = DataFiles.from_table(
                store,
                template,
                table["data/chunk_index"],
                table["data/file_index"],
                self.episodes,
                specs,
                column_cache_bytes,
            )
        else:
            assert listed is not None
            self._data = DataFiles.scan(store, listed, self.episodes, specs, column_cache_bytes)
        self._video = (
            VideoReader(
                store,
                self.info,
                self.episodes,
                self._videos,
                {n: v for n, v in table.items() if n.startswith("videos/")},
                lacking,
                backend=video_backend,
                tolerance_s=tolerance_s,
                return_uint8=check_bool("return_uint8", return_uint8),
                max_open_files=video_cache_size,
                threads=video_threads,
            )
            if self._videos
            else None
        )
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
    def video_keys(self) -> tuple[str, ...]:
        """Camera (video) features returned per item, plain or windowed."""
        return self._videos

    @property
    def video_stats(self) -> dict[str, int]:
        """Decoding work done by this process so far: files opened, seeks, packets and bytes decoded,
        frames decoded and converted (empty without cameras)."""
        if self._video is None:
            return {}
        return self._video.cache.stats.as_dict()

    def close(self) -> None:
        """Close open video decoders and decoding threads (they reopen on next use)."""
        if self._video is not None:
            self._video.close()

    @property
    def files(self) -> tuple[Path | str, ...]:
        """Data files, sorted by their first frame index: paths when local, URLs when remote."""
        if self.store.local:
            return tuple(Path(self.store.name(rel)) for rel in self._data.files)
        return tuple(self.store.name(rel) for rel in self._data.files)

    def column_cache_info(self) -> dict[str, Any]:
        """This process's Parquet column cache: ``files`` (indices into :attr:`files`, least recently
        used first), ``bytes``, ``max_bytes``, ``hits``, ``misses``, ``evictions``, and
        ``partial_reads`` (reads of only some row groups of a file too large to keep)."""
        return {**self._data.cache.info(), "partial_reads": self._data.partial_reads}

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
        items = _Items({k: v[j] for k, v in split.items()} for j in range(n))
        items.batch = batch
        return items

    @staticmethod
    def collate(items: list[Any]) -> Any:
        """A ``DataLoader`` ``collate_fn`` that skips re-stacking: the batch :meth:`__getitems__` already
        built is returned as is (``default_collate`` would copy every tensor into a new one, about a
        megabyte per sample with two cameras); anything else goes to ``default_collate``.

        ``DataLoader(ds, sampler=..., batch_size=32, collate_fn=LeRobotFrames.collate)`` yields the same
        batches as without it, one copy sooner.
        """
        if isinstance(items, _Items) and items.batch is not None:
            return items.batch
        return default_collate(items)

    # ------------------------------------------------------------------ byte ranges (look-ahead)
    def _positions(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """``indices`` as an int64 array, each checked to lie in ``[0, len(self))``."""
        pos = int_array("indices", indices)
        n = len(self)
        if pos.size and (pos.min() < 0 or pos.max() >= n):
            bad = int(pos[(pos < 0) | (pos >= n)][0])
            raise IndexError(f"index {bad} is out of range for LeRobotFrames of length {n}")
        return pos

    def byte_ranges(self, indices: Sequence[int] | np.ndarray) -> list[tuple[str, int, int]]:
        """``(rel, start, stop)`` byte ranges of the dataset's files (names relative to :attr:`store`)
        that reading items ``indices`` touches: the Parquet footers and column chunks of the row groups
        holding their frames (windows included, only the columns read) and, per camera, the MP4 header
        and samples from the keyframe before each wanted frame through it. See
        :mod:`episode_sampler.lerobot.byte_ranges`.

        Raises:
            TypeError: non-integer indices.
            IndexError: an index outside ``[0, len(self))``.
        """
        pos = self._positions(indices)
        if self.__dict__.get("_planner") is None:
            self._planner = frames_planner(
                self.store, self._data, self._video, self.episodes, self.info, self._plain, self._deltas
            )
        return self._planner.byte_ranges(pos if self._identity else self.episodes.frame_at(pos))

    def prefetch(self, indices: Sequence[int] | np.ndarray) -> int:
        """Fetch the bytes that reading items ``indices`` needs into the store's local cache (nothing
        for a local dataset); returns the bytes downloaded. Raises as :meth:`byte_ranges`."""
        return int(self.store.prefetch(self.byte_ranges(indices)))

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> dict[str, Any]:
        """Several frames already collated: tensors stacked on a new first dim, strings as lists.

        Windowed keys have shape ``[len(indices), len(offsets), ...]`` with ``<key>_is_pad`` of shape
        ``[len(indices), len(offsets)]``.

        Raises:
            TypeError: non-integer indices.
            IndexError: an index outside ``[0, len(self))``.
        """
        pos = self._positions(indices)
        frames = pos if self._identity else self.episodes.frame_at(pos)
        videos = self._videos
        groups: list[tuple[np.ndarray, tuple[str, ...]]] = [(frames, self._read_plain)]
        pads: dict[str, np.ndarray] = {}
        ep = np.zeros(0, np.int64)  # episode of each frame, when windows or cameras need it
        if (self._deltas or videos) and frames.size:
            ep = self.episodes.episode_of(frames)
        if self._deltas:
            lo = self.episodes.starts[ep][:, None]
            hi = self.episodes.ends[ep][:, None] - 1
            for key, offs in self._deltas.items():
                query = frames[:, None] + offs[None, :]
                pads[key] = (query < lo) | (query > hi)
                names = ("timestamp",) if key in videos else (key,)
                groups.append((np.clip(query, lo, hi).reshape(-1), names))
        values = self._data.fetch(groups)
        # cameras: every camera of the batch decoded at once (per camera and file, in threads)
        requests: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name in self._plain:
            if name in videos:
                requests[name] = (ep, values[0]["timestamp"])
        for g, (key, offs) in enumerate(self._deltas.items(), start=1):
            if key in videos:
                requests[key] = (np.repeat(ep, offs.size), values[g]["timestamp"])
        decoded = self._video.read(requests) if requests and self._video is not None else {}
        out: dict[str, Any] = {}
        for name in self._plain:
            if name == _TASK:
                out[name] = self._task_strings(values[0]["task_index"], frames)
            elif name in videos:
                out[name] = decoded[name]
            else:
                out[name] = _as_output(values[0][name])
        for g, (key, offs) in enumerate(self._deltas.items(), start=1):
            if key in videos:
                arr = decoded[key]
                out[key] = arr.reshape(pos.size, offs.size, *arr.shape[1:])
            else:
                col = values[g][key]
                out[key] = _as_output(col.reshape(pos.size, offs.size, *col.shape[1:]))
            out[f"{key}_is_pad"] = torch.from_numpy(pads[key])
        return out

    def _task_strings(self, task_index: np.ndarray, frames: np.ndarray) -> list[str]:
        table = self._tasks
        assert table is not None
        ti = task_index.astype(np.int64, copy=False)
        bad = (ti < 0) | (ti >= table.size)
        if not bad.any():
            names = table[ti]
            bad = names == None  # noqa: E711 (elementwise)
            if not bad.any():
                return names.tolist()
        j = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"frame {int(frames[j])} has task_index {int(ti[j])}, which meta/tasks.parquet of "
            f"{str(self.root)!r} does not list"
        )

    def __repr__(self) -> str:
        return (
            f"LeRobotFrames(root={str(self.root)!r}, frames={len(self)}, "
            f"episodes={self.episodes.num_episodes}, files={len(self._data.files)}, "
            f"columns={list(self._plain)}, delta_indices={self.delta_indices})"
        )


class _Items(list[dict[str, Any]]):
    """The items of one :meth:`LeRobotFrames.__getitems__` call (views into ``batch``), and that batch."""

    batch: dict[str, Any] | None = None


def _as_output(arr: np.ndarray) -> torch.Tensor | list[Any]:
    if arr.dtype == object:
        return arr.tolist()
    return torch.from_numpy(np.ascontiguousarray(arr))


def _check_deltas(
    delta_indices: Mapping[str, Sequence[int]] | None, available: dict[str, Column | None]
) -> dict[str, np.ndarray]:
    if delta_indices is None:
        return {}
    if not isinstance(delta_indices, Mapping):
        raise TypeError(
            f"delta_indices must be a mapping of column -> offsets, got {type(delta_indices).__name__}"
        )
    out: dict[str, np.ndarray] = {}
    for key, offsets in delta_indices.items():
        if key == _TASK and key in available:
            raise ValueError("delta_indices: 'task' cannot be windowed; window 'task_index' instead")
        _check_name("delta_indices", key, available)
        offs = int_array(f"delta_indices[{key!r}]", offsets)
        if offs.size == 0:
            raise ValueError(f"delta_indices[{key!r}] must hold at least one offset")
        out[key] = offs
    return out


def _check_columns(
    columns: Sequence[str] | None, available: dict[str, Column | None], deltas: dict[str, np.ndarray]
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


def _check_name(what: str, name: Any, available: dict[str, Column | None]) -> None:
    if not isinstance(name, str):
        raise TypeError(f"{what} must name columns with str, got {type(name).__name__} {name!r}")
    usable = sorted(n for n, spec in available.items() if spec is not None)
    if name not in available:
        raise ValueError(f"{what}: unknown column {name!r}; available columns: {usable}")
    if available[name] is None:
        raise ValueError(
            f"{what}: column {name!r} has unsupported type for LeRobotFrames; supported columns: {usable}"
        )
