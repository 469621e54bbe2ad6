from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch.utils.data import DataLoader

from episode_sampler.core.layout import EpisodeIndex
from episode_sampler.lerobot import TASKS, LeRobotFrames, read_episode_index, write_lerobot_dataset

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
) -> Path:
    """Write a LeRobot v3 dataset with plain pyarrow (independent of write_lerobot_dataset)."""
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


@pytest.fixture(scope="module")
def handmade(tmp_path_factory) -> Path:
    return write_handmade(tmp_path_factory.mktemp("handmade"))


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    write_lerobot_dataset(root, 40, 5, 30, seed=3, episodes_per_file=3, files_per_chunk=4)
    return root


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


# ---------------------------------------------------------------------------------------------- episode table
def test_read_episode_index_handmade(handmade):
    eps = read_episode_index(handmade)
    bounds = reference_bounds(handmade)
    assert eps.episode_ids.tolist() == [b[0] for b in bounds] == [0, 1, 2, 3, 4]
    assert eps.starts.tolist() == [b[1] for b in bounds]
    assert eps.ends.tolist() == [b[2] for b in bounds]
    assert eps.lengths.tolist() == LENGTHS
    assert read_episode_index(handmade) == eps


def test_read_episode_index_sorts_by_episode_index(tmp_path):
    # metadata files list episodes out of order; data groups likewise
    root = write_handmade(tmp_path, meta_groups=[[3, 0], [4, 2, 1]])
    eps = read_episode_index(root)
    assert eps.episode_ids.tolist() == [0, 1, 2, 3, 4]
    assert eps.lengths.tolist() == LENGTHS


def test_read_episode_index_falls_back_to_lengths(tmp_path):
    root = write_handmade(tmp_path, bounds=False)
    names = pq.read_schema(next((root / "meta" / "episodes").glob("*/*.parquet"))).names
    assert "dataset_from_index" not in names
    eps = read_episode_index(root)
    assert eps == EpisodeIndex.from_lengths(LENGTHS)
    ds = LeRobotFrames(root, columns=["index", "episode_index"], delta_indices={"action": [-1, 0, 1]})
    rows = reference_rows(root)
    batch = ds.get_batch(range(len(ds)))
    assert batch["index"].tolist() == sorted(rows)
    assert batch["episode_index"].tolist() == [rows[i]["episode_index"] for i in sorted(rows)]


def test_read_episode_index_keeps_ids_and_gaps(tmp_path):
    root = write_handmade(
        tmp_path, lengths=[2, 3], data_groups=[[0, 1]], meta_groups=[[0, 1]], starts=[4, 10]
    )
    eps = read_episode_index(root)
    assert eps.starts.tolist() == [4, 10] and eps.ends.tolist() == [6, 13]


def test_read_synthetic(synthetic):
    bounds = reference_bounds(synthetic)
    eps = read_episode_index(synthetic)
    assert [(int(i), int(s), int(e)) for i, s, e in zip(eps.episode_ids, eps.starts, eps.ends)] == bounds
    assert len(list((synthetic / "meta" / "episodes").glob("*/*.parquet"))) > 1


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


def test_missing_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        read_episode_index(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="info.json"):
        read_episode_index(tmp_path)
    root = write_handmade(tmp_path / "a")
    for path in (root / "meta" / "episodes").glob("*/*.parquet"):
        path.unlink()
    with pytest.raises(FileNotFoundError, match=r"episodes.*chunk-\*/file-\*\.parquet"):
        read_episode_index(root)
    root = write_handmade(tmp_path / "b")
    for path in (root / "data").glob("*/*.parquet"):
        path.unlink()
    with pytest.raises(FileNotFoundError, match="data"):
        LeRobotFrames(root)


def test_bad_info_json(tmp_path):
    root = write_handmade(tmp_path / "a")
    (root / "meta" / "info.json").write_text("{not json")
    with pytest.raises(ValueError, match="info.json.*not valid JSON"):
        read_episode_index(root)
    (root / "meta" / "info.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        read_episode_index(root)
    root = write_handmade(tmp_path / "b", info_overrides={"codebase_version": "v2.1"})
    with pytest.raises(ValueError, match="v2.1.*convert"):
        read_episode_index(root)
    root = write_handmade(tmp_path / "c", info_overrides={"codebase_version": "v9"})
    with pytest.warns(UserWarning, match="'v9'"):
        read_episode_index(root)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"total_frames": 21}, "total_frames=21 but meta/episodes lists 20"),
        ({"total_episodes": 4}, "total_episodes=4 but meta/episodes lists 5"),
    ],
)
def test_info_totals_disagree(tmp_path, override, match):
    root = write_handmade(tmp_path, info_overrides=override)
    with pytest.raises(ValueError, match=match):
        read_episode_index(root)


def _rewrite(path: Path, fn) -> None:
    pq.write_table(fn(pq.read_table(path)), path)


def test_bad_episode_tables(tmp_path):
    meta1 = "meta/episodes/chunk-001/file-000.parquet"
    root = write_handmade(tmp_path / "a")
    _rewrite(root / meta1, lambda t: t.drop_columns(["episode_index"]))
    with pytest.raises(ValueError, match=r"chunk-001/file-000.parquet.*no column 'episode_index'"):
        read_episode_index(root)
    root = write_handmade(tmp_path / "b")
    _rewrite(root / meta1, lambda t: t.drop_columns(["dataset_to_index"]))
    with pytest.raises(ValueError, match="no column 'dataset_to_index'"):
        read_episode_index(root)
    root = write_handmade(tmp_path / "c")
    _rewrite(root / meta1, lambda t: t.drop_columns(["dataset_to_index", "dataset_from_index"]))
    with pytest.raises(ValueError, match="lacks 'dataset_from_index'"):
        read_episode_index(root)
    root = write_handmade(tmp_path / "d", bounds=False)
    _rewrite(root / meta1, lambda t: t.drop_columns(["length"]))
    with pytest.raises(ValueError, match="no column 'length'"):
        read_episode_index(root)
    root = write_handmade(tmp_path / "e")
    _rewrite(root / meta1, lambda t: t.set_column(2, "length", pa.array([4, 7], pa.int64())))
    with pytest.raises(ValueError, match="episode 4: length 7 disagrees"):
        read_episode_index(root)
    root = write_handmade(tmp_path / "f", meta_groups=[[0, 1, 2], [3, 2]])
    with pytest.raises(ValueError, match="episode_index 2 appears twice"):
        read_episode_index(root)
    root = write_handmade(
        tmp_path / "g", lengths=[3, 3], data_groups=[[0, 1]], meta_groups=[[0, 1]], starts=[0, 2]
    )
    with pytest.raises(ValueError, match="overlap"):
        read_episode_index(root)
    root = write_handmade(tmp_path / "h")
    _rewrite(root / meta1, lambda t: t.set_column(2, "length", pa.array([4.0, 6.0])))
    with pytest.raises(ValueError, match="'length'.*integers"):
        read_episode_index(root)


def test_data_disagreeing_with_episodes(tmp_path):
    data1 = "data/chunk-000/file-001.parquet"  # holds episode 2 (frames 8, 9)
    root = write_handmade(tmp_path / "a")
    _rewrite(root / data1, lambda t: t.slice(0, 1))
    with pytest.raises(ValueError, match="episode 2 has length 2 in meta/episodes but 1 rows in data/"):
        LeRobotFrames(root)
    root = write_handmade(tmp_path / "b")
    _rewrite(root / data1, lambda t: t.set_column(1, "episode_index", pa.array([2, 3], pa.int64())))
    with pytest.raises(
        ValueError, match=r"file-001.parquet.*row 1 \(index 9\) has episode_index 3.*episode 2"
    ):
        LeRobotFrames(root)
    root = write_handmade(tmp_path / "c")
    _rewrite(root / data1, lambda t: t.set_column(0, "index", pa.array([9, 8], pa.int64())))
    with pytest.raises(ValueError, match="sorted by a unique 'index'"):
        LeRobotFrames(root)
    root = write_handmade(
        tmp_path / "d", lengths=[2, 2], data_groups=[[0, 1]], meta_groups=[[0, 1]], starts=[0, 3]
    )
    _rewrite(
        root / "data/chunk-000/file-000.parquet",
        lambda t: t.set_column(0, "index", pa.array([0, 1, 2, 3], pa.int64())),
    )
    with pytest.raises(ValueError, match="index 2, which lies in no episode"):
        LeRobotFrames(root)
    root = write_handmade(tmp_path / "e")
    _rewrite(root / data1, lambda t: t.drop_columns(["action"]))
    with pytest.raises(ValueError, match="file-001.parquet.*no column 'action'"):
        LeRobotFrames(root)
    root = write_handmade(tmp_path / "f")
    _rewrite(
        root / data1,
        lambda t: t.set_column(6, "action", pa.array([[1.0, 2.0, 3.0]] * 2, pa.list_(pa.float32()))),
    )
    ds = LeRobotFrames(root, columns=["action"])  # variable-size lists: detected when stacking
    with pytest.raises(ValueError, match="'action'.*different lengths"):
        ds.get_batch([0, 8])


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


def test_column_type_differs_between_files(tmp_path):
    root = write_handmade(tmp_path)
    path = root / "data/chunk-000/file-001.parquet"
    _rewrite(path, lambda t: t.set_column(6, "action", t.column("action").cast(pa.list_(pa.float64()))))
    with pytest.raises(ValueError, match="'action' of data file .*file-001.parquet' has type list<.*double>"):
        LeRobotFrames(root, columns=["action"])
    LeRobotFrames(root, columns=["index"])  # columns not requested are not checked


# ---------------------------------------------------------------------------------------------- writer
def _read_parquet_dir(path):
    """The parquet files of a chunked directory, sorted, and their tables."""
    files = sorted(path.glob("chunk-*/file-*.parquet"))
    return files, [pq.read_table(f) for f in files]


def test_writer_layout_and_values(tmp_path):
    eps = write_lerobot_dataset(tmp_path, 11, 3, 9, seed=5, episodes_per_file=2, files_per_chunk=2, fps=10)
    info = json.loads((tmp_path / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    assert info["total_episodes"] == 11 and info["total_frames"] == eps.num_frames
    assert info["fps"] == 10 and info["chunks_size"] == 2
    assert info["features"]["observation.state"]["shape"] == [6]
    assert info["features"]["action"]["shape"] == [4]

    data_files, tables = _read_parquet_dir(tmp_path / "data")
    # 11 episodes, 2 per file -> 6 files over chunks 000..002
    assert [f.relative_to(tmp_path).as_posix() for f in data_files] == [
        f"data/chunk-{c:03d}/file-{f:03d}.parquet" for c in range(3) for f in range(2)
    ]
    assert [f.relative_to(tmp_path).as_posix() for f in data_files] == [
        info["data_path"].format(chunk_index=c, file_index=f) for c in range(3) for f in range(2)
    ]
    meta_files, metas = _read_parquet_dir(tmp_path / "meta" / "episodes")
    assert len(meta_files) == 3  # 4 episodes per metadata file

    rows = [r for t in tables for r in t.to_pylist()]
    assert [r["index"] for r in rows] == list(range(eps.num_frames))
    lengths = eps.lengths
    assert lengths.min() >= 3 and lengths.max() <= 9
    for r in rows:
        i, e = r["index"], r["episode_index"]
        assert eps.starts[e] <= i < eps.ends[e]
        assert r["frame_index"] == i - eps.starts[e]
        np.testing.assert_array_equal(r["observation.state"], np.float32(i + np.arange(6) / 10))
        np.testing.assert_array_equal(r["action"], np.float32(-(i + np.arange(4) / 10) - 1))
        assert r["timestamp"] == pytest.approx(r["frame_index"] / 10)
        assert 0 <= r["task_index"] < len(TASKS)

    meta = [r for t in metas for r in t.to_pylist()]
    assert [m["episode_index"] for m in meta] == list(range(11))
    for m in meta:
        e = m["episode_index"]
        assert (m["dataset_from_index"], m["dataset_to_index"]) == (eps.starts[e], eps.ends[e])
        assert m["length"] == lengths[e]
        assert m["data/chunk_index"] * 2 + m["data/file_index"] == e // 2
        ep_rows = [r for r in rows if r["episode_index"] == e]
        assert {r["task_index"] for r in ep_rows} == {TASKS.index(m["tasks"][0])}
        # the data file named by the metadata holds the episode's frames
        path = tmp_path / info["data_path"].format(
            chunk_index=m["data/chunk_index"], file_index=m["data/file_index"]
        )
        assert e in pq.read_table(path, columns=["episode_index"]).column(0).to_pylist()
    tasks = pq.read_table(tmp_path / "meta" / "tasks.parquet").to_pylist()
    assert [t["task"] for t in tasks] == list(TASKS)
    assert read_episode_index(tmp_path) == eps


def test_writer_deterministic_and_seed_dependent(tmp_path):
    a = write_lerobot_dataset(tmp_path / "a", 30, seed=1)
    b = write_lerobot_dataset(tmp_path / "b", 30, seed=1)
    c = write_lerobot_dataset(tmp_path / "c", 30, seed=2)
    assert a == b and a != c
    for sub in ("data", "meta/episodes"):
        fa, ta = _read_parquet_dir(tmp_path / "a" / sub)
        fb, tb = _read_parquet_dir(tmp_path / "b" / sub)
        assert [f.relative_to(tmp_path / "a") for f in fa] == [f.relative_to(tmp_path / "b") for f in fb]
        assert all(x.equals(y) for x, y in zip(ta, tb))
    assert (tmp_path / "a/meta/info.json").read_text() == (tmp_path / "b/meta/info.json").read_text()


def test_writer_leaves_the_global_rng_untouched(tmp_path):
    before = np.random.get_state()[1].copy()  # noqa: NPY002 - checking the legacy global RNG on purpose
    write_lerobot_dataset(tmp_path, 5)
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # noqa: NPY002


def test_writer_dims_and_return_type(tmp_path):
    eps = write_lerobot_dataset(tmp_path, 1, 4, 4, state_dim=1, action_dim=7)
    assert isinstance(eps, EpisodeIndex)
    assert eps.num_frames == 4 and eps.episode_ids.tolist() == [0]
    t = pq.read_table(tmp_path / "data/chunk-000/file-000.parquet")
    assert t.schema.field("observation.state").type.list_size == 1
    assert t.schema.field("action").type.list_size == 7


def test_writer_many_episodes(tmp_path):
    # Scale, not speed (speed is the benchmarks' job): 1000 episodes in 10 files, every frame counted.
    eps = write_lerobot_dataset(tmp_path, 1000, 50, 50, episodes_per_file=100)
    assert eps.num_frames == 50_000
    assert len(list((tmp_path / "data").rglob("*.parquet"))) == 10


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"num_episodes": 0}, ValueError, "num_episodes"),
        ({"min_length": 0}, ValueError, "min_length"),
        ({"min_length": 5, "max_length": 4}, ValueError, "max_length"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"episodes_per_file": 0}, ValueError, "episodes_per_file"),
        ({"files_per_chunk": 0}, ValueError, "files_per_chunk"),
        ({"state_dim": 0}, ValueError, "state_dim"),
        ({"action_dim": 0}, ValueError, "action_dim"),
        ({"fps": 0}, ValueError, "fps"),
    ],
)
def test_writer_validation(tmp_path, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        write_lerobot_dataset(tmp_path, **kwargs)
    assert not (tmp_path / "meta").exists()


def test_writer_refuses_existing_dataset(tmp_path):
    write_lerobot_dataset(tmp_path, 2)
    with pytest.raises(FileExistsError, match="meta"):
        write_lerobot_dataset(tmp_path, 2)
