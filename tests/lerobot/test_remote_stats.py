"""Copies of a remote store (DataLoader workers: pickled or forked) reuse the file sizes and versions
the run already learned, instead of one HEAD per file per worker; a file changed on the server is still
detected on the first read that reaches the server, never served mixed or stale."""

from __future__ import annotations

import multiprocessing as mp
import pickle
from pathlib import Path

import pytest

from episode_sampler.lerobot.block_cache import BlockCache
from episode_sampler.lerobot.remote_errors import RemoteReadError
from episode_sampler.lerobot.remote_source import open_source
from episode_sampler.lerobot.storage import RemoteStore
from tests.helpers.servers import Misbehaving

DATA = bytes((i * 31 + (i >> 7)) % 253 for i in range(100_000))
FILES = ["f.bin", "g.bin", "h.bin"]


@pytest.fixture()
def bad():
    with Misbehaving({name: DATA[: 50_000 + 1000 * i] for i, name in enumerate(FILES)}) as server:
        yield server


def store_of(server: Misbehaving, cache_dir: Path) -> RemoteStore:
    source = open_source(f"{server.url}/ok", timeout_s=5, retries=0)
    return RemoteStore(source, BlockCache(cache_dir, 1 << 24, block_size=4096))


def heads(server: Misbehaving) -> list[str]:
    return [path for method, path, _ in server.log if method == "HEAD"]


def test_a_copy_made_before_the_parent_learned_a_size_reuses_it(bad, tmp_path):
    parent = store_of(bad, tmp_path)
    worker = pickle.loads(pickle.dumps(parent))  # the worker starts before the parent sizes anything
    sizes = {rel: parent.size(rel) for rel in FILES}
    assert sizes == {rel: len(bad.files[rel]) for rel in FILES}
    assert len(heads(bad)) == 3
    assert {rel: worker.size(rel) for rel in FILES} == sizes
    assert worker.read_bytes("g.bin") == bad.files["g.bin"]
    assert len(heads(bad)) == 3  # no HEAD from the worker


def _child(blob: bytes, out: mp.Queue) -> None:  # type: ignore[type-arg]
    store = pickle.loads(blob)
    out.put({rel: store.size(rel) for rel in FILES})


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_worker_process_asks_no_size_the_parent_knows(bad, tmp_path, method):
    parent = store_of(bad, tmp_path)
    blob = pickle.dumps(parent)
    parent.size("f.bin")
    parent.size("h.bin")  # learned after the worker's copy was made
    ctx = mp.get_context(method)
    out = ctx.Queue()
    p = ctx.Process(target=_child, args=(blob, out))
    p.start()
    got = out.get(timeout=60)
    p.join(timeout=60)
    assert got == {rel: len(bad.files[rel]) for rel in FILES}
    assert sorted(heads(bad)) == ["/ok/f.bin", "/ok/g.bin", "/ok/h.bin"]  # g.bin once, by the worker
    # ... and the parent reuses what the worker learned
    assert parent.size("g.bin") == len(bad.files["g.bin"])
    assert len(heads(bad)) == 3


def test_another_run_asks_again(bad, tmp_path):
    first = store_of(bad, tmp_path)
    first.size("f.bin")
    bad.files["f.bin"] = DATA  # changed between the runs
    second = store_of(bad, tmp_path)  # same cache directory, a new run
    assert second.size("f.bin") == len(DATA)
    assert second.read_bytes("f.bin") == DATA
    assert len(heads(bad)) == 2


def test_a_file_changed_after_the_parent_sized_it_is_detected_by_the_worker(bad, tmp_path):
    parent = store_of(bad, tmp_path)
    worker = pickle.loads(pickle.dumps(parent))
    old = bad.files["g.bin"]
    parent.size("g.bin")
    bad.files["g.bin"] = bytes(reversed(old))  # same size, new version
    bad.etag = '"v2"'
    with pytest.raises(RemoteReadError, match="changed on the server"):
        worker.read_bytes("g.bin")
    with pytest.raises(RemoteReadError, match="changed on the server"):
        worker.source.read("g.bin", 100, 200)


def test_a_size_change_is_detected_when_the_version_stays(bad, tmp_path):
    parent = store_of(bad, tmp_path)
    worker = pickle.loads(pickle.dumps(parent))
    parent.size("f.bin")
    bad.files["f.bin"] = DATA  # longer, same ETag (a server whose version misses the change)
    with pytest.raises(RemoteReadError, match=r"size 50000 -> 100000"):
        worker.read_bytes("f.bin")


def test_a_corrupt_or_foreign_record_is_ignored(bad, tmp_path):
    parent = store_of(bad, tmp_path)
    parent.size("f.bin")
    for record in (tmp_path / "sizes").iterdir():
        record.write_text("garbage")
    worker = pickle.loads(pickle.dumps(parent))
    worker.source._stats.clear()  # a copy made before the parent asked
    assert worker.size("f.bin") == len(bad.files["f.bin"])
    assert len(heads(bad)) == 2


def test_a_pyarrow_filesystem_copy_checks_the_file_it_opens(tmp_path):
    import pyarrow.fs as pafs

    from episode_sampler.lerobot.storage import open_store

    root = tmp_path / "root"
    root.mkdir()
    (root / "f.bin").write_bytes(DATA[:5000])
    parent = open_store(str(root), filesystem=pafs.LocalFileSystem(), cache_dir=tmp_path / "cache")
    worker = pickle.loads(pickle.dumps(parent))
    assert parent.size("f.bin") == 5000
    (root / "f.bin").write_bytes(DATA[:7000])
    assert worker.size("f.bin") == 5000  # the run's record ...
    with pytest.raises(RemoteReadError, match="changed on the server"):
        worker.read_bytes("f.bin")  # ... and the read notices the change


def test_an_fsspec_copy_asks_itself(tmp_path):
    """fsspec reads do not check the version they get, so copies do not share stats."""
    import fsspec

    from episode_sampler.lerobot.storage import open_store

    fs = fsspec.filesystem("memory")
    fs.pipe("/stats-test/f.bin", DATA[:5000])
    parent = open_store("/stats-test", filesystem=fs, cache_dir=tmp_path / "cache")
    worker = pickle.loads(pickle.dumps(parent))
    parent.size("f.bin")
    fs.pipe("/stats-test/f.bin", DATA[:7000])
    assert worker.size("f.bin") == 7000
    assert worker.read_bytes("f.bin") == DATA[:7000]
