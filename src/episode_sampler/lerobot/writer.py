"""Small, deterministic LeRobot v3 datasets written with pyarrow, for tests, examples and benchmarks.

Every value is a function of the frame's global ``index`` ``i`` (and its episode), so a reader can be
checked without trusting the writer::

    observation.state[j] = float32(i + j / 10)          j < state_dim
    action[j]            = float32(-(i + j / 10) - 1)   j < action_dim
    timestamp            = float32(frame_index / fps)
    camera <key> pixels  = video_encode.camera_frame(i, height, width)   (video, lossy AV1)

Float32 holds the index exactly only up to 2**24 frames.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..core.layout import EpisodeIndex
from ..core.validation import check_int
from .stats import dataset_stats, episode_stats, stats_columns, write_stats
from .tasks import write_tasks
from .video_encode import MIN_CAMERA_SIZE, VIDEO_PATH, CameraFrames, write_camera_videos

__all__ = ["TASKS", "write_lerobot_dataset"]

TASKS: tuple[str, ...] = ("pick the cube", "push the block", "open the drawer")
_PATH = "chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"


def write_lerobot_dataset(
    root: str | os.PathLike[str],
    num_episodes: int = 20,
    min_length: int = 20,
    max_length: int = 60,
    seed: int = 0,
    *,
    episodes_per_file: int = 8,
    files_per_chunk: int = 2,
    state_dim: int = 6,
    action_dim: int = 4,
    fps: int = 30,
    cameras: Mapping[str, tuple[int, int]] | None = None,
    episodes_per_video_file: int | None = None,
) -> EpisodeIndex:
    """Write a valid LeRobot v3 dataset of random-length episodes to ``root``; return its episodes.

    Episode lengths (uniform in ``[min_length, max_length]``) and task of each episode are drawn from
    ``numpy.random.default_rng(seed)``, so the output is identical for equal arguments. Data files hold
    ``episodes_per_file`` whole episodes each, metadata files ``2 * episodes_per_file`` episodes, and
    each ``chunk-XXX`` directory holds at most ``files_per_chunk`` files. Frame values follow the
    formulas in the module docstring; ``meta/tasks.parquet`` lists :data:`TASKS` in LeRobot's layout
    (see :mod:`.tasks`), task ``j`` with ``task_index`` ``j``.

    Args:
        root: target directory; created if missing, must not already hold ``meta/`` or ``data/``.
        num_episodes, min_length, max_length: number of episodes and their length range (>= 1).
        seed: RNG seed (>= 0).
        episodes_per_file, files_per_chunk: file layout (>= 1).
        state_dim, action_dim: widths of ``observation.state`` and ``action`` (>= 1).
        fps: frames per second written to ``info.json`` and used for ``timestamp`` (>= 1).
        cameras: video features to write, ``{key: (height, width)}`` (each >= 64), e.g.
            ``{"observation.images.top": (96, 96)}``. Encoded as LeRobot encodes them (libsvtav1
            through PyAV, yuv420p, ``g=2``, crf 30), episodes appended to shared files
            ``videos/<key>/chunk-XXX/file-YYY.mp4`` with ``from_timestamp``/``to_timestamp`` in the
            episode table; the pixels of frame ``index`` encode ``index``
            (:func:`episode_sampler.lerobot.video_encode.camera_frame`), and their per-channel stats
            go to the episode table and ``meta/stats.json`` like the other features'.
        episodes_per_video_file: episodes per video file (default ``episodes_per_file``).

    Raises:
        TypeError: a non-integer argument.
        ValueError: an argument out of range (named in the message).
        FileExistsError: ``root`` already holds a dataset.
    """
    num_episodes = check_int("num_episodes", num_episodes, minimum=1)
    min_length = check_int("min_length", min_length, minimum=1)
    max_length = check_int("max_length", max_length, minimum=min_length)
    seed = check_int("seed", seed, minimum=0)
    episodes_per_file = check_int("episodes_per_file", episodes_per_file, minimum=1)
    files_per_chunk = check_int("files_per_chunk", files_per_chunk, minimum=1)
    state_dim = check_int("state_dim", state_dim, minimum=1)
    action_dim = check_int("action_dim", action_dim, minimum=1)
    fps = check_int("fps", fps, minimum=1)
    cams = _check_cameras(cameras)
    per_video = check_int(
        "episodes_per_video_file",
        episodes_per_file if episodes_per_video_file is None else episodes_per_video_file,
        minimum=1,
    )
    root = Path(root)
    for sub in ("meta", "data"):
        if (root / sub).exists():
            raise FileExistsError(
                f"{str(root / sub)!r} already exists; write_lerobot_dataset needs a fresh root"
            )

    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_length, max_length + 1, size=num_episodes, dtype=np.int64)
    task_of = rng.integers(0, len(TASKS), size=num_episodes, dtype=np.int64)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    total = int(ends[-1])

    index = np.arange(total, dtype=np.int64)
    episode = np.repeat(np.arange(num_episodes, dtype=np.int64), lengths)
    frame = index - starts[episode]
    base = index[:, None] + np.arange(max(state_dim, action_dim))[None, :] / 10.0
    state = base[:, :state_dim].astype(np.float32)
    action = (-base[:, :action_dim] - 1.0).astype(np.float32)
    columns = {
        "observation.state": pa.FixedSizeListArray.from_arrays(pa.array(state.reshape(-1)), state_dim),
        "action": pa.FixedSizeListArray.from_arrays(pa.array(action.reshape(-1)), action_dim),
        "timestamp": pa.array((frame / fps).astype(np.float32)),
        "frame_index": pa.array(frame),
        "episode_index": pa.array(episode),
        "index": pa.array(index),
        "task_index": pa.array(task_of[episode]),
    }
    data = pa.table(columns)

    video_cols: dict[str, np.ndarray] = {}
    video_features: dict[str, Any] = {}
    for key, size in cams.items():
        cols, video_features[key] = write_camera_videos(
            root, key, size, starts, ends, fps, episodes_per_file=per_video, files_per_chunk=files_per_chunk
        )
        video_cols.update(cols)

    info: dict[str, Any] = {
        "codebase_version": "v3.0",
        "robot_type": "synthetic",
        "total_episodes": num_episodes,
        "total_frames": total,
        "total_tasks": len(TASKS),
        "chunks_size": files_per_chunk,
        "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 500,
        "fps": fps,
        "splits": {"train": f"0:{num_episodes}"},
        "data_path": "data/" + _PATH,
        "video_path": VIDEO_PATH if cams else None,
        "features": {
            "observation.state": {
                "dtype": "float32",
                "shape": [state_dim],
                "names": [f"state_{j}" for j in range(state_dim)],
            },
            "action": {
                "dtype": "float32",
                "shape": [action_dim],
                "names": [f"action_{j}" for j in range(action_dim)],
            },
            **video_features,
            "timestamp": {"dtype": "float32", "shape": [1], "names": None},
            "frame_index": {"dtype": "int64", "shape": [1], "names": None},
            "episode_index": {"dtype": "int64", "shape": [1], "names": None},
            "index": {"dtype": "int64", "shape": [1], "names": None},
            "task_index": {"dtype": "int64", "shape": [1], "names": None},
        },
    }
    # per-episode stats as LeRobot's writer computes them from its episode buffer (timestamps there
    # are frame_index / fps in float64), and stats.json as its running aggregate
    episode_data: dict[str, Any] = {
        "observation.state": state,
        "action": action,
        "timestamp": frame / fps,
        "frame_index": frame,
        "episode_index": episode,
        "index": index,
        "task_index": task_of[episode],
        **{key: CameraFrames(0, total, h, w) for key, (h, w) in cams.items()},
    }
    per_episode = [
        episode_stats({k: v[lo:hi] for k, v in episode_data.items()}, info["features"])
        for lo, hi in zip(starts.tolist(), ends.tolist())
    ]
    write_stats(root, dataset_stats(per_episode))

    data_file = np.arange(num_episodes) // episodes_per_file
    for f, first in enumerate(range(0, num_episodes, episodes_per_file)):
        last = min(first + episodes_per_file, num_episodes) - 1
        lo, hi = int(starts[first]), int(ends[last])
        _write(data.slice(lo, hi - lo), root / "data" / _path(f, files_per_chunk))

    per_meta = 2 * episodes_per_file
    for f, first in enumerate(range(0, num_episodes, per_meta)):
        eps = np.arange(first, min(first + per_meta, num_episodes), dtype=np.int64)
        chunk, file = divmod(f, files_per_chunk)
        meta = pa.table(
            {
                "episode_index": pa.array(eps),
                "tasks": pa.array([[TASKS[t]] for t in task_of[eps].tolist()], type=pa.list_(pa.string())),
                "length": pa.array(lengths[eps]),
                "data/chunk_index": pa.array(data_file[eps] // files_per_chunk),
                "data/file_index": pa.array(data_file[eps] % files_per_chunk),
                "dataset_from_index": pa.array(starts[eps]),
                "dataset_to_index": pa.array(ends[eps]),
                **{name: pa.array(values[eps]) for name, values in video_cols.items()},
                **stats_columns(per_episode[first : first + eps.size]),
                "meta/episodes/chunk_index": pa.array(np.full(eps.size, chunk, dtype=np.int64)),
                "meta/episodes/file_index": pa.array(np.full(eps.size, file, dtype=np.int64)),
            }
        )
        _write(meta, root / "meta" / "episodes" / _path(f, files_per_chunk))

    write_tasks(root, TASKS)
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=4) + "\n", encoding="utf-8")
    return EpisodeIndex(starts, ends, episode_ids=np.arange(num_episodes))


def _check_cameras(cameras: Mapping[str, tuple[int, int]] | None) -> dict[str, tuple[int, int]]:
    if cameras is None:
        return {}
    if not isinstance(cameras, Mapping):
        raise TypeError(f"cameras must be a mapping of key -> (height, width), got {type(cameras).__name__}")
    out = {}
    for key, size in cameras.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"cameras must be keyed by non-empty str, got {key!r}")
        if isinstance(size, (str, bytes)) or not isinstance(size, Sequence) or len(size) != 2:
            raise ValueError(f"cameras[{key!r}] must be (height, width), got {size!r}")
        h = check_int(f"cameras[{key!r}] height", size[0], minimum=MIN_CAMERA_SIZE)
        w = check_int(f"cameras[{key!r}] width", size[1], minimum=MIN_CAMERA_SIZE)
        out[key] = (h, w)
    return out


def _path(f: int, files_per_chunk: int) -> str:
    chunk, file = divmod(f, files_per_chunk)
    return _PATH.format(chunk_index=chunk, file_index=file)


def _write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
