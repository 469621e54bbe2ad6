"""``episode_sampler.lerobot.frames`` (``LeRobotFrames``): items, column selection, ``delta_indices`` windows,
batched reads, pickling, file layouts and data-file errors, checked against plain pyarrow reads and a
per-frame brute force (the hand-written dataset is tests/helpers/lerobot_handmade.py)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch.utils.data import DataLoader

from episode_sampler.lerobot import TASKS, LeRobotFrames, read_episode_index, write_lerobot_dataset
from tests.helpers.lerobot_handmade import (
    LENGTHS,
    reference_bounds,
    reference_rows,
    rewrite_table,
    write_handmade,
)


def assert_item_matches(item: dict, row: dict, columns) -> None:
    for c in columns:
        v = item[c]
        if c == "note":
            assert v == row[c]
        elif c in ("observation.state", "action"):
            assert isinstance(v, torch.Tensor) and v.dim() == 1 and v.dtype == torch.float32
            np.testing.assert_array_equal(v.numpy(), np.asarray(row[c], np.float32))
        else:
            assert isinstance(v, torch.Tensor) and v.dim() == 0, c
            assert v.item() == pytest.approx(row[c]), c


def same(a, b) -> bool:
    """Equal values: tensors element-wise (and dtype), anything else (str, lists of str) with ==."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    return type(a) is type(b) and a == b


def brute_window(index: int, offsets, bounds, rows, key):
    """Per-frame loop over episode bounds (LeRobot's clamping rule)."""
    (lo, hi) = next((f, t) for _, f, t in bounds if f <= index < t)
    values, pads = [], []
    for d in offsets:
        j = index + d
        pads.append(not (lo <= j < hi))
        values.append(rows[min(max(j, lo), hi - 1)][key])
    return values, pads


ALL = [
    "index",
    "episode_index",
    "frame_index",
    "timestamp",
    "task_index",
    "observation.state",
    "action",
    "done",
]


# ---------------------------------------------------------------------------------------------- items
def test_items_match_pyarrow_reference(handmade):
    ds = LeRobotFrames(handmade)
    rows = reference_rows(handmade)
    assert len(ds) == sum(LENGTHS) == len(rows)
    assert list(ds.columns) == [*ALL, "note"]  # the image struct column is skipped
    assert len(ds.files) == 3
    for i in range(len(ds)):
        item = ds[i]
        assert set(item) == set(ds.columns)
        assert_item_matches(item, rows[i], ds.columns)
    assert ds[np.int64(4)]["index"].item() == 4
    assert ds[0]["done"].dtype == torch.bool
    assert ds[0]["index"].dtype == torch.int64 and ds[0]["timestamp"].dtype == torch.float32


def test_columns_selection_and_order(handmade):
    ds = LeRobotFrames(handmade, columns=["action", "index"], delta_indices={"observation.state": [0]})
    item = ds[3]
    assert list(item) == ["action", "index", "observation.state", "observation.state_is_pad"]
    assert ds.columns == ("action", "index")
    # a key both in columns and delta_indices is returned windowed only
    ds = LeRobotFrames(handmade, columns=["action", "index"], delta_indices={"action": [0, 1]})
    assert ds[3]["action"].shape == (2, 2) and ds.columns == ("index",)


def test_windows_match_brute_force(handmade):
    deltas = {
        "action": list(range(-2, 4)),
        "observation.state": [-1, 0],
        "note": [0, 1],
        "timestamp": [-3, 3],
    }
    ds = LeRobotFrames(handmade, columns=["index"], delta_indices=deltas)
    rows, bounds = reference_rows(handmade), reference_bounds(handmade)
    for i in range(len(ds)):
        item = ds[i]
        assert item["index"].item() == i
        for key, offsets in deltas.items():
            values, pads = brute_window(i, offsets, bounds, rows, key)
            assert item[f"{key}_is_pad"].dtype == torch.bool
            assert item[f"{key}_is_pad"].tolist() == pads
            if key == "note":
                assert item[key] == values
            else:
                got = item[key]
                assert got.shape[0] == len(offsets)
                np.testing.assert_array_equal(got.numpy(), np.asarray(values, np.float32))


def test_windows_synthetic_multi_file(synthetic):
    deltas = {"action": range(16), "observation.state": [-1, 0]}
    ds = LeRobotFrames(synthetic, delta_indices=deltas)
    rows, bounds = reference_rows(synthetic), reference_bounds(synthetic)
    idx = np.random.default_rng(0).integers(0, len(ds), 300)
    batch = ds.get_batch(idx)
    assert batch["action"].shape == (300, 16, 4) and batch["action_is_pad"].shape == (300, 16)
    assert batch["observation.state"].shape == (300, 2, 6)
    for b, i in enumerate(idx.tolist()):
        for key, offsets in deltas.items():
            values, pads = brute_window(i, offsets, bounds, rows, key)
            np.testing.assert_array_equal(batch[key][b].numpy(), np.asarray(values, np.float32))
            assert batch[f"{key}_is_pad"][b].tolist() == pads
        # independent formula of the synthetic writer
        assert batch["index"][b].item() == i
        np.testing.assert_array_equal(
            batch["observation.state"][b, 1].numpy(), np.float32(i + np.arange(6) / 10)
        )


def test_batched_equals_per_item(synthetic):
    ds = LeRobotFrames(synthetic, delta_indices={"action": [-1, 0, 5]})
    idx = [7, 3, 3, len(ds) - 1, 0, 120, 7]
    items = [ds[i] for i in idx]
    for many in (ds.__getitems__(idx), ds.__getitems__(np.array(idx)), ds.__getitems__(torch.tensor(idx))):
        assert len(many) == len(idx)
        for a, b in zip(many, items):
            assert a.keys() == b.keys()
            for k in a:
                assert same(a[k], b[k]), k
    batch = ds.get_batch(idx)
    for k in batch:
        column = [it[k] for it in items]
        assert same(batch[k], column if k == "task" else torch.stack(column)), k
    assert batch["task"] == [TASKS[t] for t in batch["task_index"].tolist()]
    assert ds.__getitems__([]) == []
    empty = ds.get_batch([])
    assert empty["action"].shape == (0, 3, 4) and empty["index"].shape == (0,)
    assert empty["task"] == []


def test_one_take_per_file(synthetic, monkeypatch):
    ds = LeRobotFrames(synthetic, delta_indices={"action": range(-5, 20), "observation.state": [-1, 0]})
    calls = []
    original = ds._data.take_rows

    def counting(k, rows, names):
        calls.append(k)
        return original(k, rows, names)

    monkeypatch.setattr(ds._data, "take_rows", counting)
    eps = read_episode_index(synthetic)
    idx = np.arange(len(ds))[::7]
    ds.get_batch(idx)
    files = np.searchsorted([int(ds_first) for ds_first in ds._data.first], idx, side="right") - 1
    assert sorted(calls) == sorted(set(calls)) == sorted(set(files.tolist()))
    calls.clear()
    ds.__getitems__([int(eps.starts[2]), int(eps.starts[2]) + 1])
    assert len(calls) == 1


def test_dataloader_uses_batched_path(synthetic):
    ds = LeRobotFrames(synthetic, columns=["index", "observation.state"], delta_indices={"action": [0, 1]})
    order = list(range(0, len(ds), 5))
    for workers in (0, 2):
        loader = DataLoader(ds, batch_size=8, sampler=order, num_workers=workers)
        got = [b for b in loader]
        assert torch.cat([b["index"] for b in got]).tolist() == order
        expected = ds.get_batch(order)
        for k in expected:
            assert torch.equal(torch.cat([b[k] for b in got]), expected[k]), k


def test_pickle_roundtrip(synthetic):
    ds = LeRobotFrames(synthetic, delta_indices={"action": range(4)})
    fresh = pickle.loads(pickle.dumps(ds))
    before = ds.get_batch([0, 50, 200])  # opens some tables
    assert ds.column_cache_info()["files"]
    data = pickle.dumps(ds)
    assert len(data) < 20_000  # tables are not pickled
    clone = pickle.loads(data)
    assert clone.column_cache_info()["files"] == [] and clone.column_cache_info()["bytes"] == 0
    for other in (clone, fresh):
        after = other.get_batch([0, 50, 200])
        for k in before:
            assert same(before[k], after[k]), k
        assert other.episodes == ds.episodes and len(other) == len(ds)


# ---------------------------------------------------------------------------------------------- layouts
def test_non_contiguous_index_within_a_file(tmp_path):
    # frames 3, 4 and 8..10 do not exist: positions skip them, windows stay inside episodes
    root = write_handmade(
        tmp_path, lengths=[3, 3, 2], data_groups=[[0, 1, 2]], meta_groups=[[0, 1, 2]], starts=[0, 5, 11]
    )
    ds = LeRobotFrames(root, columns=["index", "note"], delta_indices={"observation.state": [-1, 0, 1]})
    rows, bounds = reference_rows(root), reference_bounds(root)
    assert len(ds) == 8
    assert ds._data.rows_index[0] is not None  # per-file index fallback
    frames = [0, 1, 2, 5, 6, 7, 11, 12]
    batch = ds.get_batch(range(8))
    assert batch["index"].tolist() == frames
    assert batch["note"] == [rows[f]["note"] for f in frames]
    for b, f in enumerate(frames):
        values, pads = brute_window(f, [-1, 0, 1], bounds, rows, "observation.state")
        np.testing.assert_array_equal(batch["observation.state"][b].numpy(), np.asarray(values, np.float32))
        assert batch["observation.state_is_pad"][b].tolist() == pads


def test_data_files_sorted_by_first_index(tmp_path):
    # file-000 holds the last episodes, file-002 the first ones
    root = write_handmade(
        tmp_path,
        data_names=["chunk-000/file-002.parquet", "chunk-000/file-001.parquet", "chunk-000/file-000.parquet"],
    )
    ds = LeRobotFrames(root, columns=["index", "action"])
    assert [p.name for p in ds.files] == ["file-002.parquet", "file-001.parquet", "file-000.parquet"]
    rows = reference_rows(root)
    batch = ds.get_batch(range(len(ds)))
    assert batch["index"].tolist() == list(range(len(ds)))
    np.testing.assert_array_equal(
        batch["action"].numpy(), np.array([rows[i]["action"] for i in range(len(ds))])
    )


def test_multi_row_group_files(tmp_path):
    root = tmp_path
    write_lerobot_dataset(root, 4, 30, 30, episodes_per_file=4)
    path = root / "data/chunk-000/file-000.parquet"
    pq.write_table(pq.read_table(path), path, row_group_size=7)
    assert pq.ParquetFile(path).num_row_groups > 1
    ds = LeRobotFrames(root, delta_indices={"action": [0, 1]})
    batch = ds.get_batch(np.arange(120)[::-1])
    np.testing.assert_array_equal(batch["index"].numpy(), np.arange(120)[::-1])
    np.testing.assert_array_equal(
        batch["observation.state"].numpy(), np.float32(np.arange(120)[::-1, None] + np.arange(6) / 10)
    )


# ---------------------------------------------------------------------------------------------- errors
def test_index_errors(handmade):
    ds = LeRobotFrames(handmade, columns=["index"])
    n = len(ds)
    with pytest.raises(IndexError, match=rf"index {n} is out of range .* length {n}"):
        ds[n]
    with pytest.raises(IndexError, match=rf"index -1 is out of range .* length {n}"):
        ds[-1]
    with pytest.raises(IndexError, match=f"index {n + 5} "):
        ds.get_batch([0, n + 5])
    with pytest.raises(IndexError, match=f"length {n}"):
        ds.__getitems__([n])
    for bad in (1.0, "1", True, None, [1]):
        with pytest.raises(TypeError, match="int"):
            ds[bad]
    with pytest.raises(TypeError, match="int"):
        ds.get_batch([0.5])


def test_column_errors(handmade):
    with pytest.raises(ValueError, match=r"unknown column 'nope'.*available columns: \[.*'action'"):
        LeRobotFrames(handmade, columns=["index", "nope"])
    with pytest.raises(ValueError, match=r"delta_indices: unknown column 'actions'.*'observation.state'"):
        LeRobotFrames(handmade, delta_indices={"actions": [0]})
    with pytest.raises(ValueError, match="'image' has unsupported type"):
        LeRobotFrames(handmade, columns=["image"])
    with pytest.raises(ValueError, match="at least one offset"):
        LeRobotFrames(handmade, delta_indices={"action": []})
    with pytest.raises(TypeError, match="delta_indices"):
        LeRobotFrames(handmade, delta_indices={"action": [0.5]})
    with pytest.raises(TypeError, match="mapping"):
        LeRobotFrames(handmade, delta_indices=[("action", [0])])
    with pytest.raises(ValueError, match="'index' twice"):
        LeRobotFrames(handmade, columns=["index", "index"])
    with pytest.raises(TypeError, match="sequence"):
        LeRobotFrames(handmade, columns="index")


def refused(root: Path, mode: str, error=ValueError, **match):
    """``mode`` "scan" (no data/chunk_index in the episode table): every data file is checked when the
    dataset is opened; "table": the files are checked when first read."""
    if mode == "scan":
        with pytest.raises(error, **match):
            LeRobotFrames(root)
    else:
        ds = LeRobotFrames(root)
        with pytest.raises(error, **match):
            ds.get_batch(np.arange(len(ds)))


@pytest.mark.parametrize("mode", ["scan", "table"])
def test_data_disagreeing_with_episodes(tmp_path, mode):
    data1 = "data/chunk-000/file-001.parquet"  # holds episode 2 (frames 8, 9)
    table = mode == "table"
    root = write_handmade(tmp_path / "a", data_index=table)
    rewrite_table(root / data1, lambda t: t.slice(0, 1))
    refused(root, mode, match="episode 2 has length 2 in meta/episodes but 1 rows in data/")
    root = write_handmade(tmp_path / "b", data_index=table)
    rewrite_table(root / data1, lambda t: t.set_column(1, "episode_index", pa.array([2, 3], pa.int64())))
    refused(root, mode, match=r"file-001.parquet.*row 1 \(index 9\) has episode_index 3.*episode 2")
    root = write_handmade(tmp_path / "c", data_index=table)
    rewrite_table(root / data1, lambda t: t.set_column(0, "index", pa.array([9, 8], pa.int64())))
    refused(root, mode, match="sorted by a unique 'index'")
    root = write_handmade(
        tmp_path / "d",
        lengths=[2, 2],
        data_groups=[[0, 1]],
        meta_groups=[[0, 1]],
        starts=[0, 3],
        data_index=table,
    )
    rewrite_table(
        root / "data/chunk-000/file-000.parquet",
        lambda t: t.set_column(0, "index", pa.array([0, 1, 2, 3], pa.int64())),
    )
    refused(root, mode, match="index 2, which lies in no episode")
    root = write_handmade(tmp_path / "e", data_index=table)
    rewrite_table(root / data1, lambda t: t.drop_columns(["action"]))
    refused(root, mode, match="file-001.parquet.*no column 'action'")
    root = write_handmade(tmp_path / "f", data_index=table)
    rewrite_table(
        root / data1,
        lambda t: t.set_column(6, "action", pa.array([[1.0, 2.0, 3.0]] * 2, pa.list_(pa.float32()))),
    )
    ds = LeRobotFrames(root, columns=["action"])  # variable-size lists: detected when stacking
    with pytest.raises(ValueError, match="'action'.*different lengths"):
        ds.get_batch([0, 8])


@pytest.mark.parametrize("cache_bytes", [None, 0], ids=["files cached", "row-group reads"])
def test_data_files_checked_on_first_read(tmp_path, cache_bytes):
    """With data/chunk_index and data/file_index in the episode table, opening reads no data file but
    the first one's schema; each file is checked against the table when first read, once (from the
    same read when the file is cached whole, by reading its index columns before a row-group read)."""
    root = write_handmade(tmp_path / "ok", data_index=True)
    ds = LeRobotFrames(root, column_cache_bytes=cache_bytes)
    assert ds.column_cache_info()["misses"] == 0
    ref = reference_rows(root)
    got = ds.get_batch(np.arange(len(ds)))
    assert got["index"].tolist() == sorted(ref)
    assert [p.name for p in ds.files] == ["file-000.parquet", "file-001.parquet", "file-000.parquet"]
    # a file whose rows belong to an episode the table places in another file
    root = write_handmade(tmp_path / "g", data_index=True)
    meta = root / "meta/episodes/chunk-000/file-000.parquet"  # episodes 0, 1, 2
    rewrite_table(meta, lambda t: t.set_column(5, "data/file_index", pa.array([0, 1, 1], pa.int64())))
    ds = LeRobotFrames(root, columns=["index"], column_cache_bytes=cache_bytes)
    with pytest.raises(
        ValueError,
        match=r"episode 1 has length 5 in meta/episodes but 0 rows in data/ \(data file '.*file-001.parquet'",
    ):
        ds.get_batch([8, 9])  # the table places episodes 1 and 2 in file-001, which holds only 2
    with pytest.raises(
        ValueError,
        match=r"file-000.parquet' row 3 \(index 3\) belongs to episode 1, which meta/episodes "
        r"places in '.*chunk-000/file-001.parquet'",
    ):
        ds.get_batch([0])
    # files whose episodes interleave: refused when opened (from the table alone)
    root = write_handmade(tmp_path / "h", data_groups=[[0, 2], [1], [3, 4]], data_index=True)
    with pytest.raises(
        ValueError, match=r"file-000.parquet' and '.*file-001.parquet' both hold frame index 3"
    ):
        LeRobotFrames(root)
    # a data file the table names but that does not exist
    root = write_handmade(tmp_path / "i", data_index=True)
    (root / "data/chunk-001/file-000.parquet").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"data file '.*chunk-001/file-000.parquet' named by meta/episodes"
    ):
        LeRobotFrames(root)


def test_nested_fixed_size_lists_and_tensor_index(tmp_path):
    root = tmp_path
    write_lerobot_dataset(root, 3, 4, 4, episodes_per_file=2)
    for path in (root / "data").glob("*/*.parquet"):
        t = pq.read_table(path)
        idx = np.asarray(t.column("index"))
        grid = (idx[:, None] * 10 + np.arange(6)[None, :]).astype(np.float64).reshape(-1)
        inner = pa.FixedSizeListArray.from_arrays(pa.array(grid), 3)
        pq.write_table(t.append_column("grid", pa.FixedSizeListArray.from_arrays(inner, 2)), path)
    ds = LeRobotFrames(root, columns=["grid"], delta_indices={"grid": [0, 1]})
    item = ds[torch.tensor(5)]
    assert item["grid"].shape == (2, 2, 3) and item["grid"].dtype == torch.float64
    np.testing.assert_array_equal(item["grid"][1].numpy(), (60 + np.arange(6)).reshape(2, 3))
    assert item["grid_is_pad"].tolist() == [False, False]
    assert ds[7]["grid_is_pad"].tolist() == [False, True]  # last frame of episode 1


@pytest.mark.parametrize("mode", ["scan", "table"])
def test_column_type_differs_between_files(tmp_path, mode):
    root = write_handmade(tmp_path, data_index=mode == "table")
    path = root / "data/chunk-000/file-001.parquet"
    rewrite_table(path, lambda t: t.set_column(6, "action", t.column("action").cast(pa.list_(pa.float64()))))
    match = "'action' of data file .*file-001.parquet' has type list<.*double>"
    if mode == "scan":
        with pytest.raises(ValueError, match=match):
            LeRobotFrames(root, columns=["action"])
    else:
        ds = LeRobotFrames(root, columns=["action"])
        with pytest.raises(ValueError, match=match):
            ds.get_batch([8])
    ds = LeRobotFrames(root, columns=["index"])  # columns not requested are not checked
    assert ds.get_batch([8, 9])["index"].tolist() == [8, 9]
