"""``episode_sampler.lerobot.byte_ranges``: Parquet column-chunk plans checked by reading through a file
that refuses any byte outside the plan, against plain pyarrow reads of the whole file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from episode_sampler.lerobot.byte_ranges import parquet_ranges, row_groups_of, source_reader
from tests.helpers.strict_file import OutsidePlan, StrictFile


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
