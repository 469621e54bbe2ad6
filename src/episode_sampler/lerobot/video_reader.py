"""Camera frames of a LeRobot v3 dataset, read in batches (the video half of :class:`LeRobotFrames`).

Where a frame lives (LeRobot 0.6.1, ``dataset_reader.py``): camera ``key`` of episode ``e`` is in the
file ``info["video_path"].format(video_key=key, chunk_index=c, file_index=f)`` with ``c``, ``f`` the
episode-table columns ``videos/<key>/chunk_index`` and ``videos/<key>/file_index``; the frame whose
data row has ``timestamp`` ``ts`` is the one shown at ``videos/<key>/from_timestamp + ts`` seconds in
that file (within ``tolerance_s``).

A batch is read per (camera, file): its wanted times are sorted and made unique, then decoded in one
pass over the file (:meth:`DecoderCache.read_into`), the (camera, file) groups running in parallel
threads. Each frame is converted once, as soon as it is decoded, from the scaler's RGB pixels straight
into the batch tensor. Frames come out as LeRobot returns them: ``[3, H, W]`` float32 in ``[0, 1]``
(``uint8`` on request).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from ..core.layout import EpisodeIndex
from .storage import Store
from .video_decode import BACKENDS, DecoderCache, default_backend

__all__ = ["VideoReader", "depth_keys", "video_columns", "video_keys"]


def video_keys(info: dict[str, Any]) -> list[str]:
    """Features of ``info.json`` stored as video (``dtype == "video"``), in ``info.json`` order."""
    features = info.get("features") or {}
    return [k for k, ft in features.items() if isinstance(ft, dict) and ft.get("dtype") == "video"]


def depth_keys(info: dict[str, Any]) -> list[str]:
    """Video features holding depth maps (LeRobot's ``is_depth_map`` markers): 12-bit gray frames that
    LeRobot dequantizes to metres; not decoded here."""
    out = []
    for key in video_keys(info):
        ft = info["features"][key]
        meta, video_info = ft.get("info") or {}, ft.get("video_info") or {}
        if meta.get("is_depth_map") or meta.get("video.is_depth_map") or video_info.get("video.is_depth_map"):
            out.append(key)
    return out


def video_columns(keys: Sequence[str]) -> dict[str, str]:
    """The episode-table columns locating the cameras ``keys`` (for
    :func:`~.episode_table.read_episode_table`): file chunk and number, and start time in the file."""
    return {
        f"videos/{k}/{c}": "number" if c == "from_timestamp" else "int"
        for k in keys
        for c in ("chunk_index", "file_index", "from_timestamp")
    }


class VideoReader:
    """Decoded camera frames for (episode, timestamp) requests of several cameras at once.

    Args:
        store: the dataset's files.
        info: parsed ``meta/info.json``.
        episodes: the dataset's episode index (rows of the returned arrays follow its order).
        keys: video features to read.
        table: the episode-table columns :func:`video_columns` of ``keys``, in ``episodes`` order.
        lacking: for each such column some episode-table file lacks, the name of that file.
        backend: ``"pyav"`` or ``"torchcodec"``; ``None`` picks torchcodec when it loads, else PyAV
            (always PyAV for a remote dataset: torchcodec opens paths only).
        tolerance_s: largest accepted distance between a wanted time and the decoded frame's time.
        return_uint8: return ``uint8`` frames instead of float32 in ``[0, 1]``.
        max_open_files: open decoders kept per process (LRU).
        threads: threads decoding (camera, file) groups in parallel; ``None``: one per camera.
    """

    def __init__(
        self,
        store: Store,
        info: dict[str, Any],
        episodes: EpisodeIndex,
        keys: Sequence[str],
        table: dict[str, np.ndarray],
        lacking: dict[str, str],
        *,
        backend: str | None = None,
        tolerance_s: float = 1e-4,
        return_uint8: bool = False,
        max_open_files: int = 32,
        threads: int | None = None,
    ) -> None:
        if backend is None:
            backend = default_backend() if store.local else "pyav"
        if backend not in BACKENDS:
            raise ValueError(f"video_backend must be one of {BACKENDS}, got {backend!r}")
        if backend == "torchcodec" and not store.local and keys:
            raise ValueError(
                f"video_backend='torchcodec' cannot read the remote dataset {store.root_name!r}: torchcodec "
                "opens local paths only; use video_backend='pyav' (or None)"
            )
        if isinstance(tolerance_s, bool) or not isinstance(tolerance_s, (int, float)) or not tolerance_s > 0:
            raise ValueError(f"tolerance_s must be a positive number of seconds, got {tolerance_s!r}")
        if isinstance(max_open_files, bool) or not isinstance(max_open_files, int) or max_open_files < 1:
            raise ValueError(f"video_cache_size must be an int >= 1, got {max_open_files!r}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"video_threads must be an int >= 1 or None, got {threads!r}")
        template = info.get("video_path")
        if not isinstance(template, str):
            if keys:
                raise ValueError(
                    f"meta/info.json of {store.root_name!r} has video features but no 'video_path' template"
                )
            template = ""  # no video feature: never formatted
        self.store = store
        self.keys = tuple(keys)
        self.backend = backend
        self.tolerance_s = float(tolerance_s)
        self.return_uint8 = bool(return_uint8)
        self.max_open_files = max_open_files
        self.threads = threads if threads is not None else max(1, len(self.keys))
        # per key: file number of each episode, the files, from_timestamp of each episode
        self._file_of: dict[str, np.ndarray] = {}
        self._paths: dict[str, list[str]] = {}  # names (paths or URLs)
        self._rels: dict[str, list[str]] = {}  # relative to the store
        self._from: dict[str, np.ndarray] = {}
        for name in video_columns(self.keys):
            if name in lacking:
                raise ValueError(
                    f"episode metadata file {lacking[name]!r} has no column {name!r}, needed for the video "
                    "feature named in meta/info.json"
                )
        for key in self.keys:
            chunk = table[f"videos/{key}/chunk_index"]
            file = table[f"videos/{key}/file_index"]
            pairs, inverse = np.unique(np.stack([chunk, file], axis=1), axis=0, return_inverse=True)
            rels = [template.format(video_key=key, chunk_index=c, file_index=f) for c, f in pairs.tolist()]
            if store.local:  # a remote file's absence is reported (with its URL) when first read
                for rel in rels:
                    if not store.exists(rel):
                        raise FileNotFoundError(
                            f"video file {store.name(rel)!r} of camera {key!r} does not exist"
                        )
            self._file_of[key] = inverse.reshape(-1).astype(np.int64)
            self._rels[key] = rels
            self._paths[key] = [store.name(rel) for rel in rels]
            self._from[key] = table[f"videos/{key}/from_timestamp"]
        self._cache: DecoderCache | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._pid = os.getpid()

    # ------------------------------------------------------------------ reading
    @property
    def cache(self) -> DecoderCache:
        """This process's open decoders (created on first use, dropped when pickled)."""
        if self._cache is None or self._pid != os.getpid():
            if self._pid != os.getpid():  # forked: the parent's decoding threads are gone
                self._pool = None
            self._cache = DecoderCache(self.backend, self.max_open_files)
            self._pid = os.getpid()
        return self._cache

    def files(self, key: str) -> tuple[str, ...]:
        """Video files of camera ``key``."""
        return tuple(self._paths[key])

    def read(self, requests: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, torch.Tensor]:
        """Frames per camera: ``requests[key] = (episode_positions, timestamps)`` (positions into the
        episode index, ``timestamp`` values of the data rows) -> ``[n, 3, H, W]`` tensors."""
        tasks = []
        for key, (ep, ts) in requests.items():
            ep = np.asarray(ep, dtype=np.int64)
            times = self._from[key][ep] + np.asarray(ts, dtype=np.float64)
            file_of = self._file_of[key][ep]
            if file_of.size and (file_of == file_of[0]).all():
                parts = [np.arange(file_of.size)]
            else:
                order = np.argsort(file_of, kind="stable")
                parts = np.split(order, np.flatnonzero(np.diff(file_of[order])) + 1)
            for sel in parts:
                if sel.size == 0:
                    continue
                uniq, inv = np.unique(times[sel], return_inverse=True)
                tasks.append((key, int(file_of[sel[0]]), uniq, sel, inv.reshape(-1)))
        cache = self.cache  # first: resets the pool too after a fork
        tol = self.tolerance_s
        dtype = torch.uint8 if self.return_uint8 else torch.float32
        result: dict[str, torch.Tensor] = {}  # per camera, [n, 3, H, W], filled in place by the tasks
        lock = threading.Lock()

        local = self.store.local

        def run(task) -> None:
            key, f, uniq, sel, inv = task
            path = self._paths[key][f]
            source = None if local else functools.partial(self.store.video_source, self._rels[key][f])
            # rows of the batch wanting each unique time
            order = np.argsort(inv, kind="stable")
            rows_of = np.split(sel[order], np.flatnonzero(np.diff(inv[order])) + 1)
            dst: list[np.ndarray] = []

            def sink(j: int, frame: np.ndarray) -> None:  # each frame converted as soon as decoded
                if not dst:
                    h, w, c = frame.shape
                    with lock:
                        out = result.get(key)
                        if out is None:
                            out = result[key] = torch.empty((len(requests[key][0]), c, h, w), dtype=dtype)
                    if out.shape[1:] != (c, h, w):
                        raise ValueError(
                            f"video files of camera {key!r} have different frame sizes: "
                            f"{tuple(out.shape[2:])} and {(h, w)} ({path!r})"
                        )
                    dst.append(out.numpy())
                _put(dst[0], rows_of[j], frame)

            cache.read_into(path, uniq, tol, sink, source)

        if self.threads > 1 and len(tasks) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="episode-sampler-video")
            list(self._pool.map(run, tasks))
        else:
            for t in tasks:
                run(t)
        for key in requests:
            if key not in result:  # no request: an empty batch
                result[key] = torch.zeros((0, 3, 0, 0), dtype=dtype)
        return {key: result[key] for key in requests}

    def close(self) -> None:
        """Close open decoders and stop the decoding threads (both come back on next use)."""
        if self._cache is not None:
            self._cache.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = None
        state["_pool"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._pid = os.getpid()


_255 = np.float32(255)


def _put(out: np.ndarray, rows: np.ndarray, frame: np.ndarray) -> None:
    """``out[rows] = frame`` as CHW, converted once (the other rows copy the first).

    Float output is LeRobot's ``uint8.type(torch.float32) / 255``: the same IEEE float32 division, done
    by NumPy on this thread straight from the decoder's HWC pixels into the output (torch would spread
    it over its intra-op threads, which the decoding threads and DataLoader workers already occupy).
    """
    first = int(rows[0])
    chw = frame.transpose(2, 0, 1)
    if out.dtype == np.uint8:
        np.copyto(out[first], chw)
    else:
        np.divide(chw, _255, out=out[first], dtype=np.float32)
    for row in rows[1:].tolist():
        out[row] = out[first]
