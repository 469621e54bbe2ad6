"""``episode_sampler.lerobot.byte_ranges``: Parquet column-chunk plans checked by reading through a file
that refuses any byte outside the plan, against plain pyarrow reads of the whole file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from episode_sampler.lerobot import LeRobotFrames, write_lerobot_dataset
from episode_sampler.lerobot.byte_ranges import PARQUET_HOLE, parquet_ranges, row_groups_of, source_reader
from episode_sampler.lerobot.mp4_index import merge_ranges
from tests.helpers.strict_file import OutsidePlan, StrictFile
from tests.helpers.video_dataset import CAMERAS


@pytest.fixture(scope="module")
def grouped(tmp_path_factory) -> Path:
    """A data-like file with several row groups and list, float, int and string columns."""
    n = 6000
    rng = np.random.default_rng(0)
    table = pa.table(
        {
            "observation.state": pa.FixedSizeListArray.from_arrays(
                pa.array(rng.standard_normal(n * 6).astype(np.float32)), 6
            ),
            "action": pa.array([rng.standard_normal(int(k)).tolist() for k in rng.integers(1, 5, n)]),
            "timestamp": pa.array(np.arange(n, dtype=np.float32) / 30),
            "index": pa.array(np.arange(n, dtype=np.int64)),
            "task": pa.array([f"task {i % 7}" for i in range(n)]),  # dictionary-encoded
        }
    )
    path = tmp_path_factory.mktemp("pq") / "file.parquet"
    pq.write_table(table, path, row_group_size=500)
    return path


@pytest.mark.parametrize("pre_buffer", [False, True])
@pytest.mark.parametrize("columns", [["timestamp"], ["action", "task"], ["observation.state", "index"], None])
def test_planned_row_groups_read_through_a_strict_file(grouped, columns, pre_buffer):
    meta = pq.read_metadata(grouped)
    size = grouped.stat().st_size
    full = pq.read_table(grouped, columns=columns)
    starts = np.cumsum([0] + [meta.row_group(g).num_rows for g in range(meta.num_row_groups)])
    rng = np.random.default_rng(len(columns or []))
    for _ in range(6):
        rows = rng.choice(full.num_rows, size=int(rng.integers(1, 20)), replace=False)
        groups = row_groups_of(meta, rows)
        # independent reference for the groups: brute force over the group bounds
        assert groups.tolist() == sorted(
            {g for r in rows for g in range(len(starts) - 1) if starts[g] <= r < starts[g + 1]}
        )
        plan = parquet_ranges(meta, size, groups.tolist(), columns)
        f = StrictFile(grouped, plan)
        got = pq.ParquetFile(f, pre_buffer=pre_buffer).read_row_groups(groups.tolist(), columns=columns)
        want = pa.concat_tables([full.slice(int(starts[g]), int(starts[g + 1] - starts[g])) for g in groups])
        assert got.equals(want)


def test_plan_leaves_out_other_columns_and_groups(grouped):
    meta = pq.read_metadata(grouped)
    size = grouped.stat().st_size
    plan = parquet_ranges(meta, size, [2], ["timestamp"], gap=0)
    planned = sum(b - a for a, b in plan)
    assert planned < size  # the file is larger than the footer read, so something is left out
    # another group's column chunk lies outside the plan: reading it is refused
    with pytest.raises(OutsidePlan):
        pq.ParquetFile(StrictFile(grouped, plan)).read_row_groups([5], columns=["timestamp"])
    with pytest.raises(OutsidePlan):
        pq.ParquetFile(StrictFile(grouped, plan)).read_row_groups([2], columns=["action"])


def test_footer_only_is_enough_to_open(grouped):
    meta = pq.read_metadata(grouped)
    size = grouped.stat().st_size
    plan = parquet_ranges(meta, size, [], None)
    assert plan == [(max(0, size - max(64 << 10, meta.serialized_size + 8)), size)]
    assert pq.ParquetFile(StrictFile(grouped, plan)).metadata.num_rows == meta.num_rows


def test_bad_row_group(grouped):
    meta = pq.read_metadata(grouped)
    with pytest.raises(IndexError, match="row group 99"):
        parquet_ranges(meta, grouped.stat().st_size, [99], None)


def test_source_reader_path_and_file(grouped):
    data = grouped.read_bytes()
    read, size = source_reader(grouped)
    assert size == len(data) and read(10, 50) == data[10:50]
    with open(grouped, "rb") as f:
        read, size = source_reader(f)
        assert size == len(data) and read(size - 8, size) == data[-8:] and read(0, 4) == b"PAR1"


# ------------------------------------------------------------------------------------------------ frames
class PlanCache:
    """A stand-in cache for a RemoteStore: ``ensure`` records what a prefetch would make local; once
    ``strict``, the store's file objects serve only those ranges (tests.helpers.strict_file)."""

    def __init__(self) -> None:
        self.allowed: dict[str, list[tuple[int, int]]] = {}
        self.strict = False

    def read(self, source, rel, start, stop):  # type: ignore[no-untyped-def]
        return source.read(rel, start, stop)

    def ensure(self, source, rel, ranges) -> int:  # type: ignore[no-untyped-def]
        self.allowed.setdefault(rel, []).extend(ranges)
        return sum(b - a for a, b in ranges)


def strict_store(root: Path) -> tuple[Any, PlanCache]:
    from episode_sampler.lerobot.storage import RemoteStore
    from tests.helpers.remote_standin import DirSource

    cache = PlanCache()

    def make(source, rel, c):  # type: ignore[no-untyped-def]
        path = root / rel
        ranges = c.allowed.get(rel, []) if c.strict else [(0, path.stat().st_size)]
        return StrictFile(path, ranges)

    return RemoteStore(DirSource(root), cache, file_type=make), cache


@pytest.fixture(scope="module")
def camera_dataset(tmp_path_factory) -> Path:
    """Cameras, several data files, each rewritten with several row groups (same rows)."""
    root = tmp_path_factory.mktemp("cams") / "ds"
    write_lerobot_dataset(
        root, 6, 20, 40, seed=2, episodes_per_file=3, cameras=CAMERAS, episodes_per_video_file=3
    )
    for path in sorted(root.glob("data/*/*.parquet")):
        table = pq.read_table(path)
        pq.write_table(table, path, row_group_size=9)
    return root


@pytest.mark.parametrize(
    ("kwargs", "cache_bytes"),
    [
        ({}, None),  # every column and camera, files read whole
        ({"columns": ["action", "observation.images.top"]}, 0),  # by row group
        (
            {
                "columns": ["timestamp"],
                "delta_indices": {"observation.images.side": [-3, 0], "action": [0, 5]},
            },
            0,
        ),
    ],
)
def test_planned_ranges_serve_get_batch(camera_dataset, kwargs, cache_bytes):
    local = LeRobotFrames(camera_dataset, return_uint8=True, video_backend="pyav", **kwargs)
    rng = np.random.default_rng(1)
    for _ in range(4):
        batch = rng.choice(len(local), size=int(rng.integers(1, 9)), replace=False)
        store, cache = strict_store(camera_dataset)
        extra = {} if cache_bytes is None else {"column_cache_bytes": cache_bytes}
        frames = LeRobotFrames(store, return_uint8=True, video_backend="pyav", **kwargs, **extra)
        planned = frames.byte_ranges(batch)
        assert frames.prefetch(batch) == sum(b - a for _, a, b in planned)
        cache.strict = True
        got = frames.get_batch(batch)
        want = local.get_batch(batch)
        assert got.keys() == want.keys()
        for k in want:
            if isinstance(want[k], torch.Tensor):
                assert torch.equal(got[k], want[k]), k
            else:
                assert got[k] == want[k], k
        frames.close()
    local.close()


@pytest.fixture(scope="module")
def wide_dataset(tmp_path_factory) -> Path:
    """Data files larger than pyarrow's 64 KiB footer read, with row groups of 200 rows."""
    root = tmp_path_factory.mktemp("wide") / "ds"
    write_lerobot_dataset(root, 4, 1000, 1200, seed=4, episodes_per_file=2, state_dim=8, action_dim=64)
    for path in sorted(root.glob("data/*/*.parquet")):
        pq.write_table(pq.read_table(path), path, row_group_size=200)
    return root


def test_plan_reads_only_the_row_groups_and_columns(wide_dataset):
    """By row group: the plan of a frame is its row group's chunks and the footer, a strict read of it
    succeeds, and reading a frame of another row group (or another column) through it is refused."""
    local = LeRobotFrames(wide_dataset, columns=["action", "timestamp"])
    store, cache = strict_store(wide_dataset)
    frames = LeRobotFrames(store, columns=["action", "timestamp"], column_cache_bytes=0)
    planned = frames.byte_ranges([3, 7])
    (rel,) = {r for r, _, _ in planned}
    path = wide_dataset / rel
    size = path.stat().st_size
    assert size > 96 << 10
    meta = pq.read_metadata(path)
    # the wanted columns of row group 0, and the columns a file's first read checks of every group
    want = merge_ranges(
        parquet_ranges(meta, size, [0], ["action", "timestamp"])
        + parquet_ranges(meta, size, range(meta.num_row_groups), ["index", "episode_index"]),
        PARQUET_HOLE,
    )
    assert planned == [(rel, a, b) for a, b in want]
    assert sum(b - a for a, b in want) < size / 2
    frames.prefetch([3, 7])
    cache.strict = True
    got = frames.get_batch([3, 7])
    ref = local.get_batch([3, 7])
    assert all(torch.equal(got[k], ref[k]) for k in ref)
    with pytest.raises(OSError):
        frames.get_batch([3, 450])  # row group 2 of the same file


def test_byte_ranges_bad_indices(camera_dataset):
    frames = LeRobotFrames(camera_dataset, columns=["action"])
    with pytest.raises(IndexError, match="out of range"):
        frames.byte_ranges([len(frames)])
    with pytest.raises(TypeError):
        frames.byte_ranges([0.5])
    assert frames.byte_ranges([]) == []
    assert frames.prefetch([0, 1]) == 0  # a local dataset: nothing to fetch
