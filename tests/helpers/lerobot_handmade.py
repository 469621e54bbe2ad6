"""A LeRobot v3 dataset written by hand with plain pyarrow (independent of ``write_lerobot_dataset``),
and reference reads of it, for tests/lerobot/."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# ---------------------------------------------------------------------------------------------- helpers
# A dataset written by hand with pyarrow: 5 episodes, 2 metadata files, 3 data files.
LENGTHS = [3, 5, 2, 4, 6]


DATA_GROUPS = [[0, 1], [2], [3, 4]]


META_GROUPS = [[0, 1, 2], [3, 4]]


def write_handmade(
    root: Path,
    lengths=LENGTHS,
    data_groups=DATA_GROUPS,
    meta_groups=META_GROUPS,
    *,
    starts=None,
    bounds: bool = True,
    data_names=None,
    info_overrides=None,
    data_index: bool = False,
) -> Path:
    """Write a LeRobot v3 dataset with plain pyarrow (independent of write_lerobot_dataset).

    ``data_index`` adds LeRobot's ``data/chunk_index``/``data/file_index`` columns to the episode
    table (data file ``k`` of ``data_groups`` is ``chunk-(k // 2)/file-(k % 2)``)."""
    lengths = list(lengths)
    if starts is None:
        starts = [sum(lengths[:e]) for e in range(len(lengths))]
    ends = [s + n for s, n in zip(starts, lengths)]
    for k, eps in enumerate(data_groups):
        rows = [(e, f, starts[e] + f) for e in eps for f in range(lengths[e])]
        idx = [r[2] for r in rows]
        table = pa.table(
            {
                "index": pa.array(idx, pa.int64()),
                "episode_index": pa.array([r[0] for r in rows], pa.int64()),
                "frame_index": pa.array([r[1] for r in rows], pa.int64()),
                "timestamp": pa.array([r[1] / 10 for r in rows], pa.float32()),
                "task_index": pa.array([r[0] % 2 for r in rows], pa.int64()),
                "observation.state": pa.array(
                    [[i, 2 * i, -i] for i in idx], pa.list_(pa.float32(), 3)
                ),  # fixed_size_list<float32>[3]
                "action": pa.array([[i + 0.5, r[0]] for i, r in zip(idx, rows)], pa.list_(pa.float32())),
                "done": pa.array([r[1] == lengths[r[0]] - 1 for r in rows], pa.bool_()),
                "note": pa.array([f"ep{r[0]}-f{r[1]}" for r in rows], pa.string()),
                "image": pa.array([{"bytes": b"x", "path": ""} for _ in rows]),  # unsupported struct
            }
        )
        name = data_names[k] if data_names else f"chunk-{k // 2:03d}/file-{k % 2:03d}.parquet"
        path = root / "data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
    for k, eps in enumerate(meta_groups):
        cols = {
            "episode_index": pa.array(eps, pa.int64()),
            "tasks": pa.array([[f"task {e % 2}"] for e in eps]),
            "length": pa.array([lengths[e] for e in eps], pa.int64()),
            "stats/action/mean": pa.array([[0.0, 0.0] for _ in eps]),
        }
        if data_index:
            where = {e: k for k, group in enumerate(data_groups) for e in group}
            cols["data/chunk_index"] = pa.array([where[e] // 2 for e in eps], pa.int64())
            cols["data/file_index"] = pa.array([where[e] % 2 for e in eps], pa.int64())
        if bounds:
            cols["dataset_from_index"] = pa.array([starts[e] for e in eps], pa.int64())
            cols["dataset_to_index"] = pa.array([ends[e] for e in eps], pa.int64())
        path = root / "meta" / "episodes" / f"chunk-{k:03d}" / "file-000.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(cols), path)
    info = {
        "codebase_version": "v3.0",
        "total_episodes": len(lengths),
        "total_frames": sum(lengths),
        "fps": 10,
        "chunks_size": 2,
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "features": {},
    }
    info.update(info_overrides or {})
    (root / "meta" / "info.json").write_text(json.dumps(info))
    return root


def reference_rows(root: Path) -> dict[int, dict]:
    """All data rows keyed by their global ``index``, read with plain pyarrow."""
    files = sorted((root / "data").glob("chunk-*/file-*.parquet"))
    table = pa.concat_tables([pq.read_table(f) for f in files])
    return {r["index"]: r for r in table.to_pylist()}


def reference_bounds(root: Path) -> list[tuple[int, int, int]]:
    """(episode_index, from, to) from the metadata files, read with plain pyarrow."""
    files = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    rows = sorted((r for f in files for r in pq.read_table(f).to_pylist()), key=lambda r: r["episode_index"])
    return [(r["episode_index"], r["dataset_from_index"], r["dataset_to_index"]) for r in rows]


def rewrite_table(path: Path, fn) -> None:
    """Replace the Parquet file at ``path`` by ``fn`` of its table."""
    pq.write_table(fn(pq.read_table(path)), path)
