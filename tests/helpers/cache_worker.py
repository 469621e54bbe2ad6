"""What each process of the multi-process test of test_block_cache.py does with a shared BlockCache."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from episode_sampler.lerobot.block_cache import BlockCache
from episode_sampler.lerobot.remote_source import open_source


def ensure_then_hammer(
    cache_dir: str | Path,
    url: str,
    rel: str,
    max_bytes: int,
    block_size: int,
    seed: int,
    local_file: str | Path,
) -> dict[str, dict[str, int]]:
    """Waits for ``cache_dir/go``, ensures the whole file in ``cache_dir/once``, then 3 threads each make 40
    random range reads (checked against ``local_file``) or ensures in ``cache_dir/shared``, bounded by
    ``max_bytes``. Returns both caches' stats."""
    source = open_source(url, timeout_s=10, retries=2)
    assert source is not None
    size = source.size(rel)
    # 1. every process ensures the whole file at once, in a cache big enough for it
    once = BlockCache(Path(cache_dir) / "once", 100 * size, block_size)
    while not (Path(cache_dir) / "go").exists():
        time.sleep(0.005)
    once.ensure(source, rel, [(0, size)])
    # 2. threads read and ensure random ranges in a small shared cache (evictions all the time)
    shared = BlockCache(Path(cache_dir) / "shared", max_bytes, block_size)
    local = Path(local_file).read_bytes()

    def reads(thread: int) -> None:
        rng = random.Random(seed * 100 + thread)
        for _ in range(40):
            start = rng.randrange(size)
            stop = min(size, start + rng.randrange(1, 4 * block_size))
            if rng.random() < 0.3:
                shared.ensure(source, rel, [(start, stop)])
            elif shared.read(source, rel, start, stop) != local[start:stop]:
                raise AssertionError(f"bytes [{start}, {stop}) differ")

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(reads, range(3)))
    return {"once": once.stats(), "shared": shared.stats()}
