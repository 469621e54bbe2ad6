"""Which bytes of a dataset's files a read touches, planned from the files' own indexes.

- Parquet (:func:`parquet_ranges`): the footer, and for the row groups holding the wanted rows the
  column chunks of only the wanted columns (from the footer metadata: ``dictionary_page_offset`` or
  ``data_page_offset``, ``total_compressed_size``).
- MP4 (:func:`~episode_sampler.lerobot.mp4_index.video_ranges`): the header and the samples from the
  keyframe before each wanted frame through that frame.

:class:`FramesPlanner` puts both together for the frames of a :class:`~episode_sampler.lerobot.LeRobotFrames`
(``frames.byte_ranges(indices)``): ``(rel, start, stop)`` triples a prefetcher hands to the store, so
that the reads that follow find their bytes in the local cache. A plan is a hint for speed: reads stay
correct (only slower) for any byte it misses.
"""

from __future__ import annotations

import io
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from ..core.layout import EpisodeIndex
from .data_files import DataFiles
from .mp4_index import Mp4Index, Reader, merge_ranges, read_mp4_index, video_ranges
from .parquet_io import columns_uncompressed_bytes
from .video_reader import VideoReader

__all__ = [
    "FOOTER_READ",
    "FramesPlanner",
    "VideoPlan",
    "chunk_ranges",
    "footer_range",
    "frames_planner",
    "parquet_ranges",
    "row_groups_of",
    "source_reader",
]

FOOTER_READ = 64 << 10  # pyarrow reads the last 64 KiB of a Parquet file first (its footer guess)
PARQUET_HOLE = 8 << 10  # pyarrow's pre-buffering joins ranges less than 8 KiB apart (hole_size_limit)

Ranges = list[tuple[str, int, int]]
_CHECKED = ("index", "episode_index")  # read from every row group on a data file's first read


def parquet_ranges(
    metadata: pq.FileMetaData,
    size: int,
    row_groups: Sequence[int],
    columns: Sequence[str] | None,
    *,
    gap: int = PARQUET_HOLE,
) -> list[tuple[int, int]]:
    """Byte ranges pyarrow reads for ``columns`` (all with ``None``; a name covers its nested leaves,
    e.g. ``action`` covers ``action.list.element``) of ``row_groups`` of a file of ``size`` bytes with
    footer ``metadata``: its footer read and the column chunks, joined when at most ``gap`` bytes apart.

    Raises:
        IndexError: a row group out of range.
    """
    return merge_ranges([footer_range(metadata, size), *chunk_ranges(metadata, row_groups, columns)], gap)


def footer_range(metadata: pq.FileMetaData, size: int) -> tuple[int, int]:
    """The bytes pyarrow reads first to open a file of ``size`` bytes with footer ``metadata``."""
    return (max(0, size - max(FOOTER_READ, int(metadata.serialized_size) + 8)), size)


def chunk_ranges(
    metadata: pq.FileMetaData, row_groups: Sequence[int], columns: Sequence[str] | None
) -> list[tuple[int, int]]:
    """The column chunks of ``columns`` (all with ``None``) in ``row_groups``, unmerged.

    Raises:
        IndexError: a row group out of range.
    """
    ranges = []
    wanted = None if columns is None else tuple(columns)
    for g in row_groups:
        if not 0 <= g < metadata.num_row_groups:
            raise IndexError(f"row group {g} out of range: the file has {metadata.num_row_groups}")
        rg = metadata.row_group(g)
        for c in range(rg.num_columns):
            col = rg.column(c)
            path = col.path_in_schema
            if wanted is not None and not any(path == n or path.startswith(n + ".") for n in wanted):
                continue
            start = col.data_page_offset
            if col.has_dictionary_page and col.dictionary_page_offset is not None:
                start = min(start, col.dictionary_page_offset)
            ranges.append((int(start), int(start) + int(col.total_compressed_size)))
    return ranges


def row_groups_of(metadata: pq.FileMetaData, rows: np.ndarray) -> np.ndarray:
    """The sorted unique row groups holding ``rows`` (row numbers in the file)."""
    sizes = [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)]
    starts = np.cumsum([0, *sizes])
    return np.unique(np.searchsorted(starts, np.asarray(rows, dtype=np.int64), side="right") - 1)


def source_reader(source: Any) -> tuple[Reader, int]:
    """``read(start, stop)`` and size over what a store hands out: a path, or a seekable file object
    (read under a lock: the planner's threads share it)."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)

        def read_path(start: int, stop: int) -> bytes:
            with open(path, "rb") as f:
                f.seek(start)
                return f.read(max(0, stop - start))

        return read_path, os.path.getsize(path)
    f = source
    lock = threading.Lock()
    with lock:
        size = f.seek(0, io.SEEK_END)

    def read_file(start: int, stop: int) -> bytes:
        with lock:
            f.seek(start)
            out = bytearray()
            while len(out) < stop - start:
                chunk = f.read(stop - start - len(out))
                if not chunk:
                    break
                out += chunk
            return bytes(out)

    return read_file, int(size)


@dataclass(frozen=True)
class _FilePlan:
    """A data file's planned reads: row group start rows, the whole-file ranges (``None`` when the
    file is read by row group), each row group's wanted column chunks, the checked columns' chunks."""

    starts: np.ndarray
    whole: list[tuple[int, int]] | None
    groups: list[list[tuple[int, int]]]
    checked: list[tuple[int, int]]


class VideoPlan:
    """Where camera ``key``'s frames are: per episode (episode-index order) its file (a name relative
    to the store) and the time in that file where the episode starts (``from_timestamp``); ``offsets``:
    the frame offsets read per item (``[0]`` for a plain camera, a window's offsets, or both)."""

    def __init__(
        self, files: Sequence[str], file_of: np.ndarray, from_timestamp: np.ndarray, offsets: np.ndarray
    ) -> None:
        self.files = list(files)
        self.file_of = np.asarray(file_of, dtype=np.int64)
        self.from_timestamp = np.asarray(from_timestamp, dtype=np.float64)
        self.offsets = np.unique(np.asarray(offsets, dtype=np.int64))


class FramesPlanner:
    """Byte ranges that reading given frames of a dataset touches (see the module docstring).

    Args:
        episodes: the dataset's episode index.
        data_files: data files (names relative to the store), sorted by first frame.
        locate: ``locate(frames) -> (file number, row)`` of global frame indices.
        columns: data columns read per frame (a file's first read in a process also reads its
            ``index`` and ``episode_index``, all row groups, to check it: planned too).
        offsets: data frame offsets read per item (``0`` and the windows' offsets, clamped to the
            episode).
        whole_limit: a file whose wanted columns' uncompressed size is at most this (``None``: any) is
            read whole (all row groups), as the reader's column cache does; larger ones by row group.
        videos: per camera read, where its frames are; frame times are ``from_timestamp + (frame -
            episode start) / fps`` (the ``timestamp`` column of LeRobot datasets).
        fps: frames per second.
        open_parquet, open_video: a file name -> what pyarrow / PyAV read (a path or a file object).
        tolerance_s: the reader's tolerance on frame times.
        max_files: file indexes (Parquet footers, MP4 moovs) kept, least recently used dropped.
    """

    def __init__(
        self,
        *,
        episodes: EpisodeIndex,
        data_files: Sequence[str],
        locate: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
        columns: Sequence[str],
        offsets: np.ndarray,
        whole_limit: int | None,
        videos: dict[str, VideoPlan],
        fps: float,
        open_parquet: Callable[[str], Any],
        open_video: Callable[[str], Any],
        tolerance_s: float = 1e-4,
        max_files: int = 4096,
    ) -> None:
        self.episodes = episodes
        self.data_files = list(data_files)
        self._locate = locate
        self._wanted = tuple(columns)
        self.columns = tuple(dict.fromkeys([*columns, *_CHECKED]))
        self.offsets = np.unique(np.concatenate([[0], np.asarray(offsets, dtype=np.int64)]))
        self.whole_limit = whole_limit
        self.videos = videos
        self.fps = float(fps)
        self._open_parquet = open_parquet
        self._open_video = open_video
        self.tolerance_s = float(tolerance_s)
        self._max_files = max_files
        self._meta: OrderedDict[str, tuple[pq.FileMetaData, int]] = OrderedDict()
        self._mp4: OrderedDict[str, Mp4Index] = OrderedDict()
        self._plans: OrderedDict[str, _FilePlan] = OrderedDict()
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:  # file indexes and the lock stay in their process
        state = self.__dict__.copy()
        state["_meta"], state["_mp4"], state["_plans"] = OrderedDict(), OrderedDict(), OrderedDict()
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ file indexes (cached)
    def _remember(self, table: OrderedDict[str, Any], key: str, value: Any) -> None:
        with self._lock:
            table[key] = value
            while len(table) > self._max_files:
                table.popitem(last=False)

    def parquet_metadata(self, rel: str) -> tuple[pq.FileMetaData, int]:
        """Footer metadata and size of data file ``rel`` (read once, then kept)."""
        got = self._meta.get(rel)
        if got is None:
            src = self._open_parquet(rel)
            if isinstance(src, (str, os.PathLike)):
                size = os.path.getsize(src)
            else:
                size = src.seek(0, io.SEEK_END)
                src.seek(0)
            got = (pq.read_metadata(src), int(size))
            self._remember(self._meta, rel, got)
        return got

    def mp4_index(self, rel: str) -> Mp4Index:
        """Sample tables of video file ``rel`` (read once, then kept)."""
        got = self._mp4.get(rel)
        if got is None:
            read, size = source_reader(self._open_video(rel))
            got = read_mp4_index(read, size, rel)
            self._remember(self._mp4, rel, got)
        return got

    # ------------------------------------------------------------------ plans
    def _around(
        self, frames: np.ndarray, ep: np.ndarray, offsets: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Unique frames ``frames + offsets`` clamped to their episode, with their episode positions."""
        if offsets.size == 1 and offsets[0] == 0:
            uniq, first = np.unique(frames, return_index=True)
            return uniq, ep[first]
        lo = self.episodes.starts[ep][:, None]
        hi = self.episodes.ends[ep][:, None] - 1
        allf = np.clip(frames[:, None] + offsets[None, :], lo, hi).reshape(-1)
        uniq, first = np.unique(allf, return_index=True)
        return uniq, np.repeat(ep, offsets.size)[first]

    def _whole(self, meta: pq.FileMetaData) -> bool:
        if self.whole_limit is None:
            return True
        return columns_uncompressed_bytes(meta, self._wanted) <= self.whole_limit

    def _file_plan(self, rel: str) -> _FilePlan:
        """What a data file's reads need, computed once per file from its footer."""
        got = self._plans.get(rel)
        if got is None:
            meta, size = self.parquet_metadata(rel)
            every = range(meta.num_row_groups)
            sizes = [meta.row_group(g).num_rows for g in every]
            got = _FilePlan(
                starts=np.cumsum([0, *sizes]),
                whole=parquet_ranges(meta, size, every, self.columns) if self._whole(meta) else None,
                groups=[chunk_ranges(meta, [g], self._wanted) for g in every],
                checked=[footer_range(meta, size), *chunk_ranges(meta, every, _CHECKED)],
            )
            self._remember(self._plans, rel, got)
        return got

    def parquet_plan(self, frames: np.ndarray) -> Ranges:
        """``(rel, start, stop)`` of the data files' bytes a read of the (window-expanded) ``frames``
        touches."""
        if frames.size == 0:
            return []
        file_of, rows = self._locate(frames)
        out: Ranges = []
        for k in np.unique(file_of).tolist():
            rel = self.data_files[k]
            plan = self._file_plan(rel)
            if plan.whole is not None:
                spans = plan.whole
            else:  # the wanted columns of the groups holding the rows, the checked columns of all
                held = np.unique(np.searchsorted(plan.starts, rows[file_of == k], side="right") - 1)
                parts = [span for g in held.tolist() for span in plan.groups[g]]
                spans = merge_ranges(parts + plan.checked, PARQUET_HOLE)
            out.extend((rel, a, b) for a, b in spans)
        return out

    def video_plan(self, key: str, frames: np.ndarray, ep: np.ndarray) -> Ranges:
        """``(rel, start, stop)`` of camera ``key``'s video bytes that decoding it at the (window-
        expanded) ``frames`` of episodes ``ep`` touches."""
        plan = self.videos[key]
        if frames.size == 0:
            return []
        times = plan.from_timestamp[ep] + (frames - self.episodes.starts[ep]) / self.fps
        file_of = plan.file_of[ep]
        out: Ranges = []
        for f in np.unique(file_of).tolist():
            rel = plan.files[f]
            wanted = np.unique(times[file_of == f])
            out.extend((rel, a, b) for a, b in video_ranges(self.mp4_index(rel), wanted, self.tolerance_s))
        return out

    def byte_ranges(self, frames: np.ndarray) -> Ranges:
        """All ``(rel, start, stop)`` a read of the global frame indices ``frames`` touches (sorted and
        merged per file)."""
        frames = np.asarray(frames, dtype=np.int64).reshape(-1)
        if frames.size == 0:
            return []
        ep = self.episodes.episode_of(frames)
        out = self.parquet_plan(self._around(frames, ep, self.offsets)[0])
        for key, plan in self.videos.items():
            out.extend(self.video_plan(key, *self._around(frames, ep, plan.offsets)))
        return out


def frames_planner(
    store: Any,
    data: DataFiles,
    video: VideoReader | None,
    episodes: EpisodeIndex,
    info: Mapping[str, Any],
    plain: Sequence[str],
    deltas: Mapping[str, np.ndarray],
) -> FramesPlanner:
    """The planner of a :class:`~episode_sampler.lerobot.LeRobotFrames` (its store, data files, video
    reader, plain columns and windows)."""
    offsets = np.concatenate([np.zeros(1, np.int64), *[np.asarray(v, np.int64) for v in deltas.values()]])
    videos: dict[str, VideoPlan] = {}
    if video is not None:
        for key in video.keys:
            files, file_of, start = video.layout(key)
            offs = [np.asarray(deltas[key], np.int64)] if key in deltas else []
            if key in plain:
                offs.append(np.zeros(1, np.int64))
            videos[key] = VideoPlan(files, file_of, start, np.concatenate(offs))
    fps = float(info.get("fps") or 30)
    return FramesPlanner(
        episodes=episodes,
        data_files=data.files,
        locate=data.locate,
        columns=list(data.specs),
        offsets=offsets,
        whole_limit=data.cache.max_bytes,
        videos=videos,
        fps=fps,
        open_parquet=store.parquet_source,
        open_video=store.video_source,
        tolerance_s=video.tolerance_s if video is not None else 1e-4,
    )
