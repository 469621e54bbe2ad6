"""Every file access of the data layer goes through one Store (``episode_sampler.lerobot.storage``).

A remote-style store over a stand-in source (tests/helpers/remote_standin.py: byte-range reads only,
no listing, like plain HTTP) must give items equal bit for bit to the local read: numeric columns,
tasks, windows and pad masks, camera frames decoded by PyAV from a file object. Without a listing,
files are named by the episode table and info.json's templates; episode-table files are probed in
LeRobot's chunk/file order. Errors name the file's URL. A local path keeps the path-based reads.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from episode_sampler.lerobot import LeRobotFrames, read_episode_index, write_lerobot_dataset
from episode_sampler.lerobot.describe import describe_dataset
from episode_sampler.lerobot.episode_table import episode_files
from episode_sampler.lerobot.meta import read_info
from episode_sampler.lerobot.stats import read_stats
from episode_sampler.lerobot.storage import LocalStore, RemoteStore, open_store
from episode_sampler.lerobot.tasks import read_tasks
from tests.helpers.remote_standin import URL, DirSource, PassCache, SourceFile
from tests.helpers.video_dataset import CAMERAS, FPS, SIDE, TOP


def remote(root: Path, *, listable: bool = False) -> RemoteStore:
    return RemoteStore(DirSource(root, listable=listable), PassCache(), file_type=SourceFile)


@pytest.fixture(scope="module")
def video_root(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("storage") / "ds"
    write_lerobot_dataset(
        path,
        num_episodes=9,
        min_length=4,
        max_length=9,
        seed=5,
        episodes_per_file=2,  # 5 data files, 3 episode-table files over 2 chunks
        episodes_per_video_file=3,
        files_per_chunk=2,
        fps=FPS,
        cameras=CAMERAS,
    )
    return path


def assert_batches_equal(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


# ---------------------------------------------------------------------------------------------- equality
@pytest.mark.parametrize("listable", [False, True], ids=["plain HTTP (no listing)", "listing"])
def test_remote_items_equal_local_bit_for_bit(video_root, listable):
    deltas = {"action": [-2, 0, 3], TOP: [-1, 0]}
    local = LeRobotFrames(video_root, delta_indices=deltas, video_backend="pyav")
    store = remote(video_root, listable=listable)
    far = LeRobotFrames(store, delta_indices=deltas)
    assert far.store is store and local.store.local and not far.store.local
    assert len(far) == len(local) and far.columns == local.columns
    assert TOP in far.columns or TOP in far.delta_indices
    assert SIDE in far.columns and "task" in far.columns
    rng = np.random.default_rng(0)
    for indices in ([0], rng.permutation(len(local))[:17], np.arange(len(local))):
        assert_batches_equal(far.get_batch(indices), local.get_batch(indices))
    # every video and data file was read through the source, by byte ranges
    src = store.source
    assert {r for r in src.reads if r.startswith("videos/")} == {
        str(Path(p).relative_to(video_root)) for p in sorted(video_root.glob("videos/*/*/*.mp4"))
    }
    assert {r for r in src.reads if r.startswith("data/")} == {
        str(p.relative_to(video_root)) for p in video_root.glob("data/*/*.parquet")
    }
    assert far.files == tuple(f"{URL}/{p.relative_to(video_root)}" for p in local.files)
    # items (the DataLoader path) and a pickled copy (what a worker gets) read the same
    assert_batches_equal(far[5], local[5])
    copy = pickle.loads(pickle.dumps(far))
    assert_batches_equal(copy.get_batch([3, 40, 1]), local.get_batch([3, 40, 1]))
    local.close(), far.close(), copy.close()


def test_metadata_reads_equal_local(video_root):
    store = remote(video_root)
    assert read_info(store) == read_info(video_root)
    assert read_tasks(store) == read_tasks(video_root)
    a, b = read_stats(store), read_stats(video_root)
    assert a is not None and b is not None and a.keys() == b.keys()
    for feat in a:
        for stat in a[feat]:
            np.testing.assert_array_equal(a[feat][stat], b[feat][stat])
    ea, eb = read_episode_index(store), read_episode_index(video_root)
    np.testing.assert_array_equal(ea.starts, eb.starts)
    np.testing.assert_array_equal(ea.ends, eb.ends)
    np.testing.assert_array_equal(ea.episode_ids, eb.episode_ids)
    assert describe_dataset(store) == describe_dataset(video_root)


# ---------------------------------------------------------------------------------------------- probing
def test_episode_files_probed_in_lerobot_order(tmp_path):
    root = tmp_path / "ds"
    # 11 episodes, 2 per data file and 4 per episode-table file -> 3 table files; 2 files per chunk
    write_lerobot_dataset(root, 11, 2, 3, episodes_per_file=2, files_per_chunk=2)
    listed = sorted(str(p.relative_to(root)) for p in (root / "meta" / "episodes").glob("*/*.parquet"))
    assert listed == [
        "meta/episodes/chunk-000/file-000.parquet",
        "meta/episodes/chunk-000/file-001.parquet",
        "meta/episodes/chunk-001/file-000.parquet",
    ]
    store = remote(root)
    assert store.list("meta/episodes", "chunk-*/file-*.parquet") is None
    assert episode_files(store, read_info(store)) == listed
    assert episode_files(LocalStore(root), read_info(root)) == listed
    # LeRobot's default chunks_size (1000) when info.json has none: a new chunk only after 1000 files
    # and a (c + 1, 0) fallback so a layout with one file per chunk is found too
    info = read_info(root)
    del info["chunks_size"]
    assert episode_files(store, info) == listed


def test_opening_reads_no_data_file_when_the_table_names_them(video_root):
    store = remote(video_root)
    frames = LeRobotFrames(store, columns=["index", "action"])
    data_reads = {r for r in store.source.reads if r.startswith("data/")}
    # only the first file's schema (to know the columns): the other files are not touched
    assert data_reads == {"data/chunk-000/file-000.parquet"}
    assert not any(r.startswith("videos/") for r in store.source.reads)
    last = len(frames) - 1
    np.testing.assert_array_equal(frames.get_batch([last])["index"].numpy(), [last])
    assert "data/chunk-002/file-000.parquet" in store.source.reads


# ---------------------------------------------------------------------------------------------- errors
def test_errors_name_the_url(tmp_path):
    root = tmp_path / "ds"
    write_lerobot_dataset(root, 6, 3, 5, episodes_per_file=2)
    (root / "data/chunk-001/file-000.parquet").write_bytes(b"")
    frames = LeRobotFrames(remote(root))
    with pytest.raises(
        ValueError, match=re.escape(f"cannot read Parquet file '{URL}/data/chunk-001/file-000.parquet'")
    ):
        frames.get_batch([len(frames) - 1])
    (root / "data/chunk-001/file-000.parquet").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(f"{URL}/data/chunk-001/file-000.parquet")):
        LeRobotFrames(remote(root)).get_batch([len(frames) - 1])
    (root / "meta/info.json").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(f"{URL}/meta/info.json")):
        LeRobotFrames(remote(root))


def test_unlistable_store_needs_the_table_to_name_data_files(tmp_path):
    from tests.helpers.lerobot_handmade import write_handmade

    root = write_handmade(tmp_path / "ds", meta_groups=[[0, 1, 2, 3, 4]])  # no data/chunk_index columns
    with pytest.raises(ValueError, match=r"cannot list the data files of .*data/chunk_index"):
        LeRobotFrames(remote(root))
    frames = LeRobotFrames(remote(root, listable=True), columns=["index"])  # listed, then scanned
    np.testing.assert_array_equal(frames.get_batch(np.arange(len(frames)))["index"].numpy(), np.arange(20))


def test_torchcodec_refused_for_a_remote_dataset(video_root):
    with pytest.raises(
        ValueError, match=r"video_backend='torchcodec' cannot read the remote dataset .*'pyav'"
    ):
        LeRobotFrames(remote(video_root), columns=[TOP], video_backend="torchcodec")
    LeRobotFrames(remote(video_root), columns=["index"], video_backend="torchcodec")  # no camera: fine


# ---------------------------------------------------------------------------------------------- options
def test_local_store_keeps_paths(video_root):
    frames = LeRobotFrames(video_root, columns=["index", TOP])
    store = frames.store
    assert isinstance(store, LocalStore) and frames.root == video_root
    rel = "data/chunk-000/file-000.parquet"
    assert store.parquet_source(rel) == str(video_root / rel)  # memory-mapped by pyarrow
    assert store.video_source("x.mp4") == str(video_root / "x.mp4")  # av.open(path)
    assert store.prefetch([(rel, 0, 10)]) == 0
    assert LeRobotFrames(f"file://{video_root}", columns=["index"]).store.local


def test_roots_open_the_right_store(tmp_path):
    cache = tmp_path / "cache"
    for local in (tmp_path, str(tmp_path), f"file://{tmp_path}"):
        store = open_store(local, cache_dir=cache)
        assert isinstance(store, LocalStore) and store.root == tmp_path
    store = open_store("http://127.0.0.1:9/ds", cache_dir=cache)  # nothing is fetched yet
    assert (
        isinstance(store, RemoteStore)
        and store.name("meta/info.json") == "http://127.0.0.1:9/ds/meta/info.json"
    )
    assert open_store(store) is store
    fsspec = pytest.importorskip("fsspec")
    store = open_store(str(tmp_path), filesystem=fsspec.filesystem("file"), cache_dir=cache)
    assert isinstance(store, RemoteStore)  # any filesystem object goes through the remote path


# ---------------------------------------------------------------------------------------------- real servers
def check_equal_to_local(url_or_root, local_root: Path, cache_dir: Path, **kw) -> LeRobotFrames:
    deltas = {"action": [-2, 0, 3], TOP: [-1, 0]}
    local = LeRobotFrames(local_root, delta_indices=deltas, video_backend="pyav")
    far = LeRobotFrames(url_or_root, delta_indices=deltas, cache_dir=cache_dir, timeout_s=10, retries=1, **kw)
    assert not far.store.local
    order = np.random.default_rng(1).permutation(len(local))
    for indices in (order[:9], np.arange(len(local))):
        assert_batches_equal(far.get_batch(indices), local.get_batch(indices))
    local.close()
    return far


def test_http_over_nginx_equals_local(nginx, video_root, tmp_path):
    url = nginx.serve(video_root, "storage-ds")
    far = check_equal_to_local(url, video_root, tmp_path / "cache")
    assert far.store.list("data", "chunk-*/file-*.parquet") is None  # plain HTTP: files named by the table
    stats = far.store.cache.stats()
    assert stats["bytes_downloaded"] > 0
    # a second reader in a "new process" (a pickled copy) finds every block in the on-disk cache
    copy = pickle.loads(pickle.dumps(far))
    before = copy.store.cache.stats()["bytes_downloaded"]
    copy.get_batch(np.arange(len(copy)))
    assert copy.store.cache.stats()["bytes_downloaded"] == before
    far.close(), copy.close()


def test_s3_over_moto_equals_local(moto_s3, video_root, tmp_path, monkeypatch):
    moto_s3.upload(video_root, "bucket-storage", "datasets/ds")
    for k, v in moto_s3.env.items():
        monkeypatch.setenv(k, v)
    far = check_equal_to_local("s3://bucket-storage/datasets/ds", video_root, tmp_path / "cache")
    assert far.store.list("data", "chunk-*/file-*.parquet") == sorted(
        str(p.relative_to(video_root)) for p in video_root.glob("data/*/*.parquet")
    )
    far.close()


def test_fsspec_filesystem_equals_local(video_root, tmp_path):
    fsspec = pytest.importorskip("fsspec")
    far = check_equal_to_local(
        str(video_root), video_root, tmp_path / "cache", filesystem=fsspec.filesystem("file")
    )
    far.close()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"cache_bytes": 0}, ValueError, "cache_bytes must be >= 1"),
        ({"cache_bytes": 1.5}, TypeError, "cache_bytes must be an int"),
        ({"cache_bytes": True}, TypeError, "cache_bytes must be an int"),
        ({"timeout_s": 0}, ValueError, "timeout_s must be a positive"),
        ({"timeout_s": float("inf")}, ValueError, "timeout_s must be a positive, finite"),
        ({"timeout_s": "5"}, TypeError, "timeout_s must be a number"),
        ({"retries": -1}, ValueError, "retries must be >= 0"),
        ({"retries": 1.0}, TypeError, "retries must be an int"),
        ({"cache_dir": 3}, TypeError, "cache_dir must be a path"),
    ],
)
def test_remote_options_validated(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        open_store(tmp_path, **kwargs)
    with pytest.raises(error, match=match):
        LeRobotFrames(tmp_path, **kwargs)


def test_root_type_checked():
    with pytest.raises(TypeError, match="root must be a path, a URL or a Store"):
        open_store(3)  # type: ignore[arg-type]


def test_training_loader_over_http_equals_local(nginx, video_root, tmp_path):
    """The sampler and a 2-worker DataLoader over the HTTP-served dataset yield the local batches."""
    from torch.utils.data import DataLoader

    from episode_sampler import EpisodeAwareSampler

    url = nginx.serve(video_root, "storage-loader")
    cols = ["index", "action", "task", SIDE]
    batches = []
    for root in (video_root, url):
        frames = LeRobotFrames(root, columns=cols, delta_indices={"action": [0, 1]}, cache_dir=tmp_path / "c")
        sampler = EpisodeAwareSampler.from_lerobot(frames.store, seed=7, shuffle=True)
        loader = DataLoader(frames, batch_size=6, sampler=sampler, num_workers=2, collate_fn=lambda b: b)
        batches.append([item for batch in loader for item in batch])
        frames.close()
    local, far = batches
    assert len(local) == len(far) == len(LeRobotFrames(video_root, columns=["index"]))
    for a, b in zip(local, far):
        assert_batches_equal(a, b)


def test_remote_prefetch_groups_ranges_per_file(video_root):
    store = remote(video_root)
    a, b = "meta/info.json", "meta/stats.json"
    ranges = [(a, 0, 10), (b, 5, 8), (a, 20, 30), (a, 3, 3)]  # an empty range is skipped
    assert store.prefetch(ranges) == 10 + 3 + 10
    assert store.source.reads == {a: 2, b: 1}
    assert store.read_bytes(a) == (video_root / a).read_bytes()
