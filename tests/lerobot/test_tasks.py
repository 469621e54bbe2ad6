"""meta/tasks.parquet: written in LeRobot's layout, read back with LeRobot's own logic (pandas), and
task strings on LeRobotFrames items."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from episode_sampler.lerobot import TASKS, LeRobotFrames, write_lerobot_dataset
from episode_sampler.lerobot.tasks import read_tasks, write_tasks


# ------------------------------------------------------------------------------------ LeRobot reference
def lerobot_load_tasks(root: Path) -> pd.DataFrame:
    """lerobot/datasets/io_utils.py::load_tasks (0.6.1)."""
    tasks = pd.read_parquet(root / "meta" / "tasks.parquet")
    tasks.index.name = "task"
    return tasks


def lerobot_task(tasks: pd.DataFrame, task_index: int) -> str:
    """lerobot/datasets/dataset_reader.py::get_item: ``self._meta.tasks.iloc[task_idx].name``."""
    return tasks.iloc[task_index].name


def lerobot_write_tasks(root: Path, tasks: list[str]) -> None:
    """LeRobotDatasetMetadata.save_episode_tasks + io_utils.write_tasks for a fresh dataset."""
    df = pd.DataFrame({"task_index": range(len(tasks))}, index=pd.Index(tasks, name="task"))
    path = root / "meta" / "tasks.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    write_lerobot_dataset(root, 12, 3, 9, seed=5, episodes_per_file=4)
    return root


# ---------------------------------------------------------------------------------------------- writer
def test_written_tasks_read_by_lerobot(synthetic):
    tasks = lerobot_load_tasks(synthetic)
    assert [lerobot_task(tasks, i) for i in range(len(TASKS))] == list(TASKS)
    for i, t in enumerate(TASKS):
        assert int(tasks.loc[t].task_index) == i  # LeRobotDatasetMetadata.get_task_index
    assert list(tasks.columns) == ["task_index"]


def test_written_tasks_match_pandas_bytes_for_bytes(tmp_path):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    tasks = ["pick the cube", "zählen", "", "push"]
    write_tasks(ours, tasks)
    lerobot_write_tasks(theirs, tasks)
    a = pq.read_table(ours / "meta" / "tasks.parquet")
    b = pq.read_table(theirs / "meta" / "tasks.parquet")
    assert a.schema.remove_metadata() == b.schema.remove_metadata()
    assert a.equals(b)
    meta_a = json.loads(a.schema.metadata[b"pandas"])
    meta_b = json.loads(b.schema.metadata[b"pandas"])
    for key in ("index_columns", "column_indexes", "columns"):
        assert meta_a[key] == meta_b[key], key
    back = lerobot_load_tasks(ours)
    assert [lerobot_task(back, i) for i in range(len(tasks))] == tasks


def test_write_tasks_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="twice"):
        write_tasks(tmp_path, ["a", "b", "a"])
    with pytest.raises(TypeError, match="str"):
        write_tasks(tmp_path, ["a", 3])
    with pytest.raises(TypeError, match="sequence"):
        write_tasks(tmp_path, "abc")


# ---------------------------------------------------------------------------------------------- items
def test_items_carry_task_as_lerobot(synthetic):
    ds = LeRobotFrames(synthetic)
    tasks = lerobot_load_tasks(synthetic)
    assert ds.columns[-1] == "task"
    batch = ds.get_batch(np.arange(len(ds)))
    expected = [lerobot_task(tasks, int(i)) for i in batch["task_index"]]
    assert batch["task"] == expected
    items = ds.__getitems__([0, 5, len(ds) - 1])
    for it in items:
        assert isinstance(it["task"], str)
        assert it["task"] == lerobot_task(tasks, it["task_index"].item())
    # the episode table's task list agrees with every frame of the episode
    meta_files = sorted((synthetic / "meta" / "episodes").rglob("*.parquet"))
    meta = pa.concat_tables(pq.read_table(f) for f in meta_files)
    ep_task = dict(zip(meta.column("episode_index").to_pylist(), meta.column("tasks").to_pylist()))
    for t, e in zip(batch["task"], batch["episode_index"].tolist()):
        assert [t] == ep_task[e]


def test_task_alone_and_in_windows(synthetic):
    ds = LeRobotFrames(synthetic, columns=["task"], delta_indices={"task_index": [-1, 0]})
    item = ds[3]
    assert set(item) == {"task", "task_index", "task_index_is_pad"}
    assert item["task"] == TASKS[int(item["task_index"][1])]
    with pytest.raises(ValueError, match="'task' cannot be windowed"):
        LeRobotFrames(synthetic, delta_indices={"task": [0, 1]})


def _dataset_with_tasks_file(tmp_path: Path, table: pa.Table | None) -> Path:
    root = tmp_path / "ds"
    write_lerobot_dataset(root, 6, 2, 4, seed=1)
    path = root / "meta" / "tasks.parquet"
    path.unlink()
    if table is not None:
        pq.write_table(table, path)
    return root


@pytest.mark.parametrize("layout", ["lerobot", "plain", "unnamed_index", "reordered"])
def test_reader_accepts_layouts(tmp_path, layout):
    root = _dataset_with_tasks_file(tmp_path, None)
    path = root / "meta" / "tasks.parquet"
    if layout == "lerobot":
        lerobot_write_tasks(root, list(TASKS))
    elif layout == "plain":  # episode-sampler 0.1.0: two plain columns, no pandas metadata
        pq.write_table(pa.table({"task_index": np.arange(3), "task": list(TASKS)}), path)
    elif layout == "unnamed_index":
        pd.DataFrame({"task_index": range(3)}, index=list(TASKS)).to_parquet(path)
        assert "__index_level_0__" in pq.read_schema(path).names
    else:  # rows not in task_index order: the task_index column decides
        pq.write_table(pa.table({"task": [TASKS[2], TASKS[0], TASKS[1]], "task_index": [2, 0, 1]}), path)
    assert read_tasks(root) == dict(enumerate(TASKS))
    ds = LeRobotFrames(root, columns=["task_index", "task"])
    batch = ds.get_batch(range(len(ds)))
    assert batch["task"] == [TASKS[i] for i in batch["task_index"].tolist()]


def test_no_tasks_file(tmp_path):
    root = _dataset_with_tasks_file(tmp_path, None)
    assert read_tasks(root) is None
    ds = LeRobotFrames(root)
    assert "task" not in ds.columns and "task" not in ds[0]
    with pytest.raises(ValueError, match="unknown column 'task'"):
        LeRobotFrames(root, columns=["task"])


def test_bad_tasks_files(tmp_path):
    root = _dataset_with_tasks_file(tmp_path, pa.table({"task_index": [0, 0, 1], "task": ["a", "b", "c"]}))
    with pytest.raises(ValueError, match="task_index 0 appears twice"):
        LeRobotFrames(root)
    path = root / "meta" / "tasks.parquet"
    pq.write_table(pa.table({"task_index": [0, 1, 2], "name": ["a", "b", "c"]}), path)
    with pytest.raises(ValueError, match="no task string column"):
        read_tasks(root)
    pq.write_table(pa.table({"task": ["a", "b", "c"]}), path)
    with pytest.raises(ValueError, match="no column 'task_index'"):
        read_tasks(root)
    # task 2 is used by the data but missing from the file
    pq.write_table(pa.table({"task_index": [0, 1], "task": ["a", "b"]}), path)
    ds = LeRobotFrames(root, columns=["task"])
    used = LeRobotFrames(root, columns=["task_index"]).get_batch(range(len(ds)))["task_index"].numpy()
    assert (used == 2).any() and (used < 2).any()
    with pytest.raises(ValueError, match="task_index 2, which meta/tasks.parquet"):
        ds.get_batch(range(len(ds)))
    ok = np.flatnonzero(used < 2)
    assert ds.get_batch(ok)["task"] == [["a", "b"][i] for i in used[ok]]


# ---------------------------------------------------------------------------------------------- vs LeRobot
@pytest.mark.parametrize("deltas", [None, {"action": [-3, -1, 0, 2, 7], "observation.state": [-1, 0]}])
def test_items_equal_lerobot_reference(synthetic, deltas):
    from tests.helpers.reference_lerobot_reader import LeRobotReference

    ref = LeRobotReference(synthetic, deltas)
    ds = LeRobotFrames(synthetic, delta_indices=deltas)
    assert len(ds) == len(ref)
    ours = ds.__getitems__(list(range(len(ds))))
    for i in range(len(ds)):
        want, got = ref[i], ours[i]
        assert set(got) == set(want), i
        for k, w in want.items():
            g = got[k]
            if isinstance(w, str):
                assert g == w, (i, k)
            else:
                assert g.dtype == w.dtype and g.shape == w.shape and torch.equal(g, w), (i, k)
