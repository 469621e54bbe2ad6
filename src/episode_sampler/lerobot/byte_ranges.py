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
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from ..core.layout import EpisodeIndex
from .mp4_index import Mp4Index, Reader, merge_ranges, read_mp4_index, video_ranges

__all__ = [
    "FOOTER_READ",
    "FramesPlanner",
    "VideoPlan",
    "parquet_ranges",
    "row_groups_of",
    "source_reader",
]

FOOTER_READ = 64 << 10  # pyarrow reads the last 64 KiB of a Parquet file first (its footer guess)
PARQUET_HOLE = 8 << 10  # pyarrow's pre-buffering joins ranges less than 8 KiB apart (hole_size_limit)

Ranges = list[tuple[str, int, int]]


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
    footer = max(FOOTER_READ, int(metadata.serialized_size) + 8)
    ranges = [(max(0, size - footer), size)]
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
    return merge_ranges(ranges, gap)


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


class VideoPlan:
    """Where camera ``key``'s frames are: per episode (episode-index order) its file (a name relative
    to the store) and the time in that file where the episode starts (``from_timestamp``)."""

    def __init__(self, files: Sequence[str], file_of: np.ndarray, from_timestamp: np.ndarray) -> None:
        self.files = list(files)
        self.file_of = np.asarray(file_of, dtype=np.int64)
        self.from_timestamp = np.asarray(from_timestamp, dtype=np.float64)


class FramesPlanner:
    """Byte ranges that reading given frames of a dataset touches (see the module docstring).

    Args:
        episodes: the dataset's episode index.
        data_files: data files (names relative to the store), sorted by first frame.
        locate: ``locate(frames) -> (file number, row)`` of global frame indices.
        columns: data columns read per frame (``None``: all).
        whole_file: ``whole_file(k)``: whether a read of file ``k`` reads all its row groups (it is
            then planned whole, for the needed columns).
        videos: per camera, where its frames are; frame times are ``from_timestamp + (frame - episode
            start) / fps`` (the ``timestamp`` column of LeRobot datasets).
        fps: frames per second.
        deltas: window offsets of the windowed keys (frames ``i + d`` clamped to the episode).
        open_parquet, open_video: a file name -> what pyarrow / the reader above reads (path or file).
        tolerance_s: the reader's tolerance on frame times.
        max_files: file indexes (Parquet footers, MP4 moovs) kept, least recently used dropped.
    """

    def __init__(
        self,
        *,
        episodes: EpisodeIndex,
        data_files: Sequence[str],
        locate: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
        columns: Sequence[str] | None,
        whole_file: Callable[[int], bool],
        videos: dict[str, VideoPlan],
        fps: float,
        deltas: dict[str, np.ndarray],
        open_parquet: Callable[[str], Any],
        open_video: Callable[[str], Any],
        tolerance_s: float = 1e-4,
        max_files: int = 4096,
    ) -> None:
        self.episodes = episodes
        self.data_files = list(data_files)
        self._locate = locate
        self.columns = None if columns is None else tuple(columns)
        self._whole = whole_file
        self.videos = videos
        self.fps = float(fps)
        self.deltas = deltas
        self._open_parquet = open_parquet
        self._open_video = open_video
        self.tolerance_s = float(tolerance_s)
        self._max_files = max_files
        self._meta: OrderedDict[str, tuple[pq.FileMetaData, int]] = OrderedDict()
        self._mp4: OrderedDict[str, Mp4Index] = OrderedDict()
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
    def frames_read(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every frame a read of ``frames`` touches (windows included, clamped to the episode), and its
        episode position."""
        frames = np.asarray(frames, dtype=np.int64).reshape(-1)
        if frames.size == 0:
            return frames, frames
        ep = self.episodes.episode_of(frames)
        parts, eps = [frames], [ep]
        if self.deltas:
            lo = self.episodes.starts[ep][:, None]
            hi = self.episodes.ends[ep][:, None] - 1
            offs = np.unique(np.concatenate(list(self.deltas.values())))
            parts.append(np.clip(frames[:, None] + offs[None, :], lo, hi).reshape(-1))
            eps.append(np.repeat(ep, offs.size))
        allf = np.concatenate(parts)
        alle = np.concatenate(eps)
        uniq, first = np.unique(allf, return_index=True)
        return uniq, alle[first]

    def parquet_plan(self, frames: np.ndarray) -> Ranges:
        """``(rel, start, stop)`` of the data files' bytes a read of ``frames`` (already with windows)
        touches."""
        if frames.size == 0:
            return []
        file_of, rows = self._locate(frames)
        out: Ranges = []
        for k in np.unique(file_of).tolist():
            rel = self.data_files[k]
            meta, size = self.parquet_metadata(rel)
            if self._whole(k):
                groups = np.arange(meta.num_row_groups)
            else:
                groups = row_groups_of(meta, rows[file_of == k])
            out.extend((rel, a, b) for a, b in parquet_ranges(meta, size, groups.tolist(), self.columns))
        return out

    def video_plan(self, frames: np.ndarray, ep: np.ndarray) -> Ranges:
        """``(rel, start, stop)`` of the video files' bytes decoding the cameras at ``frames`` touches."""
        if frames.size == 0 or not self.videos:
            return []
        offset = (frames - self.episodes.starts[ep]) / self.fps
        out: Ranges = []
        for plan in self.videos.values():
            file_of = plan.file_of[ep]
            times = plan.from_timestamp[ep] + offset
            for f in np.unique(file_of).tolist():
                rel = plan.files[f]
                index = self.mp4_index(rel)
                sel = file_of == f
                out.extend(
                    (rel, a, b) for a, b in video_ranges(index, np.unique(times[sel]), self.tolerance_s)
                )
        return out

    def byte_ranges(self, frames: np.ndarray) -> Ranges:
        """All ``(rel, start, stop)`` a read of the global frame indices ``frames`` touches (per file
        sorted and merged)."""
        allf, ep = self.frames_read(frames)
        return self.parquet_plan(allf) + self.video_plan(allf, ep)
