"""Decoding frames of one video file at given timestamps: backends and a bounded cache of open decoders.

The rules are LeRobot 0.6.1's (``lerobot/datasets/video_utils.py``):

- A wanted time ``t`` is served by the decoded frame whose presentation time ``pts * time_base`` is
  closest to it, and only if ``|t - frame_time| < tolerance_s``; otherwise :class:`FrameTimestampError`.
- PyAV cannot seek to an exact frame: seek backward to a keyframe at or before the wanted time and
  decode forward (``decode_video_frames_pyav``). LeRobot seeks to ``round(t / time_base) - 1``, one
  tick early, which lands on the previous keyframe whenever the wanted frame is itself a keyframe (half
  the frames at ``g=2``) and decodes two extra frames; seeking to ``round(t / time_base)`` decodes the
  same frames from a later keyframe. The frame picked is the same unless two frames lie within one
  time-base tick of each other.
- Pixels come out as ``frame.to_ndarray(format="rgb24")`` makes them, LeRobot's conversion, so values
  are identical to LeRobot's PyAV path (we reuse one scaler per file instead of one per frame).

What differs is the access pattern, not the result. LeRobot opens the file, seeks and decodes per item
and per camera. :class:`PyAVFile` keeps the file open, takes all wanted times of a batch sorted, decodes
each run of nearby times with one seek (it keeps decoding forward instead of seeking when the next wanted
time is at most a keyframe interval ahead, and continues from where the previous batch stopped), and
converts to RGB only the frames that are wanted, straight into the batch. :class:`DecoderCache` keeps a
bounded number of open files, least recently used evicted first.

Backends: ``"pyav"`` (always available, a core dependency) and ``"torchcodec"`` (used when the
``torchcodec`` package imports and loads; install ``episode-sampler[torchcodec]`` and FFmpeg's shared
libraries). Both implement :class:`VideoFile`.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from torchcodec.decoders import VideoDecoder

__all__ = [
    "BACKENDS",
    "DecodeStats",
    "DecoderCache",
    "FrameTimestampError",
    "PyAVFile",
    "TorchCodecFile",
    "VideoFile",
    "default_backend",
    "torchcodec_available",
]

BACKENDS = ("pyav", "torchcodec")


class FrameTimestampError(ValueError):
    """A wanted timestamp has no decoded frame within the tolerance (LeRobot's ``FrameTimestampError``)."""


@dataclass
class DecodeStats:
    """Work done by decoders (per process): files opened, seeks, packets and bytes fed to the decoder,
    frames decoded and frames converted to RGB."""

    opens: int = 0
    seeks: int = 0
    packets: int = 0
    packet_bytes: int = 0
    frames_decoded: int = 0
    frames_converted: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}

    def reset(self) -> None:
        with self._lock:
            for f in fields(self):
                if not f.name.startswith("_"):
                    setattr(self, f.name, 0)


Sink = Callable[[int, np.ndarray], None]


class VideoFile(Protocol):
    """An open video file of one backend."""

    lock: threading.Lock
    closed: bool

    def read(self, times: np.ndarray, tolerance_s: float) -> list[np.ndarray]:
        """RGB ``uint8`` ``[H, W, 3]`` frames (possibly non-contiguous views) for the sorted, unique
        seconds ``times``.

        Raises:
            FrameTimestampError: a time has no frame within ``tolerance_s``.
        """

    def read_into(self, times: np.ndarray, tolerance_s: float, sink: Sink) -> None:
        """:meth:`read`, handing each frame to ``sink(i, frame)`` (``i``: its position in ``times``) as
        soon as it is decoded, so that it is used while in the CPU's cache and its buffer reused."""

    def close(self) -> None: ...


def _tolerance_error(
    path: str, backend: str, missing: list[float], loaded: list[float], tol: float
) -> Exception:
    return FrameTimestampError(
        f"One or several query timestamps unexpectedly violate the tolerance (tolerance_s={tol}): "
        f"no frame of {path!r} lies within {tol} s of {missing[:8]}"
        f"{' ...' if len(missing) > 8 else ''}; nearest decoded frames at {loaded[:8]} (backend: {backend}). "
        "The closest frame that can be loaded from the video is too far away in time: the episode table's "
        "from_timestamp or the data's timestamp column may be wrong."
    )


def _collect(file: VideoFile, times: np.ndarray, tolerance_s: float) -> list[np.ndarray]:
    out: list[np.ndarray] = [None] * len(times)  # type: ignore[list-item]

    def keep(i: int, frame: np.ndarray) -> None:
        out[i] = frame

    file.read_into(times, tolerance_s, keep)
    return out


def _decode(container: Any, stream: Any, stats: DecodeStats):
    """Frames and their times, decoded forward from the container's position. A free function, so
    the generator holds no reference to its :class:`PyAVFile` (no cycle: freed files close at once)."""
    # float(pts * time_base) as LeRobot computes it, without Fraction objects: int * int / int is the
    # correctly rounded float of the same exact ratio
    num, den = stream.time_base.numerator, stream.time_base.denominator
    for packet in container.demux(stream):
        size = packet.size
        frames = packet.decode()
        stats.add(packets=1 if size else 0, packet_bytes=size, frames_decoded=len(frames))
        for frame in frames:
            pts = frame.pts
            if pts is not None:
                yield frame, pts * num / den


class PyAVFile:
    """A video file kept open with PyAV, decoding forward from its current position when it can."""

    def __init__(
        self,
        path: str,
        stats: DecodeStats | None = None,
        max_gap_frames: int = 2,
        threads: int = 1,
        *,
        source: Any = None,
    ) -> None:
        """Open ``path`` (named in messages), or ``source`` when given: a seekable binary file object
        (e.g. a remote file), closed with this file."""
        import av

        self.path = path
        self.lock = threading.Lock()
        self._stats = stats if stats is not None else DecodeStats()
        self._source = source
        self._container = av.open(path if source is None else source)
        self._stream = self._container.streams.video[0]
        # one decoding thread per file: batches decode cameras and files in parallel threads, and
        # DataLoader workers in parallel processes, so codec threads would only oversubscribe the cores
        self._stream.codec_context.thread_count = threads
        # one scaler reused for every frame: frame.to_ndarray(format="rgb24") builds a new one per frame
        # (same conversion, same pixels, several times slower on small frames)
        self._rgb = av.video.reformatter.VideoReformatter()
        time_base = self._stream.time_base
        if time_base is None:  # PyAV's "no time base": frame times (pts * time_base) cannot be computed
            self._container.close()
            if source is not None:
                source.close()
            raise ValueError(f"video file {path!r} has a video stream without a time base")
        self._time_base = time_base
        rate = self._stream.average_rate or self._stream.base_rate or self._stream.guessed_rate
        self._frame_s = float(1 / rate) if rate else 1 / 30
        # decode forward, not seek, to a frame at most max(max_gap_frames, widest keyframe spacing seen)
        # frames ahead: a seek decodes from the keyframe at or before the wanted frame, up to that many
        # frames (at LeRobot's g=2, one or two: 2 is the break-even; 3 decoded 3% more frames in
        # order="frames")
        self._max_gap_frames = max_gap_frames
        self._key_gap_s = 0.0  # widest keyframe spacing seen
        self._frames: Any = None  # generator of (frame, time) from the current position
        self._last: tuple[Any, float] | None = None  # last decoded frame and its time
        self._last_key: float | None = None  # time of the last keyframe decoded since the last seek
        self.closed = False
        self._stats.add(opens=1)

    # -- decoding
    def _seek(self, t: float) -> None:
        # decode_video_frames_pyav: nearest keyframe at or before t (without its one-tick margin)
        self._close_frames()
        self._container.seek(round(t / self._time_base), backward=True, any_frame=False, stream=self._stream)
        self._stats.add(seeks=1)
        self._frames = _decode(self._container, self._stream, self._stats)
        self._last = None
        self._last_key = None

    def _close_frames(self) -> None:
        if self._frames is not None:
            self._frames.close()
            self._frames = None

    def _to_rgb(self, frame: Any) -> np.ndarray:
        """``frame.to_ndarray(format="rgb24")``, LeRobot's conversion, with a reused scaler and without
        the copy: an ``[H, W, 3]`` view of the converted frame's pixels (the view keeps them alive)."""
        rgb = self._rgb.reformat(frame, format="rgb24")
        plane = rgb.planes[0]
        return np.ndarray(
            (rgb.height, rgb.width, 3), np.uint8, buffer=memoryview(plane), strides=(plane.line_size, 3, 1)
        )

    def _ahead_s(self, tolerance_s: float) -> float:
        """How far ahead of the last decoded frame a wanted time may lie to be decoded to, not sought."""
        return max(self._max_gap_frames * self._frame_s, self._key_gap_s) + tolerance_s

    def read(self, times: np.ndarray, tolerance_s: float) -> list[np.ndarray]:
        return _collect(self, times, tolerance_s)

    def read_into(self, times: np.ndarray, tolerance_s: float, sink: Sink) -> None:
        n = len(times)
        stats = self._stats
        i = 0
        while i < n:
            t = float(times[i])
            last = self._last
            if last is not None and abs(t - last[1]) < tolerance_s:  # the frame we stopped on
                arr = self._to_rgb(last[0])
                stats.add(frames_converted=1)
                while i < n and abs(float(times[i]) - last[1]) < tolerance_s:
                    sink(i, arr)
                    i += 1
                continue
            near = last is not None and last[1] < t <= last[1] + self._ahead_s(tolerance_s)
            if self._frames is None or not near:
                self._seek(t)
            loaded: list[float] = []
            for frame, ft in self._frames:
                self._last = (frame, ft)
                loaded.append(ft)
                if frame.key_frame:
                    if self._last_key is not None and ft - self._last_key > self._key_gap_s:
                        self._key_gap_s = ft - self._last_key
                    self._last_key = ft
                if abs(t - ft) < tolerance_s:
                    arr = self._to_rgb(frame)
                    stats.add(frames_converted=1)
                    while i < n and abs(float(times[i]) - ft) < tolerance_s:
                        sink(i, arr)
                        i += 1
                    if i == n:
                        break
                    t = float(times[i])
                    if t - ft > self._ahead_s(tolerance_s):
                        break  # far ahead: a seek is cheaper than decoding up to it
                elif t <= ft - tolerance_s:  # frames only move forward: no frame is close to t
                    raise _tolerance_error(self.path, "pyav", times[i:].tolist(), loaded, tolerance_s)
            else:
                self._frames = None  # end of the stream before t
                raise _tolerance_error(self.path, "pyav", times[i:].tolist(), loaded, tolerance_s)

    def close(self) -> None:
        self.closed = True
        self._close_frames()
        self._last = None
        self._container.close()
        if self._source is not None:
            self._source.close()


class TorchCodecFile:
    """A video file kept open with torchcodec's ``VideoDecoder`` (``seek_mode="approximate"``), read as
    LeRobot's ``decode_video_frames_torchcodec`` does: frame indices ``round(t * average_fps)``, then
    the tolerance check on the returned presentation times."""

    def __init__(self, path: str, stats: DecodeStats | None = None) -> None:
        from torchcodec.decoders import VideoDecoder

        self.path = path
        self.lock = threading.Lock()
        self._stats = stats if stats is not None else DecodeStats()
        self._decoder: VideoDecoder | None = VideoDecoder(path, seek_mode="approximate")
        fps = self._decoder.metadata.average_fps
        if fps is None:  # no frame rate in the metadata: frame indices round(t * fps) cannot be computed
            self._decoder = None
            raise ValueError(f"video file {path!r} has no average frame rate in its metadata")
        self._fps = fps
        self.closed = False
        self._stats.add(opens=1)

    def read(self, times: np.ndarray, tolerance_s: float) -> list[np.ndarray]:
        decoder = self._decoder
        if decoder is None:
            raise ValueError(f"video file {self.path!r} is closed")
        indices = [round(float(t) * self._fps) for t in times]
        batch = decoder.get_frames_at(indices=indices)
        pts = batch.pts_seconds.numpy().astype(np.float64)
        bad = np.abs(pts - np.asarray(times, dtype=np.float64)) >= tolerance_s
        if bad.any():
            raise _tolerance_error(
                self.path, "torchcodec", [float(x) for x in np.asarray(times)[bad]], pts.tolist(), tolerance_s
            )
        self._stats.add(frames_decoded=len(indices), frames_converted=len(indices))
        data = batch.data.permute(0, 2, 3, 1).numpy()  # NCHW -> NHWC, like PyAV's rgb24 arrays
        return list(data)

    def read_into(self, times: np.ndarray, tolerance_s: float, sink: Sink) -> None:
        for i, frame in enumerate(self.read(times, tolerance_s)):
            sink(i, frame)

    def close(self) -> None:
        self.closed = True
        self._decoder = None


@functools.cache
def torchcodec_available() -> bool:
    """Whether torchcodec imports and can load FFmpeg (its wheels need FFmpeg's shared libraries)."""
    if importlib.util.find_spec("torchcodec") is None:
        return False
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401
    except Exception:  # missing FFmpeg libraries, ABI mismatch with torch, ...
        return False
    return True


def default_backend() -> str:
    """``"torchcodec"`` when it is installed and loads, else ``"pyav"`` (LeRobot's choice)."""
    return "torchcodec" if torchcodec_available() else "pyav"


def _opener(backend: str) -> Callable[..., VideoFile]:
    if backend == "pyav":
        return PyAVFile
    if backend == "torchcodec":
        if not torchcodec_available():
            raise ValueError(
                "video_backend='torchcodec' but torchcodec is not installed or cannot load FFmpeg; "
                "install episode-sampler[torchcodec] and FFmpeg's shared libraries, or use 'pyav'"
            )
        return TorchCodecFile
    raise ValueError(f"video_backend must be one of {BACKENDS}, got {backend!r}")


_LIVE_CACHES: weakref.WeakSet[DecoderCache] = weakref.WeakSet()
_INHERITED: list[Any] = []  # decoders inherited through fork(): kept, never touched nor freed


def _after_fork_in_child() -> None:
    """A forked child (e.g. a DataLoader worker) inherits open decoders whose threads did not survive
    the fork: using or even freeing them can hang or crash. Park them for good; caches start empty."""
    for cache in list(_LIVE_CACHES):
        cache._forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class DecoderCache:
    """Open video files of one process, at most ``max_open`` of them, least recently used closed first.

    Thread-safe: files are handed out under a lock; each file has its own ``lock`` that callers hold
    while reading, and an evicted file is closed only once its reader is done. Per process: owners drop
    the cache when pickled (spawned DataLoader workers build their own), and a forked child starts with
    an empty cache (the parent's decoders are left untouched there).
    """

    def __init__(self, backend: str = "pyav", max_open: int = 32) -> None:
        if isinstance(max_open, bool) or not isinstance(max_open, int) or max_open < 1:
            raise ValueError(f"max_open must be an int >= 1, got {max_open!r}")
        self.backend = backend
        self._open = _opener(backend)
        self.max_open = max_open
        self.stats = DecodeStats()
        self._files: OrderedDict[str, VideoFile] = OrderedDict()
        self._lock = threading.Lock()
        _LIVE_CACHES.add(self)

    def __del__(self) -> None:  # close decoders in the process that opened them
        try:
            self.clear()
        except Exception:
            pass

    def _forget_after_fork(self) -> None:
        _INHERITED.append(list(self._files.values()))
        self._files = OrderedDict()
        self._lock = threading.Lock()
        self.stats = DecodeStats()

    def __len__(self) -> int:
        with self._lock:
            return len(self._files)

    def get(self, path: str | os.PathLike[str], source: Callable[[], Any] | None = None) -> VideoFile:
        """The open file for ``path``, opened now if needed (then the least recently used beyond
        ``max_open`` are closed); ``source()``, when given, makes the file object to open instead of
        the path (a remote file; PyAV only)."""
        key = os.fspath(path)
        evicted: list[VideoFile] = []
        with self._lock:
            f = self._files.get(key)
            if f is not None:
                self._files.move_to_end(key)
                return f
            f = (
                self._open(key, self.stats)
                if source is None
                else self._open(key, self.stats, source=source())
            )
            self._files[key] = f
            while len(self._files) > self.max_open:
                evicted.append(self._files.popitem(last=False)[1])
        for old in evicted:
            with old.lock:
                old.close()
        return f

    def read(
        self,
        path: str | os.PathLike[str],
        times: np.ndarray,
        tolerance_s: float,
        source: Callable[[], Any] | None = None,
    ) -> list[np.ndarray]:
        """Frames of ``path`` at the sorted unique seconds ``times`` (see :meth:`VideoFile.read`), read
        with the file's lock held; reopens the file if another thread evicted it meanwhile."""
        while True:
            f = self.get(path, source)
            with f.lock:
                if not f.closed:
                    return f.read(times, tolerance_s)

    def read_into(
        self,
        path: str | os.PathLike[str],
        times: np.ndarray,
        tolerance_s: float,
        sink: Sink,
        source: Callable[[], Any] | None = None,
    ) -> None:
        """:meth:`read`, each frame handed to ``sink(i, frame)`` as it is decoded (see
        :meth:`VideoFile.read_into`)."""
        while True:
            f = self.get(path, source)
            with f.lock:
                if not f.closed:
                    f.read_into(times, tolerance_s, sink)
                    return

    def clear(self) -> None:
        """Close every open file."""
        with self._lock:
            files = list(self._files.values())
            self._files.clear()
        for f in files:
            with f.lock:
                f.close()
