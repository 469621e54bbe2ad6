"""A LeRobot v3 dataset described in words (``episode-sampler inspect DATASET_DIR``)."""

from __future__ import annotations

import os
from typing import Any

from .episode_table import episode_files, read_episode_table
from .meta import read_info
from .stats import read_stats
from .storage import Store, as_store
from .tasks import read_tasks
from .video_reader import video_columns

__all__ = ["describe_dataset"]

_W = 14  # label column width


def describe_dataset(root: str | os.PathLike[str] | Store) -> list[str]:
    """Lines describing the dataset at ``root``: size, episodes, files, features (cameras with their
    video encoding), tasks and stats.

    Raises:
        FileNotFoundError, ValueError: as :func:`~episode_sampler.lerobot.read_episode_index`.
    """
    store = as_store(root)
    info = read_info(store)
    features: dict[str, Any] = info.get("features") or {}
    video_keys = [k for k, f in features.items() if isinstance(f, dict) and f.get("dtype") == "video"]
    image_keys = [k for k, f in features.items() if isinstance(f, dict) and f.get("dtype") == "image"]
    where = {"data/chunk_index": "int", "data/file_index": "int", **video_columns(video_keys)}
    eps, table, _ = read_episode_table(store, info, where)
    lengths = eps.lengths
    data_files = _files(store, "data", info.get("data_path"), table, "data", {})
    meta_files = episode_files(store, info)
    fps = info.get("fps")

    lines = [
        _row(
            "dataset", f"LeRobot {info.get('codebase_version')}, robot {info.get('robot_type')!r}, {fps} fps"
        ),
        _row(
            "episodes",
            f"{eps.num_episodes} episodes, {eps.num_frames} frames"
            + (
                f" (length {int(lengths.min())}..{int(lengths.max())}, mean {float(lengths.mean()):.1f})"
                if lengths.size
                else ""
            ),
        ),
        _row("files", f"{len(data_files)} data files, {len(meta_files)} episode-table files"),
    ]
    plain = [k for k in features if k not in video_keys and k not in image_keys]
    width = max((len(k) for k in features), default=0)
    for i, key in enumerate(plain):
        f = features[key] if isinstance(features[key], dict) else {}
        lines.append(
            _row("features" if i == 0 else "", f"{key.ljust(width)}  {f.get('dtype')} {f.get('shape')}")
        )
    if video_keys or image_keys:
        for i, key in enumerate([*video_keys, *image_keys]):
            lines.append(
                _row(
                    "cameras" if i == 0 else "",
                    f"{key.ljust(width)}  {_camera(store, key, features[key], info, table)}",
                )
            )
    else:
        lines.append(_row("cameras", "none (no video or image features)"))
    tasks = read_tasks(store)
    if tasks is None:
        lines.append(_row("tasks", "none (no meta/tasks.parquet)"))
    else:
        shown = [repr(tasks[i]) for i in sorted(tasks)[:5]]
        more = f", ... ({len(tasks) - 5} more)" if len(tasks) > 5 else ""
        lines.append(_row("tasks", f"{len(tasks)}: " + ", ".join(shown) + more))
    stats = read_stats(store)
    if stats is None:
        lines.append(_row("stats", "none (no meta/stats.json)"))
    else:
        names = list(dict.fromkeys(s for per in stats.values() for s in per))
        lines.append(_row("stats", f"meta/stats.json: {len(stats)} features ({', '.join(names)})"))
    return lines


def _row(label: str, text: str) -> str:
    return f"{label.ljust(_W)}{text}"


def _files(
    store: Store,
    rel_dir: str,
    template: Any,
    table: dict[str, Any],
    prefix: str,
    fields: dict[str, str],
) -> list[str]:
    """The files under ``rel_dir`` (``chunk-*/file-*``), listed, or else named by the episode table's
    ``<prefix>/chunk_index``/``<prefix>/file_index`` with ``template``."""
    ext = "mp4" if rel_dir.startswith("videos/") else "parquet"
    listed = store.list(rel_dir, f"chunk-*/file-*.{ext}")
    if listed is not None:
        return listed
    chunk, file = table.get(f"{prefix}/chunk_index"), table.get(f"{prefix}/file_index")
    if not isinstance(template, str) or chunk is None or file is None:
        return []
    pairs = sorted(set(zip(chunk.tolist(), file.tolist())))
    return [template.format(chunk_index=c, file_index=f, **fields) for c, f in pairs]


def _camera(
    store: Store, key: str, feature: dict[str, Any], info: dict[str, Any], table: dict[str, Any]
) -> str:
    shape = feature.get("shape") or []
    names = feature.get("names") or []
    dims = dict(zip(names, shape)) if len(names) == len(shape) else {}
    if {"height", "width"} <= set(dims):
        size = f"{dims['height']}x{dims['width']}" + (f"x{dims['channels']}" if "channels" in dims else "")
    else:
        size = "x".join(str(s) for s in shape)
    if feature.get("dtype") == "image":
        return f"image {size}"
    vinfo = feature.get("info") or {}
    parts = [f"video {size}"]
    codec = " ".join(str(vinfo[k]) for k in ("video.codec", "video.pix_fmt") if vinfo.get(k))
    if codec:
        parts.append(codec)
    if vinfo.get("video.fps"):
        parts.append(f"{vinfo['video.fps']} fps")
    files = _files(store, f"videos/{key}", info.get("video_path"), table, f"videos/{key}", {"video_key": key})
    parts.append(f"{len(files)} file{'s' if len(files) != 1 else ''}")
    if files:
        total = sum(store.size(f) for f in files)
        parts.append(f"{total / 2**20:.1f} MiB")
    return ", ".join(parts)
