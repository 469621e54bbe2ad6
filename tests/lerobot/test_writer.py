"""``episode_sampler.lerobot.writer``: the synthetic datasets' LeRobot v3 layout and values, read back
with plain pyarrow; determinism and argument checks."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from episode_sampler.core.layout import EpisodeIndex
from episode_sampler.lerobot import TASKS, read_episode_index, write_lerobot_dataset


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
