"""A process that uses a BlockCache (run by the multi-process and crash tests of test_block_cache.py).

``python -m tests.helpers.cache_worker MODE CACHE_DIR URL REL MAX_BYTES BLOCK_SIZE SEED [LOCAL_FILE]``

- ``random``: 100 random range reads of ``REL``, each checked against ``LOCAL_FILE``;
- ``ensure``: waits for ``CACHE_DIR/go``, then ensures the whole file;
- ``read``: reads the whole file once.

Prints the process's cache stats as JSON on its last line.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

import episode_sampler
from episode_sampler.lerobot.block_cache import BlockCache
from episode_sampler.lerobot.remote_source import open_source

ROOT = Path(__file__).resolve().parents[2]
SRC = Path(episode_sampler.__file__).resolve().parents[1]


def env() -> dict[str, str]:
    """The environment a worker needs to import this checkout's package and tests."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(ROOT)])}


def command(*args: object) -> list[str]:
    return [sys.executable, "-m", "tests.helpers.cache_worker", *map(str, args)]


def main(argv: list[str]) -> None:
    mode, cache_dir, url, rel, max_bytes, block_size, seed = argv[:7]
    source = open_source(url, timeout_s=10, retries=2)
    assert source is not None
    cache = BlockCache(cache_dir, int(max_bytes), int(block_size))
    size = source.size(rel)
    if mode == "random":
        local = Path(argv[7]).read_bytes()
        rng = random.Random(int(seed))
        for _ in range(100):
            start = rng.randrange(size)
            stop = min(size, start + rng.randrange(1, 4 * int(block_size)))
            got = cache.read(source, rel, start, stop)
            if got != local[start:stop]:
                raise SystemExit(f"bytes [{start}, {stop}) differ")
    elif mode == "ensure":
        while not os.path.exists(os.path.join(cache_dir, "go")):
            time.sleep(0.001)
        cache.ensure(source, rel, [(0, size)])
    elif mode == "read":
        cache.read(source, rel, 0, size)
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(cache.stats()), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
