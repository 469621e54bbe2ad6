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


def test_zero_keeps_only_the_last_file(root):
    ds = LeRobotFrames(root, columns=COLUMNS, column_cache_bytes=0)
    full = LeRobotFrames(root, columns=COLUMNS, column_cache_bytes=None)
    idx = np.arange(len(ds))[::-3]  # touches every file in one request
    a, b = ds.get_batch(idx), full.get_batch(idx)
    for k in b:
        assert torch.equal(a[k], b[k]), k
    assert len(ds.column_cache_info()["files"]) == 1


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
