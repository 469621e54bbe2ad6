"""The on-disk block cache: exact bytes, bounded by max_bytes with LRU order (against a reference model),
keys that change with the remote file, corrupt entries re-downloaded, restart without downloads, one
download per block under concurrency (threads and processes), and SIGKILL mid-download."""

from __future__ import annotations

import errno
import multiprocessing
import os
import pickle
import random
import signal
import subprocess
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from episode_sampler.lerobot import block_cache
from episode_sampler.lerobot.block_cache import HEADER, LOW_WATER, BlockCache, check_entry
from episode_sampler.lerobot.remote_source import open_source
from tests.helpers import cache_worker
from tests.helpers.remote import MemorySource
from tests.helpers.servers import Misbehaving

BS = 100
DATA = bytes(random.Random(0).randrange(256) for _ in range(5_000))


def on_disk(cache: BlockCache) -> int:
    return sum(e.nbytes for e in cache.entries())


def block_length(size: int, index: int, bs: int) -> int:
    return min(size, (index + 1) * bs) - index * bs


def all_entries_valid(cache: BlockCache, size: int) -> int:
    """Checks every entry's header and CRC against its block's length; returns how many there are."""
    n = 0
    for e in cache.entries():
        index = int(e.path.name.rsplit("-", 1)[1])
        data = check_entry(e.path.read_bytes(), block_length(size, index, cache.block_size))
        assert data is not None, f"corrupt entry {e.path}"
        n += 1
    return n


# ------------------------------------------------------------------------------------------ arguments


@pytest.mark.parametrize(
    ("args", "error", "name"),
    [
        ((1000, 0), ValueError, "block_size"),
        ((1000, 1.5), TypeError, "block_size"),
        ((50, 100), ValueError, "max_bytes"),
        (("10", 100), TypeError, "max_bytes"),
    ],
)
def test_bad_arguments_name_themselves(tmp_path, args, error, name):
    with pytest.raises(error, match=name):
        BlockCache(tmp_path, *args)
    with pytest.raises(TypeError, match="directory"):
        BlockCache(3, 1000, 100)  # type: ignore[arg-type]


def test_default_directory_follows_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert BlockCache(None, 1000, 100).directory == tmp_path / "episode-sampler"


def test_out_of_range_reads_are_refused(tmp_path):
    cache, source = BlockCache(tmp_path, 10_000, BS), MemorySource({"a": DATA})
    with pytest.raises(ValueError, match="5000 bytes of memory://mem/a"):
        cache.read(source, "a", 0, 5001)
    with pytest.raises(ValueError, match="start <= stop"):
        cache.ensure(source, "a", [(10, 5)])
    with pytest.raises(FileNotFoundError, match="memory://mem/nope"):
        cache.read(source, "nope", 0, 1)


# ------------------------------------------------------------------------------- bytes and the bound


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, len(DATA)), st.integers(0, 700)), min_size=1, max_size=12))
def test_reads_equal_the_bytes_and_stay_under_max_bytes(tmp_path_factory, spans):
    max_bytes = 8 * (BS + HEADER.size) + 37
    cache = BlockCache(tmp_path_factory.mktemp("c"), max_bytes, BS)
    source = MemorySource({"a": DATA, "b": DATA[::-1][:1234]})
    for i, (start, length) in enumerate(spans):
        rel = "ab"[i % 2]
        stop = min(len(source.files[rel]), start + length)
        start = min(start, stop)
        assert cache.read(source, rel, start, stop) == source.files[rel][start:stop]
        cache.ensure(source, rel, [(start, stop)])
        assert on_disk(cache) <= max_bytes
        assert cache.usage() == on_disk(cache)


def test_lru_order_matches_a_reference_model(tmp_path):
    """Single-block reads in a random order; which blocks are cached (and which reads download) follow
    a plain LRU that evicts the oldest until the rest plus the new block fit in LOW_WATER of max_bytes."""
    max_bytes = 10 * (BS + HEADER.size)
    cache, source = BlockCache(tmp_path, max_bytes, BS), MemorySource({"a": DATA})
    nblocks = -(-len(DATA) // BS)
    model: OrderedDict[int, int] = OrderedDict()
    rng = random.Random(5)
    for _ in range(400):
        i = rng.choice(range(nblocks)) if rng.random() < 0.5 else rng.choice(range(12))
        before = len(source.reads)
        assert cache.read(source, "a", i * BS, i * BS + 1) == DATA[i * BS : i * BS + 1]
        if i in model:
            model.move_to_end(i)
            assert len(source.reads) == before
        else:
            n = HEADER.size + block_length(len(DATA), i, BS)
            if sum(model.values()) + n > max_bytes:
                while model and sum(model.values()) > int(max_bytes * LOW_WATER) - n:
                    model.popitem(last=False)
            model[i] = n
            assert len(source.reads) == before + 1
        cached = {int(e.path.name.rsplit("-", 1)[1]) for e in cache.entries()}
        assert cached == set(model)
    assert cache.stats()["evictions"] > 50


def test_ensure_reports_bytes_downloaded_and_merges_neighbours(tmp_path):
    cache, source = BlockCache(tmp_path, 100_000, BS), MemorySource({"a": DATA})
    assert cache.ensure(source, "a", [(150, 420), (2000, 2001)]) == 4 * BS + BS
    assert source.reads == [("a", 100, 500), ("a", 2000, 2100)]  # blocks 1-4 in one request
    assert cache.ensure(source, "a", [(100, 500)]) == 0
    assert cache.ensure(source, "a", [(4950, 5000), (0, 0)]) == 100
    assert cache.stats() == {
        "hits": 4,
        "misses": 6,
        "bytes_downloaded": 600,
        "evictions": 0,
        "corrupt": 0,
        "store_errors": 0,
    }


# --------------------------------------------------------------------------- keys, corruption, restart


def test_a_changed_remote_file_is_never_served_stale(tmp_path):
    cache, source = BlockCache(tmp_path, 100_000, BS), MemorySource({"a": DATA})
    assert cache.read(source, "a", 0, 300) == DATA[:300]
    new = bytes(255 - b for b in DATA)
    source.replace("a", new, "v2")  # same size, new version
    assert cache.read(source, "a", 0, 300) == new[:300]
    source.replace("a", new[:4000], "v2")  # new size
    assert cache.read(source, "a", 0, 300) == new[:300]
    other = MemorySource({"a": DATA[::-1]}, name="other")  # another source, same path
    assert cache.read(other, "a", 0, 300) == DATA[::-1][:300]


@pytest.mark.parametrize("damage", ["flip", "cut", "empty"])
def test_a_corrupt_entry_is_downloaded_again(tmp_path, damage):
    cache, source = BlockCache(tmp_path, 100_000, BS), MemorySource({"a": DATA})
    cache.read(source, "a", 0, 3 * BS)
    path = next(e.path for e in cache.entries() if e.path.name.endswith("-1"))
    raw = bytearray(path.read_bytes())
    if damage == "flip":
        raw[HEADER.size + 7] ^= 0xFF
    path.write_bytes({"flip": bytes(raw), "cut": bytes(raw[:-5]), "empty": b""}[damage])
    reads = len(source.reads)
    assert cache.read(source, "a", 0, 3 * BS) == DATA[: 3 * BS]
    assert source.reads[reads:] == [("a", BS, 2 * BS)]
    assert cache.stats()["corrupt"] == 1
    assert all_entries_valid(cache, len(DATA)) == 3
    assert cache.usage() == on_disk(cache)


def test_a_disk_that_refuses_costs_a_warning_not_the_read(tmp_path, monkeypatch):
    cache, source = BlockCache(tmp_path, 100_000, BS), MemorySource({"a": DATA})

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(block_cache.os, "replace", full)
    with pytest.warns(RuntimeWarning, match="No space left"):
        assert cache.read(source, "a", 0, 250) == DATA[:250]
    assert cache.stats()["store_errors"] == 3
    assert cache.entries() == [] and not list((tmp_path / "tmp").iterdir())


def test_a_restart_downloads_nothing(tmp_path):
    source = MemorySource({"a": DATA})
    BlockCache(tmp_path, 100_000, BS).read(source, "a", 0, len(DATA))
    source.forget()
    again = BlockCache(tmp_path, 100_000, BS)
    reads = len(source.reads)
    assert again.read(source, "a", 0, len(DATA)) == DATA
    assert again.ensure(source, "a", [(0, len(DATA))]) == 0
    assert len(source.reads) == reads
    assert again.stats()["misses"] == 0


def test_a_lost_counter_is_recounted_and_a_high_one_healed_by_the_next_eviction(tmp_path):
    max_bytes = 20 * (BS + HEADER.size)
    cache, source = BlockCache(tmp_path, max_bytes, BS), MemorySource({"a": DATA})
    cache.read(source, "a", 0, 1000)
    (tmp_path / "usage").write_bytes(b"")  # lost
    again = BlockCache(tmp_path, max_bytes, BS)
    assert again.usage() == on_disk(cache) == 10 * (BS + HEADER.size)
    (tmp_path / "usage").write_bytes(b"2300".rjust(20))  # too high, as a kill before a move leaves it
    again.read(source, "a", 1000, 1100)  # the store evicts, recounting from the directory
    assert again.usage() == on_disk(again) <= max_bytes
    assert again.stats()["evictions"] == 0  # the recount alone made room


def test_a_smaller_bound_evicts_when_opened(tmp_path):
    source = MemorySource({"a": DATA})
    BlockCache(tmp_path, 100_000, BS).read(source, "a", 0, 2000)
    small = BlockCache(tmp_path, 10 * (BS + HEADER.size), BS)
    assert on_disk(small) <= 10 * (BS + HEADER.size) and small.usage() == on_disk(small)


def test_opening_a_full_cache_does_not_scan_it(tmp_path, monkeypatch):
    BlockCache(tmp_path, 100_000, BS).read(MemorySource({"a": DATA}), "a", 0, 2000)
    monkeypatch.setattr(BlockCache, "entries", lambda self: pytest.fail("scanned"))
    BlockCache(tmp_path, 100_000, BS)


def test_the_cache_pickles_with_fresh_stats(tmp_path):
    cache, source = BlockCache(tmp_path, 100_000, BS), MemorySource({"a": DATA})
    cache.read(source, "a", 0, 1000)
    copy = pickle.loads(pickle.dumps(cache))
    assert copy.stats()["misses"] == 0
    assert copy.read(source, "a", 0, 1000) == DATA[:1000]
    assert copy.stats()["hits"] == 10


def test_temporary_files_of_dead_processes_are_removed(tmp_path):
    BlockCache(tmp_path, 100_000, BS)
    proc = subprocess.Popen(["true"])
    proc.wait()
    stale = tmp_path / "tmp" / f"abc-3.{proc.pid}.1"
    stale.write_bytes(b"partial")
    mine = tmp_path / "tmp" / f"abc-4.{os.getpid()}.1"
    mine.write_bytes(b"in progress")
    BlockCache(tmp_path, 100_000, BS)
    assert not stale.exists() and mine.exists()


# ---------------------------------------------------------------------------------------- concurrency


def test_threads_download_each_block_once(tmp_path):
    cache, source = BlockCache(tmp_path, 1_000_000, BS), MemorySource({"a": DATA})
    spans = [(random.Random(i).randrange(4000), 0) for i in range(64)]
    spans = [(a, a + 1000) for a, _ in spans]
    with ThreadPoolExecutor(8) as pool:
        reported = sum(pool.map(lambda s: cache.ensure(source, "a", [s]), spans))
        got = list(pool.map(lambda s: cache.read(source, "a", *s), spans))
    assert got == [DATA[a:b] for a, b in spans]
    downloaded = [i for _, a, b in source.reads for i in range(a // BS, -(-b // BS))]
    assert sorted(downloaded) == sorted(set(downloaded))  # no block twice
    assert reported == sum(b - a for _, a, b in source.reads)  # each call reports its own downloads
    assert all_entries_valid(cache, len(DATA)) == len(set(downloaded))


@pytest.mark.slow
def test_processes_share_a_bounded_cache_and_download_each_block_once(nginx, tmp_path):
    """Three processes (three threads each): first all ensure the same file at once (each block is
    downloaded by exactly one of them), then they hammer a small cache with reads checked against the
    local bytes; afterwards every entry is valid and the bound holds."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    big = bytes(random.Random(1).randrange(256) for _ in range(300_000))
    (data_dir / "big.bin").write_bytes(big)
    url = nginx.serve(data_dir, "block-cache-procs")
    bs, max_bytes = 4096, 20 * (4096 + HEADER.size)
    work = tmp_path / "work"
    work.mkdir()
    args = [(work, url, "big.bin", max_bytes, bs, seed, data_dir / "big.bin") for seed in range(3)]
    # forked (no re-import: these are independent processes for the locks, started in no time)
    with multiprocessing.get_context("fork").Pool(3) as pool:
        pending = pool.starmap_async(cache_worker.ensure_then_hammer, args)
        time.sleep(0.2)
        (work / "go").touch()
        stats = pending.get(timeout=300)
    assert sum(s["once"]["misses"] for s in stats) == -(-len(big) // bs)
    assert sum(s["once"]["bytes_downloaded"] for s in stats) == len(big)
    shared = BlockCache(work / "shared", max_bytes, bs)
    assert on_disk(shared) <= max_bytes
    assert all_entries_valid(shared, len(big)) > 0
    assert sum(s["shared"]["evictions"] for s in stats) > 0
    assert shared.usage() == on_disk(shared)


def read_whole(cache_dir: Path, url: str, rel: str, bs: int) -> None:
    source = open_source(url, timeout_s=10, retries=0)
    BlockCache(cache_dir, 10_000_000, bs).read(source, rel, 0, source.size(rel))


@pytest.mark.slow
def test_sigkill_mid_download_leaves_no_corrupt_entry(tmp_path):
    bs = 1024
    data = bytes(random.Random(2).randrange(256) for _ in range(40 * bs))
    with Misbehaving({"f.bin": data}) as server:
        server.trickle = 512  # a block every 40 ms
        url = f"{server.url}/slow"
        cache_dir = tmp_path / "cache"
        rng = random.Random(3)
        for _ in range(3):
            proc = multiprocessing.get_context("fork").Process(
                target=read_whole, args=(cache_dir, url, "f.bin", bs), daemon=True
            )
            proc.start()
            assert server.body_started.wait(30)
            time.sleep(rng.uniform(0.05, 0.6))
            os.kill(proc.pid, signal.SIGKILL)
            proc.join()
            assert proc.exitcode == -signal.SIGKILL
            server.body_started.clear()
            cache = BlockCache(
                cache_dir, 10_000_000, bs
            )  # a new process's view: tmp files of the dead removed
            assert all_entries_valid(cache, len(data)) < 40
            assert not list((cache_dir / "tmp").iterdir())
        server.trickle = len(data)
        source_cache = BlockCache(cache_dir, 10_000_000, bs)
        assert source_cache.read(open_source(url), "f.bin", 0, len(data)) == data
        assert all_entries_valid(source_cache, len(data)) == 40


def read_all_in_child(args: tuple[BlockCache, MemorySource, int]) -> tuple[bytes, dict[str, int]]:
    cache, source, seed = args
    rng = random.Random(seed)
    spans = [
        (a, min(len(DATA), a + rng.randrange(1, 500))) for a in (rng.randrange(len(DATA)) for _ in range(50))
    ]
    got = b"".join(cache.read(source, "a", a, b) for a, b in spans)
    assert got == b"".join(DATA[a:b] for a, b in spans)
    return got[:10], cache.stats()


@pytest.mark.slow
def test_forked_workers_use_the_parents_cache(tmp_path):
    """DataLoader workers fork with the cache already in use: each re-opens its locks and counts alone."""
    cache, source = BlockCache(tmp_path, 30 * (BS + HEADER.size), BS), MemorySource({"a": DATA})
    cache.read(source, "a", 0, 1000)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = pool.map(read_all_in_child, [(cache, source, s) for s in range(4)])
    assert all(stats["hits"] + stats["misses"] > 0 for _, stats in results)
    assert cache.stats()["misses"] == 10  # the parent's own count is untouched
    assert on_disk(cache) <= cache.max_bytes
    all_entries_valid(cache, len(DATA))


def test_a_false_deadlock_report_is_waited_out(tmp_path, monkeypatch):
    calls = []
    real = block_cache.fcntl.lockf

    def lockf(fd, cmd, *args):
        calls.append(cmd)
        if cmd == block_cache.fcntl.LOCK_EX and len(calls) < 3:
            raise OSError(errno.EDEADLK, "Resource deadlock avoided")
        return real(fd, cmd, *args)

    monkeypatch.setattr(block_cache.fcntl, "lockf", lockf)
    cache = BlockCache(tmp_path, 100_000, BS)
    assert cache.read(MemorySource({"a": DATA}), "a", 0, 10) == DATA[:10]
    assert calls[:3] == [block_cache.fcntl.LOCK_EX] * 3
