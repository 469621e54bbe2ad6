"""The bounded Parquet column cache of LeRobotFrames: bounded, LRU by file, results unchanged."""

from __future__ import annotations

import pickle
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from episode_sampler.lerobot import LeRobotFrames, write_lerobot_dataset
from episode_sampler.lerobot.column_cache import DEFAULT_COLUMN_CACHE_BYTES

COLUMNS = ["index", "episode_index", "observation.state", "action"]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cache")
    write_lerobot_dataset(root, 24, 10, 30, seed=2, episodes_per_file=3)  # 8 data files
    return root


def file_bytes(root: Path) -> list[int]:
    """Decoded size of each data file's COLUMNS, computed with plain pyarrow/numpy."""
    out = []
    for f in sorted((root / "data").rglob("*.parquet"), key=lambda p: pq.read_table(p)["index"][0].as_py()):
        t = pq.read_table(f, columns=COLUMNS)
        out.append(
            sum(
                t.column(c).combine_chunks().flatten().to_numpy().nbytes
                if pa.types.is_fixed_size_list(t.schema.field(c).type)
                else t.column(c).to_numpy().nbytes
                for c in COLUMNS
            )
        )
    return out


def file_of_frames(root: Path) -> np.ndarray:
    files = sorted((root / "data").rglob("*.parquet"))
    firsts = sorted(pq.read_table(f, columns=["index"])["index"][0].as_py() for f in files)
    return np.asarray(firsts)


def test_default_and_validation(root):
    ds = LeRobotFrames(root)
    assert ds.column_cache_info()["max_bytes"] == DEFAULT_COLUMN_CACHE_BYTES == 512 * 2**20
    with pytest.raises(ValueError, match="column_cache_bytes"):
        LeRobotFrames(root, column_cache_bytes=-1)
    with pytest.raises(TypeError, match="column_cache_bytes"):
        LeRobotFrames(root, column_cache_bytes=1.5)
    with pytest.raises(TypeError, match="column_cache_bytes"):
        LeRobotFrames(root, column_cache_bytes=True)


def test_eviction_is_lru_by_file_and_bounded(root):
    sizes = file_bytes(root)
    firsts = file_of_frames(root)
    limit = sizes[0] + sizes[1] + sizes[2] - 1  # room for two files, not three
    ds = LeRobotFrames(root, columns=COLUMNS, column_cache_bytes=limit)
    reference = LeRobotFrames(root, columns=COLUMNS, column_cache_bytes=None)

    def touch(k: int) -> None:
        got = ds.get_batch([int(firsts[k])])
        assert got["index"].tolist() == [int(firsts[k])]

    touch(0)
    touch(1)
    assert ds.column_cache_info()["files"] == [0, 1]
    touch(0)  # 0 becomes most recent
    touch(2)  # evicts 1, the least recently used
    info = ds.column_cache_info()
    assert info["files"] == [0, 2]
    assert info["evictions"] == 1 and info["misses"] == 3 and info["hits"] == 1
    assert info["bytes"] == sizes[0] + sizes[2] <= limit
    # a random read pattern: always within the bound, values equal to the unbounded reader
    rng = np.random.default_rng(0)
    for _ in range(30):
        idx = rng.integers(0, len(ds), size=int(rng.integers(1, 40)))
        a, b = ds.get_batch(idx), reference.get_batch(idx)
        for k in b:
            assert torch.equal(a[k], b[k]), k
        info = ds.column_cache_info()
        assert info["bytes"] <= limit
        assert info["bytes"] == sum(sizes[f] for f in info["files"])
    assert ds.column_cache_info()["evictions"] > 5
    assert len(reference.column_cache_info()["files"]) == len(sizes)  # unbounded keeps all


def test_zero_keeps_nothing_and_reads_row_groups(root):
    ds = LeRobotFrames(root, columns=COLUMNS, column_cache_bytes=0)
    full = LeRobotFrames(root, columns=COLUMNS, column_cache_bytes=None)
    idx = np.arange(len(ds))[::-3]  # touches every file in one request
    a, b = ds.get_batch(idx), full.get_batch(idx)
    for k in b:
        assert torch.equal(a[k], b[k]), k
    info = ds.column_cache_info()
    assert info["files"] == [] and info["bytes"] == 0 and info["partial_reads"] == len(ds.files)


def one_row_group_per_episode(root: Path) -> Path:
    """Rewrite every data file as LeRobot writes them: one Parquet row group per episode."""
    for path in (root / "data").rglob("*.parquet"):
        table = pq.read_table(path)
        episodes = np.asarray(table.column("episode_index"))
        cuts = np.flatnonzero(np.diff(episodes)) + 1
        with pq.ParquetWriter(path, table.schema) as writer:
            for lo, hi in zip([0, *cuts], [*cuts, len(episodes)]):
                writer.write_table(table.slice(int(lo), int(hi - lo)))
        assert pq.read_metadata(path).num_row_groups == len(cuts) + 1
    return root


def test_files_larger_than_the_bound_read_only_needed_row_groups(tmp_path, monkeypatch):
    eps = write_lerobot_dataset(tmp_path, 12, 20, 40, seed=9, episodes_per_file=6)  # 2 files
    one_row_group_per_episode(tmp_path)
    sizes = file_bytes(tmp_path)
    ds = LeRobotFrames(tmp_path, columns=COLUMNS, column_cache_bytes=min(sizes) // 2)
    full = LeRobotFrames(tmp_path, columns=COLUMNS, column_cache_bytes=None)
    requested: list[list[int]] = []
    original = pq.ParquetFile.read_row_groups

    def spy(self, row_groups, *args, **kwargs):
        requested.append(sorted(row_groups))
        return original(self, row_groups, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", spy)
    idx = [int(eps.starts[1]) + 2, int(eps.starts[4]), int(eps.ends[4]) - 1, int(eps.starts[9]) + 5]
    a, b = ds.get_batch(idx), full.get_batch(idx)
    for k in b:
        assert torch.equal(a[k], b[k]), k
    # episodes 1 and 4 live in file 0 (row groups 1, 4), episode 9 in file 1 (row group 3)
    assert sorted(requested) == [[1, 4], [3]]
    info = ds.column_cache_info()
    assert info["files"] == [] and info["partial_reads"] == 2
    # a bound that holds one file: it is cached whole, as before
    ds2 = LeRobotFrames(tmp_path, columns=COLUMNS, column_cache_bytes=max(sizes) * 2)
    ds2.get_batch(idx)
    assert ds2.column_cache_info()["files"] == [0, 1] and ds2.column_cache_info()["partial_reads"] == 0


def test_pickled_copy_starts_empty_with_same_bound(root):
    ds = LeRobotFrames(root, columns=COLUMNS, column_cache_bytes=12345)
    ds.get_batch([0, len(ds) - 1])
    clone = pickle.loads(pickle.dumps(ds))
    info = clone.column_cache_info()
    assert info["files"] == [] and info["max_bytes"] == 12345 and info["misses"] == 0


def test_threads_share_the_cache(root):
    sizes = file_bytes(root)
    ds = LeRobotFrames(root, columns=COLUMNS, column_cache_bytes=sizes[0] + sizes[1] + 10)
    full = LeRobotFrames(root, columns=COLUMNS, column_cache_bytes=None)
    errors = []

    def work(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(40):
            idx = rng.integers(0, len(ds), size=8)
            a, b = ds.get_batch(idx), full.get_batch(idx)
            if not all(torch.equal(a[k], b[k]) for k in b):
                errors.append(seed)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    info = ds.column_cache_info()
    assert info["bytes"] == sum(sizes[f] for f in info["files"]) and len(set(info["files"])) == len(
        info["files"]
    )
