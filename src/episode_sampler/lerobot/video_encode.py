"""Camera videos for synthetic LeRobot v3 datasets, encoded as LeRobot 0.6.1 encodes them.

LeRobot records each episode of each camera into its own MP4 (``libsvtav1`` through PyAV, pixel format
``yuv420p``, ``g=2``, ``crf=30``, ``preset=12``), then appends it to the camera's current file with
FFmpeg's concat demuxer (stream copy, no re-encode), so many episodes share one file
``videos/<key>/chunk-XXX/file-YYY.mp4``. The episode's ``from_timestamp`` is the duration of what the
file held before it, ``to_timestamp`` adds the episode's own duration. This module does the same.

The pixels of every frame encode its global frame ``index`` (:func:`camera_frame`): an 8 x 8 grid of
dark/bright cells holds the index's 32 bits and their complement, on a gradient background that moves
with the index. The cells are big enough to survive AV1's lossy compression, so
:func:`read_frame_index` recovers the index from a decoded frame and tests can prove which frame was
decoded.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CameraFrames",
    "ENCODER_OPTIONS",
    "MIN_CAMERA_SIZE",
    "VIDEO_PATH",
    "camera_frame",
    "encode_frames",
    "read_frame_index",
    "video_info",
    "write_camera_videos",
]

VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
"""LeRobot v3's ``video_path`` template (``info.json``)."""

VCODEC, PIX_FMT = "libsvtav1", "yuv420p"
ENCODER_OPTIONS: dict[str, Any] = {"g": 2, "crf": 30, "preset": 12, "fast_decode": 0}
"""LeRobot 0.6.1's default RGB encoder settings (``RGBEncoderConfig()``)."""

MIN_CAMERA_SIZE = 64
"""Smallest camera height/width accepted: SVT-AV1 has crashed on tiny frames."""

_GRID = 8  # cells per side; 64 cells = 32 index bits + their 32 complements
_BITS = 32
_DARK, _BRIGHT = 40, 215


def camera_frame(index: int, height: int, width: int) -> np.ndarray:
    """The synthetic RGB image (``uint8``, ``[height, width, 3]``) of the frame with global ``index``.

    Cell ``(r, c)`` of an 8 x 8 grid (row-major number ``k = 8 r + c``) is bright when bit ``k`` of
    ``index`` is set (``k < 32``) or bit ``k - 32`` is clear (``k >= 32``), else dark; the inner half of
    each cell carries the bit, its border a gradient that moves with ``index``.
    """
    if not 0 <= index < 2**_BITS:
        raise ValueError(f"index must be in [0, 2**32), got {index}")
    if height < MIN_CAMERA_SIZE or width < MIN_CAMERA_SIZE:
        raise ValueError(
            f"camera size must be at least {MIN_CAMERA_SIZE}x{MIN_CAMERA_SIZE}, got {height}x{width}"
        )
    bits = (index >> np.arange(_BITS)) & 1
    cells = np.concatenate([bits, 1 - bits]).reshape(_GRID, _GRID)
    rows = np.minimum(np.arange(height) * _GRID // height, _GRID - 1)
    cols = np.minimum(np.arange(width) * _GRID // width, _GRID - 1)
    value = np.where(cells[rows][:, cols] == 1, _BRIGHT, _DARK).astype(np.uint8)
    # background gradient on the cell borders, so frames are not flat and change over time
    yy, xx = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    grad = ((xx * 3 + yy * 2 + index * 7) % 96 + 80).astype(np.uint8)
    ch, cw = height / _GRID, width / _GRID
    in_row = np.abs((yy % ch) - ch / 2) < ch / 4
    in_col = np.abs((xx % cw) - cw / 2) < cw / 4
    img = np.where(in_row & in_col, value, grad)
    out = np.empty((height, width, 3), dtype=np.uint8)
    out[..., 0] = img
    out[..., 1] = img
    out[..., 2] = img
    return out


class CameraFrames:
    """The :func:`camera_frame` images of global frames ``start .. stop - 1`` as ``uint8`` ``[3, H, W]``
    arrays, made on access: ``len()``, integer indexing and slicing (for per-episode stats)."""

    def __init__(self, start: int, stop: int, height: int, width: int) -> None:
        self.start, self.stop, self.height, self.width = start, stop, height, width

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, key: int | slice) -> Any:
        if isinstance(key, slice):
            lo, hi, step = key.indices(len(self))
            if step != 1:
                raise ValueError("CameraFrames slices must be contiguous")
            return CameraFrames(self.start + lo, self.start + max(lo, hi), self.height, self.width)
        i = int(key)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"frame {key} out of range for {len(self)} frames")
        return camera_frame(self.start + i, self.height, self.width).transpose(2, 0, 1)


def read_frame_index(image: np.ndarray) -> int:
    """The global frame index encoded in a (decoded) :func:`camera_frame` image.

    Accepts ``[H, W, 3]`` or ``[3, H, W]`` arrays/tensors, ``uint8`` or float in ``[0, 1]``.

    Raises:
        ValueError: the image does not hold a valid pattern (its bits and complements disagree).
    """
    arr = np.asarray(image.numpy() if hasattr(image, "numpy") else image)
    if arr.ndim != 3:
        raise ValueError(f"image must have 3 dims, got shape {arr.shape}")
    if arr.shape[0] == 3 and arr.shape[-1] != 3:
        arr = arr.transpose(1, 2, 0)
    gray = arr.astype(np.float64).mean(axis=2)
    if np.issubdtype(arr.dtype, np.floating):
        gray = gray * 255
    height, width = gray.shape
    ch, cw = height / _GRID, width / _GRID
    means = np.empty((_GRID, _GRID))
    for r in range(_GRID):
        for c in range(_GRID):
            y0, y1 = int(r * ch + ch * 3 / 8), int(r * ch + ch * 5 / 8)
            x0, x1 = int(c * cw + cw * 3 / 8), int(c * cw + cw * 5 / 8)
            means[r, c] = gray[y0 : max(y1, y0 + 1), x0 : max(x1, x0 + 1)].mean()
    cells = (means.reshape(-1) > (_DARK + _BRIGHT) / 2).astype(np.int64)
    bits, check = cells[:_BITS], cells[_BITS:]
    if not np.array_equal(bits, 1 - check):
        raise ValueError("image does not hold a frame-index pattern (bits and complements disagree)")
    return int((bits << np.arange(_BITS)).sum())


def encode_frames(path: str | os.PathLike[str], frames: Sequence[np.ndarray] | np.ndarray, fps: int) -> None:
    """Encode RGB ``uint8`` ``[H, W, 3]`` frames into the MP4 ``path`` as LeRobot's ``encode_video_frames``
    does: ``libsvtav1`` through PyAV, ``yuv420p``, :data:`ENCODER_OPTIONS`, frame rate ``fps``."""
    import av

    if len(frames) == 0:
        raise ValueError("encode_frames needs at least one frame")
    height, width = frames[0].shape[:2]
    # LeRobot: VideoEncoderConfig.get_codec_options(as_strings=True)
    options = {
        "g": str(ENCODER_OPTIONS["g"]),
        "crf": str(ENCODER_OPTIONS["crf"]),
        "preset": str(ENCODER_OPTIONS["preset"]),
        "svtav1-params": f"fast-decode={ENCODER_OPTIONS['fast_decode']}",
    }
    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its configuration to stderr otherwise
    logging.getLogger("libav").setLevel(logging.WARNING)
    with av.open(str(path), "w") as output:
        stream = output.add_stream(VCODEC, fps, options=options)
        stream.pix_fmt = PIX_FMT
        stream.width = width
        stream.height = height
        for img in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)


def _duration_s(path: Path) -> float:
    """LeRobot's ``get_video_duration_in_s``."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.duration is not None:
            return float(stream.duration * stream.time_base)
        return float(container.duration / av.time_base)


def _concatenate(inputs: list[Path], output: Path) -> None:
    """LeRobot's ``concatenate_video_files``: concat demuxer, stream copy, ``movflags=faststart``."""
    import av

    with tempfile.NamedTemporaryFile(mode="w", suffix=".ffconcat", delete=False) as listing:
        listing.write("ffconcat version 1.0\n")
        for path in inputs:
            listing.write(f"file '{path.resolve()}'\n")
        listing_path = listing.name
    with tempfile.NamedTemporaryFile(suffix=".mp4", delete=False, dir=output.parent) as tmp:
        tmp_path = tmp.name
    try:
        with av.open(listing_path, "r", format="concat", options={"safe": "0"}) as src:
            with av.open(tmp_path, "w", format="mp4", options={"movflags": "faststart"}) as dst:
                streams = {}
                for s in src.streams:
                    if s.type == "video":
                        streams[s.index] = dst.add_stream_from_template(template=s, opaque=True)
                        streams[s.index].time_base = s.time_base
                for packet in src.demux():
                    if packet.stream.index not in streams or packet.dts is None:
                        continue
                    packet.stream = streams[packet.stream.index]
                    dst.mux(packet)
        shutil.move(tmp_path, output)
    finally:
        Path(tmp_path).unlink(missing_ok=True)
        Path(listing_path).unlink(missing_ok=True)


def video_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``info`` dict LeRobot stores under a video feature of ``info.json`` (``get_video_info`` with
    the default RGB encoder config, merged over ``{"is_depth_map": False}``)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        info: dict[str, Any] = {
            "is_depth_map": False,
            "video.height": stream.height,
            "video.width": stream.width,
            "video.codec": stream.codec.canonical_name,
            "video.pix_fmt": stream.pix_fmt,
            "video.fps": int(stream.base_rate),
            "video.channels": len(av.VideoFormat(stream.pix_fmt).components),
            "has_audio": False,
        }
    info.update(
        {
            "video.g": ENCODER_OPTIONS["g"],
            "video.crf": ENCODER_OPTIONS["crf"],
            "video.preset": ENCODER_OPTIONS["preset"],
            "video.fast_decode": ENCODER_OPTIONS["fast_decode"],
            "video.video_backend": "pyav",
            "video.extra_options": {},
        }
    )
    return info


def write_camera_videos(
    root: str | os.PathLike[str],
    key: str,
    size: tuple[int, int],
    starts: np.ndarray,
    ends: np.ndarray,
    fps: int,
    *,
    episodes_per_file: int,
    files_per_chunk: int,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Encode camera ``key`` of every episode (frames ``starts[e] .. ends[e] - 1``, pixels from
    :func:`camera_frame`) into ``root/videos/<key>/chunk-XXX/file-YYY.mp4``, ``episodes_per_file``
    consecutive episodes per file and ``files_per_chunk`` files per chunk directory.

    Returns the episode-table columns (``videos/<key>/chunk_index``, ``file_index``,
    ``from_timestamp``, ``to_timestamp``, one value per episode) and the ``info.json`` feature.
    """
    height, width = size
    root = Path(root)
    num = len(starts)
    cols = {
        f"videos/{key}/chunk_index": np.zeros(num, np.int64),
        f"videos/{key}/file_index": np.zeros(num, np.int64),
        f"videos/{key}/from_timestamp": np.zeros(num, np.float64),
        f"videos/{key}/to_timestamp": np.zeros(num, np.float64),
    }
    first_file: Path | None = None
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        for f, first in enumerate(range(0, num, episodes_per_file)):
            chunk, file = divmod(f, files_per_chunk)
            target = root / VIDEO_PATH.format(video_key=key, chunk_index=chunk, file_index=file)
            target.parent.mkdir(parents=True, exist_ok=True)
            parts, offset = [], 0.0
            for e in range(first, min(first + episodes_per_file, num)):
                part = Path(tmp) / f"episode_{e:06d}.mp4"
                frames = [camera_frame(i, height, width) for i in range(int(starts[e]), int(ends[e]))]
                encode_frames(part, frames, fps)
                duration = _duration_s(part)
                cols[f"videos/{key}/chunk_index"][e] = chunk
                cols[f"videos/{key}/file_index"][e] = file
                cols[f"videos/{key}/from_timestamp"][e] = offset
                cols[f"videos/{key}/to_timestamp"][e] = offset + duration
                offset += duration
                parts.append(part)
            if len(parts) == 1:
                shutil.move(parts[0], target)
            else:
                _concatenate(parts, target)
            first_file = first_file or target
    assert first_file is not None
    feature = {
        "dtype": "video",
        "shape": [height, width, 3],
        "names": ["height", "width", "channels"],
        "info": video_info(first_file),
    }
    return cols, feature
